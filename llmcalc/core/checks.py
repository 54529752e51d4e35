"""Range checks for numbers that enter a calculator: one clear LlmcalcError naming the option and the
plain value (never a numpy repr), for scalars and sweep arrays alike."""

from __future__ import annotations

import math

from .errors import LlmcalcError

# One memory-reserve rule for every "does it fit" verdict (training memory, step, fit, serve): keep this
# fraction of the device memory for the CUDA context, NCCL buffers, framework workspace and fragmentation.
MEMORY_RESERVE = 0.1
SOURCE_RESERVE = ("reserve: 10% of device memory for CUDA context, NCCL buffers, workspace and allocator "
                  "fragmentation (a judgement; vLLM's default gpu_memory_utilization=0.9 keeps the same)")


def plain(v) -> str:
    """2048 not array(2048.) nor 2048.0; nan, inf and -5 as typed; a huge int shortened."""
    if isinstance(v, int) and not isinstance(v, bool) and abs(v) > 2**64:
        digits = len(str(abs(v))) if abs(v).bit_length() < 14_000 else "thousands of"
        return f"{'-' if v < 0 else ''}{str(abs(v))[:3] if isinstance(digits, int) else ''}… ({digits} digits)"
    try:
        x = float(v)
    except (TypeError, ValueError, OverflowError):
        import numpy as np

        if np.ndim(v) > 0:
            return f"an array of {np.size(v)} {np.asarray(v).dtype} values"
        return str(v)[:60]
    if isinstance(v, int) and not isinstance(v, bool):
        return str(v)  # an integer as typed, exactly
    return _whole_or_g(x)


def _whole_or_g(x: float) -> str:
    """2048 for a whole float that prints exactly; %g beyond 1e15, where int(-1e23) would print the float's
    binary expansion (-99999999999999991611392) instead of what the user typed."""
    return str(int(x)) if math.isfinite(x) and x.is_integer() and abs(x) < 1e15 else f"{x:g}"


MIN_FRACTION = 1e-6  # the least efficiency or utilisation accepted: below it a rate underflows toward 0 (5e-324)


def check_fraction(x, option: str):
    """An efficiency or utilisation fraction: finite, in [1e-6, 1] (one rule for --mfu, --compute-efficiency,
    --link-efficiency, --eff-*: a denormal fraction would divide a finite time into an overflow)."""
    return check_number(x, option, low=MIN_FRACTION, low_ok=True, high=1)


def check_number(x, option: str, *, low: float = 0.0, low_ok: bool = False, high: float | None = None,
                 high_ok: bool = True):
    """Reject NaN, ±inf and values outside the range (``low`` excluded unless ``low_ok``; ``high``
    included unless ``high_ok`` is False) with one line naming ``option`` and the offending value.

    ``x`` may be a numpy array (sweeps): the first bad element is named. Returns ``x`` unchanged;
    ``None`` (an option not given) passes.
    """
    if x is None or _plain_in_range(x, low, low_ok, high, high_ok):
        return x
    import numpy as np

    if isinstance(x, (bool, np.bool_)) or (np.ndim(x) > 0 and np.asarray(x).dtype == bool):
        raise LlmcalcError(f"{option} expects a number, got {plain(x)}")  # True is not 1 GPU
    if isinstance(x, (str, bytes)) or (np.ndim(x) > 0 and np.asarray(x).dtype.kind in "SU"):
        # numpy reads '16' as 16.0: text from Python would pass as a number (the CLI parses its text first)
        raise LlmcalcError(f"{option} expects a number, got {x!r}")
    try:
        a = np.asarray(x, dtype=float)
    except OverflowError:  # a Python int beyond float64
        raise LlmcalcError(f"{option} is out of range, got {plain(x)}") from None
    except (TypeError, ValueError):
        raise LlmcalcError(f"{option} expects a number, got {plain(x)}") from None
    bad = ~np.isfinite(a) | ((a < low) if low_ok else (a <= low))
    if high is not None:
        bad |= (a > high) if high_ok else (a >= high)
    if np.any(bad):
        lo = f"[{plain(low)}" if low_ok else f"({plain(low)}"
        hi = "∞)" if high is None else f"{plain(high)}" + ("]" if high_ok else ")")
        raise LlmcalcError(f"{option} expects a finite number in {lo}, {hi}, got {plain(a[bad].flat[0])}")
    return x


def _exact_float(v) -> float | None:
    """``v`` as the float64 numpy would compare, when that is exact: a Python float, or an int within ±2**53."""
    t = type(v)
    if t is float or (t is int and -2**53 <= v <= 2**53):
        return float(v)
    return None


