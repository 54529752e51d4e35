"""Human quantities in, SI base units out ("80 GiB" -> 85899345920.0 bytes), and back for display.

Why not pint here: importing pint and building a registry costs ~0.6 s, which alone would blow the
CLI's 0.3 s budget. This parser is small and strict; the test-suite checks it against pint with the
same unit definitions (see :func:`pint_registry`), and notebooks get pint Quantities from results.

Conventions (never mixed): kB/MB/GB/TB are powers of 1000, KiB/MiB/GiB/TiB powers of 1024;
lower-case ``b`` is a bit (network links are sold in Gb/s); "TFLOPS" means TFLOP/s while "FLOPs"
(lower-case s) is a count; "TOPS" is tera-operations per second (integer math), the same dimension
as FLOP/s.
"""

from __future__ import annotations

import math
import numbers
import re
from functools import lru_cache

from .errors import UnitError

# A dimension is a sorted tuple of (base, exponent). Bases: byte, flop, s, W, usd.
Dim = tuple[tuple[str, int], ...]


def _dim(**exps: int) -> Dim:
    return tuple(sorted((k, v) for k, v in exps.items() if v))


BYTES = _dim(byte=1)
BYTES_PER_S = _dim(byte=1, s=-1)
FLOP = _dim(flop=1)
FLOP_PER_S = _dim(flop=1, s=-1)
SECONDS = _dim(s=1)
WATTS = _dim(W=1)
USD = _dim(usd=1)
USD_PER_HOUR = _dim(usd=1, s=-1)
DIMENSIONLESS: Dim = ()

DIM_NAMES = {
    BYTES: "memory size (e.g. '80 GiB', '141 GB')",
    BYTES_PER_S: "bandwidth (e.g. '3.35 TB/s', '400 Gb/s')",
    FLOP: "operation count (e.g. '3.8e25 FLOP')",
    FLOP_PER_S: "compute rate (e.g. '989 TFLOP/s', '1979 TOPS')",
    SECONDS: "time (e.g. '34 days', '20 ms')",
    WATTS: "power (e.g. '700 W')",
    USD: "money (e.g. '2.49 USD')",
    USD_PER_HOUR: "price per hour (e.g. '2.49 USD/h', '$2.49/h')",
    DIMENSIONLESS: "plain number",
}

_SI = {"": 1.0, "k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18}
_BIN = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50}


def _build_units() -> dict[str, tuple[float, Dim]]:
    units: dict[str, tuple[float, Dim]] = {}
    for p, f in _SI.items():
        units[p + "B"] = (f, BYTES)
        units[p + "b"] = (f / 8, BYTES)  # bits: network links
        units[p + "FLOP"] = (f, FLOP)
        units[p + "FLOPs"] = (f, FLOP)
        units[p + "OP"] = (f, FLOP)
        units[p + "FLOPS"] = (f, FLOP_PER_S)
        units[p + "OPS"] = (f, FLOP_PER_S)
        units[p + "bps"] = (f / 8, BYTES_PER_S)
        units[p + "Bps"] = (f, BYTES_PER_S)  # Google's TPU pages write "GBps"
        units[p + "W"] = (f, WATTS)
    for p, f in _BIN.items():
        units[p + "B"] = (float(f), BYTES)
        units[p + "Bps"] = (float(f), BYTES_PER_S)
    units.update(
        {
            "byte": (1.0, BYTES), "bytes": (1.0, BYTES), "bit": (1 / 8, BYTES), "bits": (1 / 8, BYTES),
            "s": (1.0, SECONDS), "sec": (1.0, SECONDS), "ms": (1e-3, SECONDS), "us": (1e-6, SECONDS),
            "µs": (1e-6, SECONDS), "ns": (1e-9, SECONDS), "min": (60.0, SECONDS),
            "h": (3600.0, SECONDS), "hr": (3600.0, SECONDS), "hour": (3600.0, SECONDS), "hours": (3600.0, SECONDS),
            "d": (86400.0, SECONDS), "day": (86400.0, SECONDS), "days": (86400.0, SECONDS),
            "USD": (1.0, USD), "$": (1.0, USD),
        }
    )
    return units


_UNITS = _build_units()
# An integer part with commas must group thousands ("1,000", "8,192"): "8,0 GB" or "1,5T" (a decimal comma) is
# refused, never read as 80 GB or 15T. Underscores as Python writes them ("1_000").
_NUMBER = r"[-+]?(?:(?:\d{1,3}(?:,\d{3})+|\d+(?:_\d+)*)(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
_QUANTITY = re.compile(rf"^\s*(?P<pre>\$)?\s*(?P<num>{_NUMBER})\s*(?P<unit>.*?)\s*$")


