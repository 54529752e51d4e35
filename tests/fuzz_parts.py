"""The four fuzzed surfaces of issue #13, each a (strategy factory, check) pair: CLI command lines, Python API
calls, mutated YAML / config.json files, dashboard URL queries. Used by tests/test_fuzz_*.py (fixed budget, in
CI) and benchmarks/fuzz.py (long campaigns)."""

from __future__ import annotations

import json
import math
import os
import tempfile
from functools import lru_cache
from pathlib import Path

import numpy as np
from fuzzkit import (
    HARDWARE,
    MODELS,
    ROOT,
    Broken,
    check_cli_result,
    check_error_line,
    check_result,
    cli_args,
    exception_signature,
    fast_runner,
)
from hypothesis import strategies as st

# ---------------------------------------------------------------- CLI


@lru_cache(maxsize=1)
def _runner():
    return fast_runner()


def check_cli(args: list[str]) -> str:
    return check_cli_result(_runner().invoke(args), args)


# ---------------------------------------------------------------- Python API

def _num():
    """A Python-level argument: mostly a plausible count, sometimes anything a caller might pass."""
    return st.one_of(
        st.integers(1, 64), st.integers(1, 64), st.integers(1, 64), st.integers(1, 4096),
        # numbers of every kind a caller may pass; sweeps as arrays of one common shape (3,), so that a
        # broadcasting mismatch (a caller's type error, like passing a dict) is not what is tested
        st.sampled_from([0, -1, 2**53, 2**53 + 1, 2**63, 2**64 + 1, 10**400, 0.5, 1.0, 2.0, float("nan"),
                         float("inf"), -float("inf"), 1e308, True, False, np.int64(8), np.float32(2.0),
                         np.array([1, 2, 4]), np.array([0, 1, 2]), np.array([1.5, 2.0, 3.0]),
                         np.array([2**62, 2**62, 1]), np.array([8.0, np.nan, 1.0])]),
    )


def _frac():
    return st.one_of(st.floats(0.01, 1.0), st.floats(0.01, 1.0),
                     st.sampled_from([0.0, -0.1, 1.5, float("nan"), float("inf"), True, np.float64(0.3)]))


API = ("kv_cache", "fit", "latency", "training_memory", "training_step", "comm_ledger", "forward_flops",
       "param_breakdown", "chinchilla", "training_cost", "speculative", "continuous_batching", "serve", "batch_sweep",
       "parse_quantity", "model_state_bytes", "summary")


@st.composite
def api_calls(draw):
    fn = draw(st.sampled_from(API))
    model = draw(st.sampled_from(MODELS))
    hw = draw(st.sampled_from(HARDWARE))
    kw = {"model": model, "hw": hw}
    for k in ("a", "b", "c", "d", "e", "f", "g"):
        kw[k] = draw(_num())
    kw["x"] = draw(_frac())
    kw["dtype"] = draw(st.sampled_from(["bf16", "fp8", "int4", "int8", "fp16", "BF16", "bogus", "", 4.85, None]))
    kw["zero"] = draw(st.sampled_from([0, 1, 2, 3, 4, -1, 1.5, True]))
    kw["recompute"] = draw(st.sampled_from(["none", "selective", "full", "FULL", "half", 1, 3]))
    return fn, kw


def _call(fn: str, k: dict):
    import llmcalc as L

    m = L.load_model(k["model"])
    hw = L.load_hardware(k["hw"])
    a, b, c, d, e, f, g, x = (k[n] for n in "abcdefgx")
    if fn == "kv_cache":
        return L.kv_cache(m, a, b, k["dtype"] if isinstance(k["dtype"], str) else "bf16", c, d)
    if fn == "fit":
        return L.fit(m, hw, k["dtype"] or "bf16", None, "bf16", a, b, x, c, d)
    if fn == "latency":
        return L.latency(L.Deployment(m, hw, a), b, c, d)
    if fn == "batch_sweep":
        return L.batch_sweep(L.Deployment(m, hw, a), b, c, d)["latency_result"]
    if fn in ("training_memory", "training_step", "comm_ledger"):
        lay = L.Layout(tp=a, pp=b, dp=c, zero=k["zero"])
        if fn == "training_memory":
            return L.training_memory(m, hw, lay, micro_batch=d, seq=e, recompute=k["recompute"])
        if fn == "comm_ledger":
            return L.comm_ledger(m, hw, lay, micro_batch=d, seq=e, recompute=k["recompute"])
        return L.training_step(m, hw, lay, global_batch=f, micro_batch=d, seq=e, recompute=k["recompute"])
    if fn == "forward_flops":
        return L.forward_flops(m, a, b, kv_len=c)
    if fn == "param_breakdown":
        return L.param_breakdown(m)
    if fn == "chinchilla":
        return L.chinchilla(None, params=a) if isinstance(b, int) and b % 2 else L.chinchilla(m, flops=a)
    if fn == "training_cost":
        return L.training_cost(m, a, hw, b, mfu=x)
    if fn == "speculative":
        return L.speculative(x, a, x)
    if fn == "continuous_batching":
        return L.continuous_batching(L.Deployment(m, hw, 1), x, a, b)
    if fn == "serve":
        return L.serve(m, hw, prompt=a, output=b, users=c)
    if fn == "parse_quantity":
        from llmcalc.core import units

        v = units.parse(a if not isinstance(a, int) or isinstance(a, bool) else f"{a} GiB", units.BYTES)
        if not math.isfinite(v):
            raise Broken(f"parse_quantity({a!r}) = {v}")
        return None
    if fn == "model_state_bytes":
        return L.model_state_bytes(a, dp=b, zero=k["zero"])
    if fn == "summary":
        return L.summary(m, hw, gpus=a, mfu=x, prompt=b, output=c, users=d)
    raise AssertionError(fn)


