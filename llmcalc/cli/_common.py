"""Shared plumbing for CLI commands: error handling, output formats, name completion.

Kept import-light: calculators and specs are imported inside the command bodies, so that
``llmcalc --help`` and each one-liner load only what they use.
"""

from __future__ import annotations

import functools
import inspect
import json
import sys

import typer

from ..core.errors import LlmcalcError

JSON_OPT = typer.Option(False, "--json", help="Print machine-readable JSON with stable keys.")
EXPLAIN_OPT = typer.Option(False, "--explain", help="Show each figure's formula, values substituted and source.")


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


def user_errors(fn):
    """Turn an LlmcalcError into one clear line on stderr and exit code 2 (never a traceback).

    A command with a ``model`` parameter also gets the ad-hoc model flags (:func:`with_model_flags`)."""
    if "model" in inspect.signature(fn).parameters:
        fn = with_model_flags(fn)

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except LlmcalcError as e:
            fail(str(e))

    return wrapper


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


def emit(result, as_json: bool, explain: bool, extra_columns=None) -> None:
    """Print a Result as a table (default), JSON, or its derivation."""
    if as_json:
        typer.echo(json.dumps(result.as_dict(), indent=2, default=_default))
        return
    if explain:
        typer.echo(result.explain())
        return
    typer.echo(result.title)
    rows = [(f.name, f.text()) for f in result.figures]
    typer.echo(table(rows))
    for a in result.assumptions:
        typer.echo(f"  * {a}")


def _default(o):
    if hasattr(o, "tolist"):
        return o.tolist()
    if hasattr(o, "model_dump"):
        return o.model_dump()
    return str(o)


def write_out(text: str, output: str | None) -> None:
    if output:
        try:
            with open(output, "w") as f:
                f.write(text)
        except OSError as e:
            raise LlmcalcError(f"-o {output}: cannot write ({e.strerror})") from None
        typer.echo(f"wrote {output}", err=True)
    else:
        sys.stdout.write(text)


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
