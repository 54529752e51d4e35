"""Shared plumbing for CLI commands: error handling, output formats, name completion.

Kept import-light: calculators and specs are imported inside the command bodies, so that
``llmcalc --help`` and each one-liner load only what they use.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import json
import sys

import typer

from ..core.checks import MAX_COUNT  # whole numbers beyond 2**53 are refused at the edge (see core.checks)
from ..core.errors import LlmcalcError

JSON_OPT = typer.Option(False, "--json", help="Print machine-readable JSON with stable keys.")
# Training options shared by memory/comms/step and plan (one definition each).
NORM_UP = typer.Option(False, "--recompute-norm-up", help="Recompute RMSNorm outputs and MLA up-projections in "
                       "backward instead of storing them (DeepSeek-V3 §3.2.3).")
FP8_ACT = typer.Option(False, "--fp8-activations", help="Cache Linear inputs in FP8 (attention output in E5M6) and "
                       "recompute the SwiGLU output (DeepSeek-V3 §3.3.2).")
SCHEDULE = typer.Option("1f1b", "--schedule", help="Pipeline schedule: 1f1b (interleaved with -v) or dualpipe "
                        "(DeepSeek-V3: two stages per device, EP/PP communication hidden, two parameter copies).")
RESERVE = typer.Option(None, "--reserve", help="Fraction of memory kept free (default 0.1, as fit and serve).")
EXPLAIN_OPT = typer.Option(False, "--explain", help="Show each figure's formula, values substituted and source.")
# --force: the one way past write_out's refusal of an existing -o file (import, sheet, calibrate)
FORCE_OPT = typer.Option(False, "--force", help="Replace an existing --output file.")


def complete_models(incomplete: str) -> list[str]:
    from ..core.catalogue import names

    return [n for n in names("models") if n.startswith(incomplete.lower())]


def complete_hardware(incomplete: str) -> list[str]:
    from ..core.catalogue import names

    return [n for n in names("hardware") if n.startswith(incomplete.lower())]


MODEL_ARG = typer.Argument(..., help="Catalogue name (any case), model YAML path, or HF config.json path.",
                           autocompletion=complete_models, show_default=False)
HARDWARE_OPT = typer.Option("h100-sxm", "--hardware", "-H", help="Accelerator: catalogue name or YAML path.",
                            autocompletion=complete_hardware)


def fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def check_option_values(params, values: dict) -> None:
    """The one range check every command's typed options pass at the edge: integers within ±2**53 and floats
    finite. ``params``: the click command's parameters; ``values``: the keyword arguments they produced."""
    import math

    for p in params:
        v = values.get(p.name)
        if isinstance(v, bool) or v is None:
            continue
        opt = (max(p.opts, key=len) if getattr(p, "opts", None) and p.opts[0].startswith("-")
               else (p.name or "").upper())
        if isinstance(v, int) and abs(v) > MAX_COUNT:
            raise LlmcalcError(f"{opt} {v} is out of range: whole numbers here must lie within ±2**53 "
                               f"({MAX_COUNT:,})")
        if isinstance(v, float) and not math.isfinite(v):
            raise LlmcalcError(f"{opt} expects a finite number, got {v}")


def _current_context():
    try:  # typer >= 0.25 vendors click
        from typer._click.globals import get_current_context
    except ImportError:  # pragma: no cover - older typer on real click
        from click import get_current_context
    return get_current_context(silent=True)


def user_errors(fn):
    """Turn an LlmcalcError into one clear line on stderr and exit code 2 (never a traceback); typed options
    are range-checked first (:func:`check_option_values`).

    A command with a ``model`` parameter also gets the ad-hoc model flags (:func:`with_model_flags`)."""
    if "model" in inspect.signature(fn).parameters:
        fn = with_model_flags(fn)

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            ctx = _current_context()
            if ctx is not None and ctx.command is not None:
                check_option_values(ctx.command.params, kwargs)
            return fn(*args, **kwargs)
        except LlmcalcError as e:
            fail(str(e))

    return wrapper


# ---------------------------------------------------------------- --profile FILE (every command that uses efficiencies)

_PROFILE: contextvars.ContextVar[str | None] = contextvars.ContextVar("llmcalc_profile", default=None)
PROFILE_HELP = ("Efficiency profile YAML: its 'efficiency:' block (training kernels, written by `llmcalc calibrate`) "
                "drives training step times, its 'inference:' block (flops, memory_bw, link fractions) inference, "
                "serving and communication times.")