def _plain_in_range(x, low, low_ok: bool, high, high_ok: bool) -> bool:
    """The common case without numpy (a planner checks 10² plain numbers per plan; issue #13): True when ``x`` is a
    Python int or float that :func:`check_number` accepts, by the same float64 comparisons (every value converted
    exactly); False sends ``x`` down the general path, which decides and names what is wrong."""
    a, lo = _exact_float(x), _exact_float(low)
    if a is None or lo is None or not math.isfinite(a) or not (a >= lo if low_ok else a > lo):
        return False
    if high is None:
        return True
    hi = _exact_float(high)
    return hi is not None and (a <= hi if high_ok else a < hi)


# A count above 2**53 is no longer exact in float64 and, as a product with other counts, overflows int64
# (silently: numpy wraps): refused at the edge rather than computed wrongly.
MAX_COUNT = 2**53


def beyond_max_count(x) -> tuple[bool, str]:
    """Whether any element of ``x`` exceeds 2**53, and the first such element as text. Whole numbers (Python or
    numpy ints) are compared as whole numbers: 2**53 + 1 rounds to 2**53 in float64 and would pass (the fuzz
    campaign of 30 Nov 2026 found kv_cache's paged waste negative at that context)."""
    import numpy as np

    raw = np.asarray(x)
    vals = raw if raw.dtype.kind in "iuO" else raw.astype(float)
    over = vals > MAX_COUNT
    if not np.any(over):
        return False, ""
    v = vals[over].flat[0]
    return True, f"{int(v):,}" if isinstance(v, (int, np.integer)) and abs(int(v)) < 10**30 else plain(v)


def check_count(x, option: str, *, minimum: int = 1):
    """A whole count in [``minimum``, 2**53] (batch, tokens, sequences), scalar or array."""
    if x is None:
        return x
    if _plain_in_range(x, minimum, True, MAX_COUNT, True) and float(x).is_integer():
        return x  # a plain whole number in range: what the checks below accept
    check_number(x, option, low=minimum, low_ok=True)
    import numpy as np

    a = np.asarray(x, dtype=float)
    over, big = beyond_max_count(x)
    if over:
        raise LlmcalcError(f"{option} is out of range (at most 2**53 = {MAX_COUNT:,}), got {big}")
    if np.any(a != np.floor(a)):
        raise LlmcalcError(f"{option} expects a whole number, got {plain(a[a != np.floor(a)].flat[0])}")
    return x


def check_positive_int(x, option: str):
    """A count that must be a whole number of at least 1 (``--top``, ``--gpus``, ``--global-batch``): one rule
    and one wording for ``plan`` and ``plan-serve``."""
    import numpy as np

    if isinstance(x, (bool, np.bool_)) or not isinstance(x, (int, np.integer)) or x < 1:
        raise LlmcalcError(f"{option} must be a positive integer, got {plain(x)}")
    return x


def check_price(x, option: str = "--price"):
    """A price in USD per GPU-hour, scalar or array: finite, at least 0 (0: hardware already paid for) and at most
    1e30 (a product with GPU-hours stays finite); ``None`` (the catalogue's price) passes. One rule for everything
    that prices a GPU-hour (``train``, ``plan``, ``plan-serve``, ``serve``, ``summary``). Returns an array as
    float64, a scalar as given."""
    if x is None:
        return x
    import numpy as np

    a = np.asarray(x)
    if isinstance(x, (bool, np.bool_)) or a.dtype.kind not in "iuf":
        raise LlmcalcError(f"{option} must be a non-negative USD per GPU-hour, got {plain(x)}")
    a = a.astype(float)
    ok = np.isfinite(a) & (a >= 0)
    if not np.all(ok):
        bad = a[~ok].flat[0] if a.ndim else x
        raise LlmcalcError(f"{option} must be a non-negative USD per GPU-hour, got {plain(bad)}")
    if np.any(a > 1e30):
        raise LlmcalcError(f"{option} is out of range (at most 1e30 USD per GPU-hour), got {plain(a.max())}")
    return a if a.ndim else x


def check_scalar(option: str, x, why: str = "one value per call") -> None:
    """Options that fix a configuration (a TP degree, a reserve) are scalars: sweep them with one call each."""
    import numpy as np

    if x is not None and np.ndim(x) > 0:
        raise LlmcalcError(f"{option} takes {why}, got an array of {np.size(x)}; call once per value")


def fmt_input(v) -> str:
    """A value as a user typed it: 2048 (not array(2048.)), or a size for a sweep."""
    import numpy as np

    if np.ndim(v) > 0:
        return f"[array of {np.size(v)}]"
    x = np.asarray(v).item()
    return _whole_or_g(x) if isinstance(x, float) else str(x)