def check_api(call) -> str:
    from llmcalc.core.errors import LlmcalcError

    fn, k = call
    shown = {n: v for n, v in k.items() if n in ("model", "hw") or n in _uses(fn)}
    where = f"{fn}({shown!r})"
    try:
        r = _call(fn, k)
    except LlmcalcError as e:
        check_error_line(str(e), [], where)
        return "error"
    except Broken:
        raise
    except Exception as e:  # anything else is a bug: it would surface as a traceback
        import traceback

        raise Broken(f"{where}: {type(e).__name__}: {e}\n{''.join(traceback.format_exception(e))[-1200:]}",
                     exception_signature(e)) from None
    if r is not None:
        check_result(r, where)
    return "ok"


def _uses(fn: str) -> str:
    return "abcdefgxdtypezerorecompute"


# ---------------------------------------------------------------- files: mutated YAML and config.json

YAML_VALUES = ["true", "false", "null", "~", "0", "-1", "1.5", "4096.0", "'4096'", "1e400", "1e400 GiB", "-80 GiB",
               "nan GiB", "{value: 80}", "[80]", "80", "80 GiB", "3.35 TB/s", ".inf", ".nan", "0x10", "2**70",
               "99999999999999999999999", "&a 1", "*a", "!!python/object:os.system x", '"\\x00"', "é", "",
               "[" * 200 + "]" * 200]


@st.composite
def yaml_files(draw):
    kind = draw(st.sampled_from(["models", "hardware"]))
    name = draw(st.sampled_from(MODELS if kind == "models" else HARDWARE))
    lines = (ROOT / kind / f"{name}.yaml").read_text().splitlines()
    for _ in range(draw(st.integers(1, 3))):
        i = draw(st.integers(0, len(lines) - 1))
        op = draw(st.sampled_from(["value", "value", "value", "delete", "duplicate", "latin1", "indent", "text"]))
        line = lines[i]
        if op == "value" and ":" in line:
            head = line.split(":", 1)[0]
            lines[i] = f"{head}: {draw(st.sampled_from(YAML_VALUES))}"
        elif op == "delete":
            del lines[i]
        elif op == "duplicate":
            lines.insert(i, line)
        elif op == "latin1":
            lines[i] = line + "\udce9"  # written as the single byte 0xE9 (surrogateescape)
        elif op == "indent":
            lines[i] = "  " + line
        else:
            lines[i] = draw(st.text(max_size=20))
        if not lines:
            lines = [""]
    return kind, name, "\n".join(lines) + "\n"


def _write(text: str, suffix: str) -> str:
    fd, path = tempfile.mkstemp(suffix=suffix, prefix="fuzz-")
    with os.fdopen(fd, "wb") as fh:
        fh.write(text.encode("utf-8", "surrogateescape"))
    return path


def _exercise_model(m, where: str) -> None:
    import llmcalc as L

    check_result(L.param_breakdown(m), where)
    check_result(L.forward_flops(m, 2, 64), where)
    check_result(L.kv_cache(m, 1024, 2), where)


def check_yaml(item) -> str:
    import llmcalc as L

    kind, name, text = item
    path = _write(text, ".yaml")
    where = f"{kind} YAML mutated from {name}:\n{text[:2000]}"
    try:
        return _load_then_exercise(
            lambda: L.load_model(path) if kind == "models" else L.load_hardware(path),
            (lambda spec: _exercise_model(spec, where)) if kind == "models" else
            (lambda spec: check_result(L.latency(L.Deployment(L.load_model("gpt2"), spec), 2, 64, 8), where)),
            path, where)
    finally:
        os.unlink(path)