def with_profile(fn):
    """Give a command the shared ``--profile FILE`` option (one definition for every command that uses
    efficiencies); the command reads it through :func:`profile_training`, :func:`profile_inference` and
    :func:`profile_blocks` while it runs."""
    sig = inspect.signature(fn)
    params = list(sig.parameters.values())
    opt = inspect.Parameter("profile", inspect.Parameter.KEYWORD_ONLY, annotation=str | None,
                            default=typer.Option(None, "--profile", help=PROFILE_HELP))
    kw_at = next((k for k, p in enumerate(params) if p.kind == inspect.Parameter.VAR_KEYWORD), len(params))

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        token = _PROFILE.set(kwargs.pop("profile", None))
        try:
            return fn(*args, **kwargs)
        finally:
            _PROFILE.reset(token)

    wrapper.__signature__ = sig.replace(parameters=params[:kw_at] + [opt] + params[kw_at:])
    return wrapper


def profile_training(hw, compute_efficiency: float | None = None):
    """The profile's training efficiencies for ``hw`` (None without --profile)."""
    path = _PROFILE.get()
    if path is None:
        return None
    if compute_efficiency is not None:
        raise LlmcalcError("--compute-efficiency replaces every efficiency; drop it or drop --profile")
    from ..core.efficiency import load_profile

    return load_profile(path, hw)


def profile_inference(hardware, flops=None, memory_bw=None, link=None, roofline: bool = False):
    """The Efficiency of an inference/serving command: the profile's 'inference:' block (``--eff-*`` flags given
    beside it win), or the flags and defaults without --profile. ``hardware``: a Hardware or a name/path."""
    from ..core.efficiency import load_inference_profile, parse_efficiency

    path = _PROFILE.get()
    if path is None:
        return parse_efficiency(flops, memory_bw, link, roofline)
    if roofline:
        raise LlmcalcError("--roofline sets every efficiency to 1; drop it or drop --profile")
    parse_efficiency(flops, memory_bw, link)  # range-check the flags given beside the profile
    if isinstance(hardware, str):
        from ..core.catalogue import load_hardware

        hardware = load_hardware(hardware)
    return load_inference_profile(path, hardware, flops=flops, memory_bw=memory_bw, link=link)


def profile_active() -> bool:
    return _PROFILE.get() is not None


def profile_blocks(hw):
    """(training efficiencies or None, inference Efficiency or None): whichever blocks the profile holds (a
    command with a trainer and a rollout, ``rl``)."""
    path = _PROFILE.get()
    if path is None:
        return None, None
    from ..core.catalogue import load_user_yaml
    from ..core.efficiency import load_inference_profile, load_profile

    doc = load_user_yaml(path, "--profile")
    if not (isinstance(doc, dict) and ("efficiency" in doc or "inference" in doc)):
        load_inference_profile(path, hw)  # raises the one-line error naming what a profile holds
    return (load_profile(path, hw) if "efficiency" in doc else None,
            load_inference_profile(path, hw) if "inference" in doc else None)


# ---------------------------------------------------------------- ad-hoc models (what-if architectures)

_MODEL_FLAGS = (  # (parameter, flag, help); the engine's llmcalc.core.adhoc.FLAG_FIELDS maps them to fields
    ("d_model", "--d-model", "Ad-hoc model: D, model width (with --layers --heads --ffn --vocab, no MODEL needed)."),
    ("layers", "--layers", "Ad-hoc model: number of layers."),
    ("heads", "--heads", "Ad-hoc model: H, attention heads."),
    ("kv_heads", "--kv-heads", "Ad-hoc model: G, key/value heads (default H)."),
    ("head_dim", "--head-dim", "Ad-hoc model: K, head size (default D/H)."),
    ("ffn", "--ffn", "Ad-hoc model: F, MLP width (gated SwiGLU)."),
    ("vocab", "--vocab", "Ad-hoc model: V, vocabulary."),
    ("experts", "--experts", "Ad-hoc model: E, routed experts (MoE)."),
    ("top_k", "--top-k", "Ad-hoc model: experts per token (MoE)."),
)