def _unit_factor(unit: str) -> tuple[float, Dim]:
    """Factor to SI and dimension of a unit such as 'GiB', 'TB/s', 'TFLOP/s', 'USD/h' or 'Gb/s'."""
    parts = [p.strip() for p in re.split(r"\s*/\s*|\s+per\s+", unit)]
    if not parts or len(parts) > 2 or not all(parts):
        raise KeyError(unit)
    factor, dim = _UNITS[parts[0]]
    if len(parts) == 2:
        f2, d2 = _UNITS[parts[1]]
        factor /= f2
        merged = dict(dim)
        for base, e in d2:
            merged[base] = merged.get(base, 0) - e
        dim = _dim(**merged)
    return factor, dim


def parse(text: str | int | float, expected: Dim | None = None) -> float:
    """Parse ``text`` into SI base units, checking its dimension against ``expected`` when given.

    Examples: parse("80 GiB", BYTES) == 80 * 2**30; parse("450 GB/s", BYTES_PER_S) == 4.5e11;
    parse("400 Gb/s", BYTES_PER_S) == 5e10; parse("1 TB", FLOP_PER_S) raises UnitError.
    Anything but a string or a plain number (a YAML mapping such as ``{value: 80}``, a list, True) and any
    value that is not finite (``1e400 GiB``) is a UnitError.
    """
    if isinstance(text, bool) or not isinstance(text, (str, numbers.Real)):
        got = repr(text) if isinstance(text, (dict, list, tuple, bool, type(None))) else type(text).__name__
        raise UnitError(f"expected a quantity such as '80 GiB', got {got[:60]}")
    if not isinstance(text, str):
        if expected not in (None, DIMENSIONLESS):
            raise UnitError(f"{text!r} has no unit; expected a {DIM_NAMES[expected]}")
        try:
            value = float(text)
        except OverflowError:
            value = math.inf
        if not math.isfinite(value):
            shown = repr(text) if len(repr(text)) <= 40 else f"{repr(text)[:12]}… ({len(repr(text))} digits)"
            raise UnitError(f"{shown} is not a finite number")
        return value
    if len(text) > 200:  # no quantity is this long; keeps a pasted file out of the regex and the cache
        raise UnitError(f"cannot read {text[:40]!r}… ({len(text)} characters) as a quantity")
    return _parse(text, expected)


@lru_cache(maxsize=4096)
def _parse(text: str, expected: Dim | None) -> float:
    m = _QUANTITY.match(text)
    if not m:
        raise UnitError(f"cannot read {text!r} as a quantity; expected a number followed by a unit, e.g. '80 GiB'")
    _no_decimal_comma(text)
    value = float(m["num"].replace(",", "").replace("_", ""))
    unit = m["unit"]
    if m["pre"]:  # "$2.49/h"
        unit = "USD" + unit if unit.startswith("/") else ("USD" if not unit else unit)
    if not unit:
        dim: Dim = DIMENSIONLESS
        factor = 1.0
    else:
        try:
            factor, dim = _unit_factor(unit)
        except KeyError:
            raise UnitError(f"unknown unit {unit!r} in {text!r}; known units include GB, GiB, TB/s, Gb/s, "
                            "TFLOP/s, TOPS, W, ms, h, days, USD/h") from None
    if expected is not None and dim != expected:
        want = DIM_NAMES.get(expected, str(expected))
        got = DIM_NAMES.get(dim, unit)
        got = got.split(" (")[0]
        raise UnitError(f"{text!r} is {_a(got)} {got}, but {_a(want)} {want} is expected")
    si = value * factor
    if not math.isfinite(si):
        raise UnitError(f"{text!r} is out of range (not a finite number)")
    return si


def _no_decimal_comma(text: str) -> None:
    """A comma in a number that does not group thousands ('8,0 GB', '1,5T') is a decimal comma: say so."""
    m = re.search(r"\d[\d,]*,\d[\d,]*", text)
    if m and not re.fullmatch(r"\d{1,3}(?:,\d{3})+", m[0]):
        raise UnitError(f"cannot read {text[:40]!r}: a comma in a number groups thousands (1,000 or 8,192); "
                        f"for a decimal write a point, e.g. {m[0].replace(',', '.')!r}")