def _load_then_exercise(load, exercise, path: str, where: str) -> str:
    """A user file's promise: loading gives a spec or one line naming the file; the spec then gives results or
    one line; anything else is Broken with its reproducer."""
    from llmcalc.core.errors import LlmcalcError

    try:
        spec = load()
    except LlmcalcError as e:
        check_error_line(str(e), [path], where)
        return "error"
    except Exception as e:
        raise Broken(f"{where}\n-> {type(e).__name__}: {e}", exception_signature(e)) from None
    try:
        exercise(spec)
    except LlmcalcError as e:
        check_error_line(str(e), [], where)
    except Broken:
        raise
    except Exception as e:
        raise Broken(f"{where}\n-> after loading: {type(e).__name__}: {e}", exception_signature(e)) from None
    return "ok"


CONFIGS = sorted(p.parent.name for p in (ROOT / "tests" / "data" / "configs").glob("*/config.json"))
_json_leaf = st.one_of(st.none(), st.booleans(), st.integers(-2, 2**64), st.floats(allow_nan=False),
                       st.text(max_size=6), st.sampled_from([0, 1, 2, 4096, 32, 8, 128256, "llama", "silu"]))
_json = st.recursive(_json_leaf, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                         st.dictionaries(st.text(max_size=4), inner, max_size=3)),
                     max_leaves=6)


@st.composite
def config_files(draw):
    name = draw(st.sampled_from(CONFIGS))
    data = json.loads((ROOT / "tests" / "data" / "configs" / name / "config.json").read_text())
    keys = sorted(data)
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from(["set", "set", "set", "delete", "raw"]))
        key = draw(st.sampled_from(keys))
        if op == "set":
            data[key] = draw(_json)
        elif op == "delete":
            data.pop(key, None)
    text = json.dumps(data)
    if draw(st.integers(0, 9)) == 0:  # raw damage: truncation, NaN, a Latin-1 byte, deep nesting
        text = draw(st.sampled_from([text[: len(text) // 2], text.replace("}", ', "x": NaN}', 1),
                                     text.replace('"', "\udce9", 1), "[" * 5000 + "]" * 5000, "", "null", "[]"]))
    return name, text


def check_config(item) -> str:
    import llmcalc as L

    name, text = item
    folder = tempfile.mkdtemp(prefix="fuzz-")
    path = Path(folder) / "config.json"
    path.write_bytes(text.encode("utf-8", "surrogateescape"))
    where = f"config.json mutated from {name}: {text[:1500]}"
    try:
        return _load_then_exercise(lambda: L.model_from_config_file(path), lambda m: _exercise_model(m, where),
                                   str(path), where)
    finally:
        path.unlink()
        os.rmdir(folder)


# ---------------------------------------------------------------- dashboard URL decoding

@st.composite
def url_queries(draw):
    from llmcalc.dashboard.state import FIELDS

    names = sorted(FIELDS)
    keys = draw(st.lists(st.one_of(st.sampled_from(names), st.text(max_size=5)), max_size=8, unique=True))
    vals = st.one_of(st.sampled_from(["nan", "inf", "-1", "0", "1e400", "1", "2", "0.5", "", "true", "bf16",
                                      "llama-3.1-8b", "h100-sxm", "training", "99999999999999999999"]),
                     st.integers(-10, 10**6).map(str), st.floats().map(str), st.text(max_size=8))
    return {k: draw(vals) for k in keys}


def check_url(query: dict) -> str:
    from llmcalc.dashboard.state import FIELDS, decode, encode

    where = f"dashboard URL {query!r}"
    try:
        state, notes = decode(query)
    except Exception as e:
        raise Broken(f"{where}: decode raised {type(e).__name__}: {e}") from None
    for name, f in FIELDS.items():
        v = state[name]
        if type(v) is not type(f.default):
            raise Broken(f"{where}: {name} decoded to {v!r}, not a {type(f.default).__name__}")
        if isinstance(v, float) and not math.isfinite(v):
            raise Broken(f"{where}: {name} decoded to {v}")
        if isinstance(v, (int, float)) and not isinstance(v, bool) and (
                (f.lo is not None and v < f.lo) or (f.hi is not None and v > f.hi)):
            raise Broken(f"{where}: {name} = {v} outside [{f.lo}, {f.hi}]")
        if f.choices and v not in f.choices:
            raise Broken(f"{where}: {name} = {v!r} not among {f.choices}")
    for n in notes:
        if "\n" in n:
            raise Broken(f"{where}: note is not one line: {n!r}")
    again, notes2 = decode(encode(state))
    if again != state or notes2:
        raise Broken(f"{where}: encode/decode does not round-trip: {notes2}")
    return "error" if notes else "ok"


PARTS = {"cli": (cli_args, check_cli), "api": (api_calls, check_api), "files": (None, None),
         "urls": (url_queries, check_url)}


def _files():
    return st.one_of(yaml_files(), config_files().map(lambda t: ("config", *t)))


def check_file(item) -> str:
    if item[0] == "config":
        return check_config(item[1:])
    return check_yaml(item)


PARTS["files"] = (_files, check_file)