def with_model_flags(fn):
    """Give a command taking ``model`` the flags of an ad-hoc model (``--d-model 4096 --layers 32 …``) and
    ``--set key=value`` overrides on a catalogue model; the command receives the validated Model instead of
    a name (``load_model`` passes a Model through). MODEL becomes optional when the flags describe one."""
    sig = inspect.signature(fn)
    params = list(sig.parameters.values())
    i = next(k for k, p in enumerate(params) if p.name == "model")
    required = isinstance(params[i].default, typer.models.ArgumentInfo) and params[i].default.default is ...
    if required:
        info = params[i].default
        params[i] = params[i].replace(default=typer.Argument(None, help=info.help + " Optional with --d-model ….",
                                                             autocompletion=complete_models, show_default=False),
                                      annotation=str | None)
    extra = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=int | None,
                               default=typer.Option(None, flag, help=help_, rich_help_panel="Ad-hoc model"))
             for name, flag, help_ in _MODEL_FLAGS]
    extra.append(inspect.Parameter("set_", inspect.Parameter.KEYWORD_ONLY, annotation=list[str] | None,
                                   default=typer.Option(None, "--set", help="Override a model field, e.g. --set "
                                                        "num_kv_heads=1 --set sliding_window=4096 (repeatable).",
                                                        rich_help_panel="Ad-hoc model")))
    names = {p.name for p in extra}

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        flags = {k: kwargs.pop(k, None) for k in [n for n, _, _ in _MODEL_FLAGS]}
        sets = kwargs.pop("set_", None) or []
        if any(v is not None for v in flags.values()) or sets:
            from ..core.adhoc import adhoc_model
            from ..core.catalogue import load_model

            ref = kwargs.get("model")
            kwargs["model"] = adhoc_model(None if ref is None else load_model(ref), flags, sets)
        elif required and kwargs.get("model") is None:
            raise LlmcalcError("missing MODEL: give a catalogue name (`llmcalc list models`), a YAML or config.json "
                               "path, or an ad-hoc model (--d-model 4096 --layers 32 --heads 32 --ffn 14336 "
                               "--vocab 128256)")
        return fn(*args, **kwargs)

    kw_at = next((k for k, p in enumerate(params) if p.kind == inspect.Parameter.VAR_KEYWORD), len(params))
    params = [p if p.kind != inspect.Parameter.POSITIONAL_OR_KEYWORD else p.replace(kind=inspect.Parameter.KEYWORD_ONLY)
              for p in params]
    wrapper.__signature__ = sig.replace(parameters=params[:kw_at] + [p for p in extra if p.name in names]
                                        + params[kw_at:])
    return wrapper


def table(rows: list[tuple[str, ...]], header: tuple[str, ...] | None = None) -> str:
    rows = [header, *rows] if header else rows
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for j, r in enumerate(rows):
        cells = (c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))
        lines.append("  ".join(cells).rstrip())
        if header and j == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def emit(result, as_json: bool, explain: bool, extra_columns=None, hide=()) -> None:
    """Print a Result as a table (default), JSON, or its derivation. ``hide``: figure keys the table leaves out
    (rows that do not apply, such as a middle stage at pp 2); JSON and --explain keep every figure."""
    if as_json:
        typer.echo(json.dumps(result.as_dict(), indent=2, default=_default))
        return
    if explain:
        typer.echo(result.explain())
        return
    typer.echo(result.title)
    rows = [(f.name, f.text()) for f in result.figures if f.key not in hide]
    typer.echo(table(rows))
    for a in result.assumptions:
        typer.echo(f"  * {a}")


def _default(o):
    if hasattr(o, "tolist"):
        return o.tolist()
    if hasattr(o, "model_dump"):
        return o.model_dump()
    return str(o)


def write_out(text: str, output: str | None, *, force: bool = False, inputs: tuple[str, ...] = ()) -> None:
    """Write ``text`` to ``output`` (stdout when None). An existing path is refused unless ``force``; one of
    ``inputs`` (the same file, also through a link) is always refused. The file is written beside the target
    and renamed over it, so a symlink at ``output`` is replaced, never followed into its target."""
    if not output:
        sys.stdout.write(text)
        return
    import os
    import tempfile

    for src in inputs:
        try:
            same = os.path.samefile(src, output)
        except (OSError, ValueError):
            same = False
        if same:
            raise LlmcalcError(f"-o {output} is the input file {src}; write the YAML somewhere else")
    if os.path.lexists(output):
        if not force:
            raise LlmcalcError(f"-o {output} exists; add --force to replace it")
        if os.path.isdir(output) and not os.path.islink(output):
            raise LlmcalcError(f"-o {output} is a folder; give a file name")
    folder = os.path.dirname(os.path.abspath(output))
    try:
        fd, tmp = tempfile.mkstemp(prefix=".llmcalc-", suffix=".tmp", dir=folder)
        umask = os.umask(0)
        os.umask(umask)
        try:
            os.chmod(tmp, 0o666 & ~umask)  # what open(output, "w") would have made, not mkstemp's 0600
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
            os.replace(tmp, output)
        except BaseException:
            os.unlink(tmp)
            raise
    except OSError as e:
        raise LlmcalcError(f"-o {output}: cannot write ({e.strerror})") from None
    typer.echo(f"wrote {output}", err=True)


def quantity_option(text: str | None, dim_name: str, option: str, example: str, scale: float = 1.0):
    """A plain number, or a quantity with a unit of the right dimension, in SI (times ``scale``)."""
    if text is None:
        return None
    from ..core import units
    from ..core.errors import LlmcalcError

    try:
        return float(text)
    except ValueError:
        pass
    try:
        return units.parse(text, getattr(units, dim_name)) * scale
    except LlmcalcError as e:
        raise LlmcalcError(f"{option} expects e.g. {example}, got {text!r} ({e})") from None