def _a(noun: str) -> str:
    return "an" if noun[:1] in "aeiou" else "a"


_COUNT_SUFFIX = {"": 1.0, "k": 1e3, "K": 1e3, "M": 1e6, "B": 1e9, "G": 1e9, "T": 1e12}


def parse_count(text: str | int | float) -> float:
    """A plain count with an optional k/M/B/T suffix: '300B' tokens -> 3e11, '15T' -> 1.5e13, '2e9' -> 2e9."""
    if isinstance(text, bool) or not isinstance(text, (str, numbers.Real)):
        got = repr(text) if isinstance(text, (dict, list, tuple, bool, type(None))) else type(text).__name__
        raise UnitError(f"cannot read {got[:60]} as a count; expected e.g. 300e9, 300B or 15T")
    if not isinstance(text, str):
        try:
            value = float(text)
        except OverflowError:
            value = math.inf
    else:
        m = re.fullmatch(rf"\s*({_NUMBER})\s*([kKMBGT]?)\s*(?:tokens?|params?|users?)?\s*", text[:200],
                         re.ASCII)  # ASCII digits and spaces only: '\x1e2' or Arabic-Indic digits are not a count
        if not m or len(text) > 200:
            _no_decimal_comma(text[:200])
            raise UnitError(f"cannot read {text[:40]!r} as a count; expected e.g. 300e9, 300B or 15T")
        value = float(m[1].replace(",", "").replace("_", "")) * _COUNT_SUFFIX[m[2]]
    if not math.isfinite(value):
        raise UnitError(f"{text!r} is out of range (not a finite number)")
    return value


def parse_duration(text: str | int | float, option: str, *, bare_unit: str | None = None) -> float:
    """A time option in seconds: '50ms', '0.05 s', '2 min'. A latency target written as a bare number ('50') is
    ambiguous, 50 ms or 50 s, so with ``bare_unit=None`` it is an error naming ``option`` and both spellings; an
    option whose help documents its unit (``--step-time``: seconds) passes ``bare_unit='s'``."""
    bare = isinstance(text, (int, float)) and not isinstance(text, bool)
    if isinstance(text, str) and re.fullmatch(rf"\s*{_NUMBER}\s*", text):
        bare = True
    if bare:
        if bare_unit is None:
            t = str(text).strip()
            raise UnitError(f"{option} needs a unit, e.g. '{t}ms' or '{t}s' (a bare number could be either), got {t}")
        try:
            return parse(f"{str(text).strip()} {bare_unit}", SECONDS)
        except UnitError as e:
            raise UnitError(f"{option}: {e}") from None
    try:
        return parse(text, SECONDS)
    except UnitError as e:
        raise UnitError(f"{option} expects a time such as '50ms' or '0.05s', got {str(text)[:40]!r} ({e})") from None


def parse_whole(text: str | int) -> int:
    """A whole count with an optional k/M/B/T suffix, as every integer CLI option reads it: '32k' -> 32000,
    '1.5k' -> 1500, '2e9' -> 2000000000, '8' -> 8 (exact, however many digits); '1.5' and '0.5' are errors."""
    if isinstance(text, int) and not isinstance(text, bool):
        return text
    # ASCII only: int() refuses some characters str.isspace()/\d accept ('\x1e2', Arabic-Indic digits), and at
    # most 200 characters as parse_count reads (int() refuses over 4,300 digits); parse_count says so for the rest.
    if isinstance(text, str) and len(text) <= 200 and re.fullmatch(r"[ \t]*[-+]?[0-9]+[ \t]*", text):
        return int(text)
    value = parse_count(text)
    if value != math.floor(value):
        raise UnitError(f"{text!r} is not a whole number")
    return int(value)


# ---------------------------------------------------------------- display


def _scaled(value: float, steps: list[tuple[float, str]]) -> str:
    if abs(value) >= steps[0][0] * 1e9:  # beyond the largest prefix by 10⁹: plain scientific, no prefix
        return f"{value / steps[-1][0]:.3g} {steps[-1][1]}"
    for factor, suffix in steps:
        if abs(value) >= factor:
            return f"{_num(value / factor)} {suffix}"
    return f"{_num(value / steps[-1][0])} {steps[-1][1]}"


