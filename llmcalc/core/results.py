"""Results that explain themselves.

A :class:`Figure` is one number with its unit, the formula that produced it (in shape-suffix
notation), the values substituted, and the source. :func:`derive` builds a Figure by *evaluating*
the formula text, so the formula a user reads is, by construction, the one that was computed.

Values may be numpy arrays (sweeps); formulas then evaluate element-wise.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from .units import fmt


@dataclass(frozen=True)
class Figure:
    key: str  # stable machine key, e.g. "attention/qkv"
    value: Any  # float | int | numpy array, SI units
    unit: str  # SI unit: B, B/s, FLOP, FLOP/s, s, param, ...
    formula: str = ""  # e.g. "2·B·L·D·(H+2·G)·K"
    substituted: str = ""  # e.g. "2·1·2048·4096·(32+2·8)·128"
    source: str = ""  # paper + section, or "definition"
    label: str = ""  # human label; defaults to the key
    shape: str = ""  # einsum or tensor shape, e.g. "BLD,DHK->BLHK"

    @property
    def name(self) -> str:
        return self.label or self.key

    def text(self) -> str:
        return fmt(self.value, self.unit)

    def explain(self) -> str:
        lines = [f"{self.name} = {self.text()}"]
        if self.shape:
            lines.append(f"    shape:   {self.shape}")
        if self.formula:
            lines.append(f"    formula: {self.formula}")
        if self.substituted and self.substituted != self.formula:
            lines.append(f"    values:  {self.substituted}")
        if self.source:
            lines.append(f"    source:  {self.source}")
        return "\n".join(lines)

    def as_dict(self) -> dict:
        return {"key": self.key, "value": _jsonable(self.value), "unit": self.unit, "formula": self.formula,
                "substituted": self.substituted, "source": self.source, "label": self.name, "shape": self.shape}


def _get_substituted(self) -> str:
    s = self.__dict__["_substituted"]
    if not isinstance(s, str):  # a _Substitution from derive: written out on first read, then kept
        s = s()
        self.__dict__["_substituted"] = s
    return s


def _set_substituted(self, s) -> None:  # the dataclass __init__ (and replace) store through here
    self.__dict__["_substituted"] = s


# `substituted` stays a dataclass field (init, repr, eq, replace, as_dict read it as a str); only its text is
# deferred.
Figure.substituted = property(_get_substituted, _set_substituted)


def relabel(f: Figure, **changes) -> Figure:
    """``dataclasses.replace`` for a Figure that keeps a deferred substitution deferred (replace reads every field,
    which writes the substitution out: 10⁴ times in a planner's FLOP tables)."""
    names = set(Figure.__dataclass_fields__)
    if not names.issuperset(changes):
        raise TypeError(f"Figure has no field(s) {sorted(set(changes) - names)}")
    g = object.__new__(Figure)
    g.__dict__.update(f.__dict__)
    g.__dict__.update({("_substituted" if k == "substituted" else k): v for k, v in changes.items()})
    return g


def errstate_key() -> tuple:
    """numpy's floating-point error handling now, hashable (part of every memo key). Before numpy is imported no
    error state can have been changed: () then, so a one-liner that never needs numpy does not import it."""
    import sys

    np = sys.modules.get("numpy")
    return () if np is None else tuple(sorted(np.geterr().items()))


def memo_by_identity(fn):
    """Cache ``fn(obj, *args)`` per process by the identity of ``obj`` (a frozen spec: a Model or Hardware) and
    hashable args. The entry holds ``obj``, so its id cannot be reused while cached; results are shared, so
    ``fn`` must return something its callers only read (issue #13: a planner asks 10³ times for the same model's
    parameter counts)."""
    from .held import HeldCache

    cache = HeldCache(1024)

    def wrapper(obj, *args):
        # 1 and True hash alike: the types keep them apart; numpy's error state too (a result computed where
        # warnings were silenced must not answer a call that would have warned)
        key = (*args, *map(type, args), errstate_key())
        try:
            hit = cache.get((obj,), key)
        except TypeError:  # an unhashable argument (an array): not cached
            return fn(obj, *args)
        return hit if hit is not None else cache.put((obj,), key, fn(obj, *args))

    wrapper.__wrapped__ = fn
    wrapper.__doc__ = fn.__doc__
    wrapper.__name__ = fn.__name__
    return wrapper


@dataclass(frozen=True)
class Result:
    """An ordered set of figures plus the assumptions they rest on."""

    title: str
    figures: tuple[Figure, ...]
    assumptions: tuple[str, ...] = ()
    data: dict = field(default_factory=dict)  # extra machine-readable payload (stable JSON keys)

    def __getitem__(self, key: str) -> Figure:
        for f in self.figures:
            if f.key == key:
                return f
        raise KeyError(f"{key!r} not in result {self.title!r}; keys: {[f.key for f in self.figures]}")

    def __contains__(self, key: object) -> bool:
        return any(f.key == key for f in self.figures)

    def get(self, key: str, default=None):
        """The figure ``key``, or ``default`` when this result has none (a cost without a price, say)."""
        return next((f for f in self.figures if f.key == key), default)

    def value(self, key: str):
        return self[key].value

    def keys(self) -> list[str]:
        return [f.key for f in self.figures]

    def explain(self) -> str:
        body = "\n".join(f.explain() for f in self.figures)
        if self.assumptions:
            body += "\nassumptions:\n" + "\n".join(f"  - {a}" for a in self.assumptions)
        return f"{self.title}\n{body}"

    def as_dict(self) -> dict:
        return {"title": self.title, **{k: _jsonable(v) for k, v in self.data.items()},
                "figures": [f.as_dict() for f in self.figures], "assumptions": list(self.assumptions)}

    def to_frame(self):
        """The figures as a pandas DataFrame (notebooks)."""
        import pandas as pd

        return pd.DataFrame([f.as_dict() for f in self.figures]).set_index("key")

    def to_pint(self, key: str):
        from .units import to_pint

        f = self[key]
        return to_pint(f.value, f.unit)


def _jsonable(v):
    if hasattr(v, "tolist"):
        return v.tolist()
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


# ---------------------------------------------------------------- formulas that evaluate themselves

_NAME = re.compile(r"[A-Za-z_][A-Za-z_0-9]*")


def _np():
    import numpy as np

    return np


def _ceil(x):
    if isinstance(x, (int, float)):
        return math.ceil(x)
    return _np().ceil(x)


def _max(a, b):
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return max(a, b)
    return _np().maximum(a, b)


def _min(a, b):
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return min(a, b)
    return _np().minimum(a, b)


_FUNCS = {"ceil": _ceil, "max": _max, "min": _min, "sqrt": lambda x: x**0.5}
_GLOBALS = {"__builtins__": {}, **_FUNCS}  # eval's globals, built once: our functions and no builtins
_PLAIN = (int, float)  # values of these exact types need no widening and no sweep handling


@lru_cache(maxsize=1024)
def _compile(formula: str):
    return compile(formula, f"<formula {formula}>", "eval")


@lru_cache(maxsize=1024)
def _names(formula: str) -> frozenset:
    """The value names a formula reads (its functions excepted): parsed once per formula text."""
    return frozenset(n for n in _NAME.findall(formula) if n not in _FUNCS)


class _Substitution:
    """The formula with the values written in, built when first read (``--explain``, JSON, a sheet), not on every
    derive: a planner derives 10⁴-10⁵ figures and prints a few (issue #13, one-liners <= 0.3 s). Arrays are
    shown at once (their text is short and a caller may reuse the array); scalars are immutable."""

    __slots__ = ("formula", "values")

    def __init__(self, formula: str, values: dict):
        self.formula = formula
        self.values = {k: (_show(v) if getattr(v, "ndim", 0) else v) for k, v in values.items()}

    def __call__(self) -> str:  # an array's text was made in __init__; _show(text) is the text
        vals = self.values
        return pretty("".join(_show(vals[part]) if is_name else part for is_name, part in _template(self.formula)))


@lru_cache(maxsize=1024)
def _template(formula: str) -> tuple[tuple[bool, str], ...]:
    """The formula cut into (is a value name, text) pieces once; joining the pieces with the values shown gives
    what ``_NAME.sub`` with :func:`_show` gives."""
    parts, at = [], 0
    for m in _NAME.finditer(formula):
        parts.append((False, formula[at:m.start()]))
        parts.append((m.group(0) not in _FUNCS, m.group(0)))
        at = m.end()
    parts.append((False, formula[at:]))
    return tuple(p for p in parts if p[1])


def pretty(formula: str) -> str:
    return formula.replace("**", "^").replace("*", "·").replace(" ", "")


_pretty = lru_cache(maxsize=1024)(pretty)


def _show(v) -> str:
    if hasattr(v, "shape") and getattr(v, "shape", ()) != ():
        return f"[array of {v.size}]" if v.size > 4 else "[" + ", ".join(_show(x) for x in v.tolist()) + "]"
    if isinstance(v, bool):
        return str(int(v))
    if isinstance(v, int) or (isinstance(v, float) and v.is_integer() and abs(v) < 1e15):
        return str(int(v))
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def derive(key: str, formula: str, unit: str, source: str = "", *, label: str = "", shape: str = "",
           **values) -> Figure:
    """Evaluate ``formula`` (Python syntax) over ``values`` and keep the derivation.

    >>> derive("x", "2*B*L*D", "FLOP", B=1, L=8, D=4).value
    64
    """
    missing = _names(formula).difference(values)
    if missing:
        raise NameError(f"formula {formula!r} uses {sorted(missing)} but no value was given")
    plain = all(type(v) in _PLAIN for v in values.values())  # the common case: Python numbers only
    if not plain and any(hasattr(v, "dtype") for v in values.values()):
        values = {k: _wide(v) for k, v in values.items()}
    try:
        if not plain and any(getattr(v, "ndim", 0) for v in values.values()):
            # A sweep: impossible elements (pp = 0 in a layout grid) are computed too and masked by the caller's
            # `valid`; their inf/NaN must not warn. Tests hold every VALID element finite (tests/fuzzkit.py).
            import numpy as np

            with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                value = eval(_compile(formula), _GLOBALS, values)  # noqa: S307
        else:
            value = eval(_compile(formula), _GLOBALS, values)  # noqa: S307 - our own text
    except (ZeroDivisionError, OverflowError) as e:  # Python floats raise where numpy would give inf
        from .errors import LlmcalcError

        shown = pretty(_NAME.sub(lambda m: m.group(0) if m.group(0) in _FUNCS else _show(values[m.group(0)]), formula))
        raise LlmcalcError(f"{label or key} = {pretty(formula)} cannot be evaluated for {shown} ({e}): an input is "
                           "too large, or zero where it divides") from None

    substituted = _Substitution(formula, values)
    if _nonfinite_scalar(value) and not any(_nonfinite_scalar(v) for v in values.values()):
        # finite inputs, infinite or NaN answer: an overflow (1e308 parameters) or a zero divisor; never print it
        from .errors import LlmcalcError

        raise LlmcalcError(f"{label or key} = {pretty(formula)} is not finite for {substituted()}: an input is too "
                           "large, or zero where it divides")
    # Figure(...) without the frozen dataclass's eight object.__setattr__ calls (derive runs 10⁴-10⁵ times in a
    # planner): the same instance dict the generated __init__ would fill.
    fig = object.__new__(Figure)
    fig.__dict__.update(key=key, value=value, unit=unit, formula=_pretty(formula), _substituted=substituted,
                        source=source, label=label, shape=shape)
    return fig


def _wide(v):
    """numpy integers wrap silently past 2**63 (a batch x tokens x width product): integer arrays are evaluated in
    float64 and integer scalars as exact Python ints, so no formula overflows quietly (issue #13)."""
    import numpy as np

    if isinstance(v, np.ndarray) and v.dtype.kind in "iub" and v.dtype != bool:
        return v.astype(float)
    if isinstance(v, np.integer):
        return int(v)
    return v


def _nonfinite_scalar(v) -> bool:
    """A float scalar (Python or numpy) that is inf or NaN; arrays are sweeps, masked by their callers."""
    if getattr(v, "ndim", 0) or isinstance(v, (bool, int, str)) or v is None:
        return False
    try:
        return not math.isfinite(v)
    except (TypeError, ValueError, OverflowError):
        return False


def total(key: str, parts: list[Figure], unit: str | None = None, label: str = "") -> Figure:
    """The sum of ``parts``, explained as the sum of their keys."""
    value = sum(p.value for p in parts)
    return Figure(key=key, value=value, unit=unit or parts[0].unit, formula=" + ".join(p.key for p in parts),
                  substituted=" + ".join(_show(p.value) for p in parts), source="sum of the rows above",
                  label=label)
