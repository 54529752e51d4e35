"""Generated inputs and the promise they are held to (issue #13), shared by tests/test_fuzz_*.py and
benchmarks/fuzz.py.

The promise: every input ends either in exit 2 with ONE line ``error: ...`` that names the input (an option,
a file, a value given), or in exit 0 whose figures are finite, and non-negative wherever a figure cannot be
negative (bytes, seconds, FLOPs, counts, rates, money).
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parent.parent
MODELS = sorted(p.stem for p in (ROOT / "models").glob("*.yaml"))
HARDWARE = sorted(p.stem for p in (ROOT / "hardware").glob("*.yaml"))

# Units whose figures can never be negative. A deficit is a figure of its own (free_bytes_per_gpu: weights that
# do not fit leave a negative remainder, which is the message), listed in MAY_BE_NEGATIVE.
NONNEG_UNITS = {"B", "B/s", "FLOP", "FLOP/s", "s", "W", "USD", "USD/h", "token", "tokens", "token/s", "seq", "GPU",
                "replica", "req/s", "param", "params", "layer", "layers", "microbatch", "step", "expert", "FLOP/B",
                "GPU-h", "GPU-hours", "days", "h"}
MAY_BE_NEGATIVE = re.compile(r"free|margin|headroom|delta|diff|saving|gain|excess")


# ---------------------------------------------------------------- values: plausible, edge and junk

def ints(lo: int = 1, hi: int = 64):
    """Mostly plausible whole numbers, sometimes edges (0, negatives, 2**53, 2**63, 10**30) and junk text."""
    return st.one_of(
        st.integers(lo, hi).map(str),
        st.integers(lo, hi).map(str),
        st.integers(lo, hi).map(str),
        st.sampled_from(["0", "-1", "-8", str(2**53), str(2**53 + 1), str(2**63), str(10**30), "1.5", "2.0", "1e3",
                         "nan", "inf", "-inf", "1e400", "", " ", "0x10", "true", "१२", "1_000", "8,8"]),
        st.text(max_size=6),
    )


def floats(lo: float = 0.0, hi: float = 1.0):
    return st.one_of(
        st.floats(lo, hi, allow_nan=False).map(lambda x: f"{x:.6g}"),
        st.floats(lo, hi, allow_nan=False).map(lambda x: f"{x:.6g}"),
        st.sampled_from(["0", "-0.5", "1", "1.0000001", "nan", "inf", "-inf", "1e400", "1e-400", "5e-324", "1e308",
                         "", "abc", "0.5.5"]),
        st.text(max_size=5),
    )


def words(*good: str):
    return st.one_of(st.sampled_from(good), st.sampled_from(good), st.text(max_size=8),
                     st.sampled_from(["", "BF16", "fp8 ", "none\n", "-", "--json"]))


def quantities(*good: str):
    return st.one_of(st.sampled_from(good), st.sampled_from(good),
                     st.sampled_from(["1e400 s", "-2 s", "nan ms", "2 GiB", "0s", "", "2", "1e9", "$-1/h", "1 h/s"]),
                     st.text(max_size=8))


def counts_text():
    return st.one_of(st.sampled_from(["300B", "1T", "15T", "2e9", "1e12", "20", "10k"]),
                     st.sampled_from(["0", "-1T", "1e400", "nanB", "", "3Q", "1e-9", "1 tokens"]), st.text(max_size=6))


def model_names():
    return st.one_of(st.sampled_from(MODELS), st.sampled_from(MODELS), st.sampled_from(MODELS),
                     st.sampled_from(["LLAMA-3.1-8B", " gpt2 ", "llama", "no-such-model", "", ".", "/", "/dev/null",
                                      "models/gpt2.yaml", "x.yaml", "a/b.json", "../models/gpt2.yaml"]))


def hardware_names():
    return st.one_of(st.sampled_from(HARDWARE), st.sampled_from(HARDWARE),
                     st.sampled_from(["H100-SXM", "h100", "", "tpu", "hardware/h100-sxm.yaml", "/dev/zero"]))


DTYPES = ("bf16", "fp16", "fp32", "fp8", "int8", "int4")
PAR = {"--tp": ints(1, 16), "--pp": ints(1, 8), "--dp": ints(1, 64), "--ep": ints(1, 8), "--cp": ints(1, 4),
       "--zero": ints(0, 3), "--micro-batch": ints(1, 8), "--seq": ints(1, 8192), "--interleave": ints(1, 4),
       "--recompute": words("none", "selective", "full"), "--global-batch": ints(1, 1024), "--etp": ints(0, 16)}
INFER = {"--tp": ints(1, 16), "--weights": words("bf16", "fp8", "int8", "int4", "4.85", "fp32"),
         "--group-size": ints(1, 256), "--kv-dtype": words("bf16", "fp8", "int8", "int4"),
         "--activations": words("bf16", "fp8", "int8"), "--eff-flops": floats(), "--eff-mem": floats(),
         "--eff-link": floats()}

# command -> (positional strategies, option strategies, flags). Options are each present or not.
COMMANDS: dict[str, tuple[list, dict, list[str]]] = {
    "params": ([model_names()], {}, ["--json", "--explain"]),
    "show": ([st.one_of(model_names(), hardware_names())], {}, ["--json"]),
    "flops": ([model_names()], {"--batch": ints(1, 64), "--seq": ints(1, 8192), "--kv-len": ints(1, 8192),
                                "--recompute": words("none", "selective", "full")},
              ["--json", "--causal", "--mla-absorbed"]),
    "chinchilla": ([model_names()], {"--flops": quantities("5.76e23", "1e21 FLOP")}, ["--json"]),
    "train": ([model_names()], {"--tokens": counts_text(), "-H": hardware_names(), "--gpus": ints(1, 4096),
                                "--mfu": floats(), "--price": quantities("2.49", "$2/h"),
                                "--days": floats(1, 100), "--recompute": words("none", "full"),
                                "--step-time": quantities("10 s", "13.75"), "--batch-tokens": counts_text()},
              ["--json"]),
    "memory": ([model_names()], {"-H": hardware_names(), **PAR,
                                 "--optimizer": words("adam", "adam-fp32-grads", "adam-no-master", "adam-8bit", "sgd"),
                                 "--lora-rank": ints(1, 64), "--base-bits": ints(4, 16)},
               ["--json", "--sp", "--no-flash", "--dropout", "--offload-optimizer"]),
    "comms": ([model_names()], {"-H": hardware_names(), **PAR, "--link-efficiency": floats()},
              ["--json", "--sp", "--offload-optimizer"]),
    "step": ([model_names()], {"-H": hardware_names(), "--gpus": ints(1, 1024), **PAR,
                               "--compute-efficiency": floats(), "--link-efficiency": floats()},
             ["--json", "--sp", "--causal", "--offload-optimizer"]),
    "kv": ([model_names()], {"--context": ints(1, 1 << 17), "--batch": ints(1, 256),
                             "--kv-dtype": words("bf16", "fp8", "int4"), "--tp": ints(1, 16), "--pp": ints(1, 8)},
           ["--json"]),
    "fit": ([model_names()], {"-H": hardware_names(), "--tp": ints(1, 16), "--pp": ints(1, 8), "--ep": ints(1, 8),
                              "--weights": INFER["--weights"], "--kv-dtype": INFER["--kv-dtype"],
                              "--reserve": floats(), "--context": ints(1, 1 << 17), "--batch": ints(1, 256)},
            ["--json"]),
    "infer": ([model_names()], {"-H": hardware_names(), "--batch": ints(1, 256), "--prompt": ints(1, 1 << 15),
                                "--output": ints(1, 4096), **INFER}, ["--json", "--roofline"]),
    "sweep": ([model_names()], {"-H": hardware_names(), "--tp": ints(1, 8),
                                "--batch": st.sampled_from(["1,2,4,...,512", "1,8,64", "2,3,...,100000", "0,1",
                                                            "1,2,...,1e300", "", "4", "1.5", "-1,2"]),
                                "--prompt": ints(1, 8192), "--output": ints(1, 2048)}, ["--json"]),
    "serve": ([model_names()], {"-H": hardware_names(), "--users": counts_text(), "--prompt": ints(1, 8192),
                                "--output": ints(1, 2048), "--ttft": quantities("2s", "500ms"),
                                "--tpot": quantities("50ms", "0.1"), "--price": quantities("2.49", "$3/h"),
                                "--reserve": floats()}, ["--json"]),
    "batching": ([model_names()], {"-H": hardware_names(), "--tp": ints(1, 8), "--qps": floats(0, 100),
                                   "--prompt": st.one_of(ints(1, 8192), st.sampled_from(["512,2048", "1,2,3"])),
                                   "--output": st.one_of(ints(1, 2048), st.sampled_from(["128,512", "1,1"])),
                                   "--mix": st.sampled_from(["0.7,0.3", "1", "0.5,0.6", "nan,1", "-1,2"])},
                 ["--json"]),
    "speculative": ([], {"--alpha": floats(), "--gamma": ints(0, 16), "--cost-ratio": floats()}, ["--json"]),
    "summary": ([model_names()], {"-H": hardware_names(), "--gpus": ints(1, 4096), "--mfu": floats(),
                                  "--users": floats(1, 1e5), "--prompt": ints(1, 4096), "--output": ints(1, 1024)},
                ["--json"]),
}
# Commands every example must include a value for (required options): filled when the draw left them out.
REQUIRED = {"kv": {"--context": "1024"}, "train": {"--tokens": "1T"}, "step": {"--global-batch": "64"},
            "batching": {"--qps": "1"}, "speculative": {"--alpha": "0.7"}, "serve": {"--users": "1000"}}


@st.composite
def cli_args(draw, commands=None):
    """One command line: a command, its positionals, a random subset of its options with drawn values."""
    names = commands or sorted(COMMANDS)
    cmd = draw(st.sampled_from(names))
    pos, opts, flags = COMMANDS[cmd]
    args = [cmd] + [draw(p) for p in pos]
    chosen = draw(st.lists(st.sampled_from(sorted(opts)), unique=True, max_size=len(opts))) if opts else []
    for o in chosen:
        args += [o, draw(opts[o])]
    for o, v in REQUIRED.get(cmd, {}).items():
        if o not in chosen:
            args += [o, v]
    args += draw(st.lists(st.sampled_from(flags), unique=True, max_size=len(flags))) if flags else []
    if "--json" in flags and draw(st.booleans()) and "--json" not in args:
        args.append("--json")
    return args


# ---------------------------------------------------------------- the promise


def fast_runner():
    """A CliRunner that builds the click command once (typer rebuilds it on every invoke: ~40 ms each)."""
    import typer.testing as tt
    from typer.testing import CliRunner

    from llmcalc.cli import app

    cmd = tt._get_command(app)

    class Runner(CliRunner):
        def invoke(self, args, **kw):
            real = tt._get_command
            tt._get_command = lambda _app: cmd
            try:
                return super().invoke(app, args, catch_exceptions=True, **kw)
            finally:
                tt._get_command = real

    return Runner()


class Broken(AssertionError):
    """The promise broke; the message says how, and carries the reproducer. ``signature`` groups failures
    by their cause (the code site of an exception, else the kind of breach)."""

    def __init__(self, message: str, signature: str | None = None):
        super().__init__(message)
        self.signature = signature or message.split("\n")[0].split(": ", 1)[-1][:120]


def exception_signature(e: BaseException) -> str:
    """'TypeError at llmcalc/training/cost.py:35' from the innermost llmcalc frame of ``e``."""
    import traceback

    frames = [f for f in traceback.extract_tb(e.__traceback__) if "/llmcalc/" in f.filename]
    at = f"{frames[-1].filename.split('/llmcalc/')[-1]}:{frames[-1].lineno}" if frames else "?"
    return f"{type(e).__name__} at llmcalc/{at}"


def _norm(s: str) -> str:
    return re.sub(r"[^0-9a-z]", "", s.lower())


def names_input(message: str, given: list[str]) -> bool:
    """Does the message name something the user gave: an option, a file, a name or a value (as typed, as its
    repr, or as the catalogue's display name: 'gpt-3-175b' ~ 'GPT-3 175B')?"""
    low, norm = message.lower(), _norm(message)
    for tok in given:
        t = tok.strip().lower()
        if repr(tok) in message or (t and t in low) or (len(_norm(t)) >= 3 and _norm(t) in norm):
            return True
    return False


def _sig(kind: str, text: str) -> str:
    return kind + " | " + re.sub(r"\d[\d.,e+-]*", "N", re.sub(r"'[^']*'", "'…'", text))[:90]


def check_error_line(err: str, given: list[str], where: str) -> None:
    text = err.strip()
    if "\n" in text:
        raise Broken(f"{where}: error is not one line: {text[:300]!r}", _sig("not one line", text))
    if "Traceback" in text or "array(" in text or not text:
        raise Broken(f"{where}: bad error text: {text[:300]!r}", _sig("bad error text", text))
    if given and not names_input(text, given):
        raise Broken(f"{where}: error does not name the input: {text[:300]!r}", _sig("names no input", text))


def check_cli_result(res, args: list[str]) -> str:
    """Hold one CliRunner result to the promise; returns 'ok' or 'error'."""
    where = "llmcalc " + " ".join(repr(a) if (not a or " " in a or "\n" in a) else a for a in args)
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        import traceback

        tb = "".join(traceback.format_exception(res.exception))[-1500:]
        raise Broken(f"{where}: exception\n{tb}", exception_signature(res.exception))
    if res.exit_code == 2:
        check_error_line(res.stderr, [a for a in args[1:] if a != "--json"] + [args[0]], where)
        if not res.stderr.startswith("error: "):
            raise Broken(f"{where}: exit 2 without an 'error: ' line: {res.stderr[:200]!r}")
        return "error"
    if res.exit_code != 0:
        raise Broken(f"{where}: exit {res.exit_code}: {res.output[-500:]!r}")
    if res.stderr.strip() and "wrote " not in res.stderr:
        raise Broken(f"{where}: exit 0 but stderr says {res.stderr[:300]!r}")
    if "--json" in args and "--explain" not in args:
        try:
            data = json.loads(res.stdout)
        except json.JSONDecodeError as e:
            raise Broken(f"{where}: --json output is not JSON ({e})") from None
        check_json(data, where)
    elif re.search(r"(?<![\w.-])-?(nan|inf)(?![\w-])", res.stdout):
        raise Broken(f"{where}: non-finite number in output: {res.stdout[:400]!r}")
    return "ok"


def _walk(x, path=""):
    if isinstance(x, dict):
        for k, v in x.items():
            yield from _walk(v, f"{path}.{k}")
    elif isinstance(x, list):
        for i, v in enumerate(x):
            yield from _walk(v, f"{path}[{i}]")
    else:
        yield path, x


def check_json(data, where: str) -> None:
    for path, v in _walk(data):
        if isinstance(v, float) and not math.isfinite(v):
            raise Broken(f"{where}: {path} = {v}")
    figures = data.get("figures", []) if isinstance(data, dict) else []
    for f in figures:
        check_figure(f["key"], f["value"], f["unit"], where)


def check_figure(key: str, value, unit: str, where: str) -> None:
    vals = list(_flat(value))
    if value is None or any(v is None for v in vals):
        raise Broken(f"{where}: figure {key} is not a finite number ({value!r})")
    for v in vals:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            continue
        if not math.isfinite(v):
            raise Broken(f"{where}: figure {key} = {v}")
        if v < 0 and unit in NONNEG_UNITS and not MAY_BE_NEGATIVE.search(key):
            raise Broken(f"{where}: figure {key} = {v} {unit} is negative")


def _flat(v):
    if isinstance(v, (list, tuple)):
        for x in v:
            yield from _flat(x)
    elif hasattr(v, "tolist"):
        yield from _flat(v.tolist())
    else:
        yield v


def check_result(r, where: str) -> None:
    """A Result from the Python API: every figure finite, non-negative where it cannot be negative. A layout
    sweep marks impossible elements in ``data['valid']`` (training/layout.py); only the valid ones are held."""
    import numpy as np

    valid = r.data.get("valid") if isinstance(r.data, dict) else None
    if valid is not None and np.ndim(valid) == 0 and not bool(valid):
        return  # the whole sweep is an impossible layout, and says so
    mask = np.asarray(valid, dtype=bool) if valid is not None and np.ndim(valid) > 0 else None
    if mask is not None and not mask.any():
        return
    for f in r.figures:
        value = f.value
        if mask is not None and np.ndim(value) > 0:
            try:
                value = np.broadcast_to(np.asarray(value, dtype=float), np.broadcast(mask, value).shape)[
                    np.broadcast_to(mask, np.broadcast(mask, value).shape)]
            except ValueError:
                pass
        check_figure(f.key, value, f.unit, where)