def _num(x: float) -> str:
    if x == 0:
        return "0"
    if not math.isfinite(x):
        return str(x)
    if abs(x) >= 1e9:  # past the largest prefix by 10⁹: "3.07e+277", not 280 digits in a table (a user test)
        return f"{x:.3g}"
    digits = max(0, 3 - int(math.floor(math.log10(abs(x)))) - 1)
    return f"{x:,.{min(digits, 3)}f}"


_DEC = [(1e18, "E"), (1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"), (1.0, "")]


COUNT_UNITS = ("GPU", "replica", "seq", "token", "tokens", "layer", "layers", "microbatch", "step", "param")


def fmt(value: float, unit: str) -> str:
    """Format an SI value for people: fmt(85899345920, 'B') -> '85.9 GB (80 GiB)'.

    ``unit`` is the SI unit the engine stores: B, B/s, FLOP, FLOP/s, s, W, USD, USD/h, param, or any other
    plain label that is printed as-is after a decimal-prefixed number.
    """
    if getattr(value, "ndim", 0):  # a sweep: each element formatted, long ones summarised
        flat = value.ravel()
        if flat.size > 8:
            return f"[{flat.size} values: {fmt(flat.min(), unit)} … {fmt(flat.max(), unit)}]"
        return "[" + ", ".join(fmt(v, unit) for v in flat) + "]"
    try:
        value = float(value)
    except (TypeError, ValueError):
        return str(value)
    if unit == "B":
        dec = _scaled(value, [(f, p + "B") for f, p in _DEC])
        if abs(value) >= 2**20:
            binary = _scaled(value, [(2**50, "PiB"), (2**40, "TiB"), (2**30, "GiB"), (2**20, "MiB")])
            return f"{dec} ({binary})"
        return dec
    if unit in ("FLOP", "FLOP/s") and abs(value) >= 1e21:
        return f"{value:.3g} {unit}".replace("e+", "e")  # training budgets read best as 3.8e25 FLOP
    if unit in ("B/s", "FLOP", "FLOP/s", "W"):
        base, _, per = unit.partition("/")
        return _scaled(value, [(f, p + base + ("/" + per if per else "")) for f, p in _DEC])
    if unit == "s":
        a = abs(value)
        if a >= 2 * 86400:
            return f"{_num(value / 86400)} days"
        if a >= 2 * 3600:
            return f"{_num(value / 3600)} h"
        if a >= 1:
            return f"{_num(value)} s"
        if a >= 1e-3:
            return f"{_num(value * 1e3)} ms"
        if a == 0:  # no wait at all reads "0 s" (the RL page's busy pool printed "0 µs" of idle)
            return "0 s"
        return f"{_num(value * 1e6)} µs"
    if unit in ("USD", "USD/h"):
        return f"${value:,.2f}" + ("/h" if unit == "USD/h" else "")
    if unit in COUNT_UNITS and float(value).is_integer() and abs(value) < 1e6:
        return f"{int(value):,} {unit}"  # whole things stay whole: "16 GPU", not "16.0 GPU"
    if unit in ("param", "params", "token", "tokens", "FLOP/B", "GPU"):
        return _scaled(value, [(1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k"), (1.0, "")]).rstrip() + f" {unit}"
    if unit in ("", "1", "ratio"):
        return _num(value)
    if unit == "%":
        return f"{value * 100:.1f}%"
    return f"{_num(value)} {unit}"


def pint_registry():  # pragma: no cover - exercised by tests and notebooks, never by the CLI
    """A pint UnitRegistry in which bytes and FLOPs are real, distinct dimensions.

    pint's default registry treats ``byte`` as dimensionless-ish bits and has no FLOP; here a
    byte-for-FLOP mix-up raises DimensionalityError.
    """
    import pint

    ureg = pint.UnitRegistry(cache_folder=":auto:")
    ureg.define("flop = [flop] = FLOP")
    ureg.define("op = flop = OP")
    ureg.define("usd = [currency] = USD")
    return ureg


_PINT_UNITS = {"B": "byte", "B/s": "byte/second", "FLOP": "flop", "FLOP/s": "flop/second", "s": "second",
               "W": "watt", "USD": "usd", "USD/h": "usd/hour"}


def to_pint(value, unit: str, ureg=None):
    """The value as a pint Quantity (notebooks): to_pint(8.5e10, 'B').to('GiB')."""
    ureg = ureg or _default_ureg()
    return ureg.Quantity(value, _PINT_UNITS.get(unit, "dimensionless" if unit in ("", "param", "token") else unit))


@lru_cache(maxsize=1)
def _default_ureg():
    return pint_registry()
