"""core.checks decides plain Python numbers without numpy (issue #13: a serving plan checks 10² of them); the
verdict, and the message when rejected, must be the general path's for every input (the reference here is that
general path, reached by switching the fast path off)."""

import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llmcalc.core import checks
from llmcalc.core.errors import LlmcalcError

EDGES = [0, 1, -1, 2, 2**53 - 1, 2**53, 2**53 + 1, -2**53, 2**64, 10**400, 0.0, -0.0, 0.5, 1.0, 1.5, 1e-6, 1e-7,
         5e-324, 1e308, math.inf, -math.inf, math.nan, float(2**53), float(2**53 + 2), 1e15 + 0.5, True, False]
BOUNDS = [(0.0, False, None, True), (1, True, None, True), (0, True, 1, False), (1e-6, True, 1, True),
          (2, True, 2**53, True), (-1.5, False, 7.25, False)]


def _outcome(fn, *a, **k):
    try:
        fn(*a, **k)
        return "ok"
    except LlmcalcError as e:
        return str(e)


def _both(monkeypatch, fn, *a, **k):
    fast = _outcome(fn, *a, **k)
    with monkeypatch.context() as mp:
        mp.setattr(checks, "_plain_in_range", lambda *_: False)
        general = _outcome(fn, *a, **k)
    return fast, general


def test_edges_agree_with_the_general_path(monkeypatch):
    for x in EDGES:
        for low, low_ok, high, high_ok in BOUNDS:
            f, g = _both(monkeypatch, checks.check_number, x, "--x", low=low, low_ok=low_ok, high=high,
                         high_ok=high_ok)
            assert f == g, (x, low, high)
        for minimum in (0, 1, 2):
            f, g = _both(monkeypatch, checks.check_count, x, "--n", minimum=minimum)
            assert f == g, (x, minimum)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(x=st.one_of(st.integers(min_value=-2**60, max_value=2**60), st.floats(allow_nan=True, allow_infinity=True)),
       b=st.sampled_from(BOUNDS))
def test_any_plain_number_agrees_with_the_general_path(monkeypatch, x, b):
    low, low_ok, high, high_ok = b
    f, g = _both(monkeypatch, checks.check_number, x, "--x", low=low, low_ok=low_ok, high=high, high_ok=high_ok)
    assert f == g
    f, g = _both(monkeypatch, checks.check_count, x, "--n")
    assert f == g


@settings(max_examples=400, deadline=None)
@given(v=st.one_of(st.integers(min_value=2**53 - 64, max_value=2**53 + 64), st.integers(min_value=-4, max_value=2**70)),
       wrap=st.sampled_from(["int", "np.int64", "list", "array"]))
def test_check_count_accepts_exactly_the_whole_numbers_up_to_2_53(v, wrap):
    """The reference is Python's exact integer comparison: 2**53 + 1 is out of range even though it rounds to 2**53
    in float64 (benchmarks/fuzz.py 50000 --seed 20261204: kv_cache with that context reported a negative paged
    waste)."""
    import numpy as np

    if wrap == "np.int64" and not -2**63 <= v < 2**63:
        return
    x = {"int": v, "np.int64": np.int64(v) if -2**63 <= v < 2**63 else v, "list": [1, v],
         "array": np.array([1, v]) if -2**63 <= v < 2**63 else [1, v]}[wrap]
    expect_ok = 1 <= v <= 2**53
    assert (_outcome(checks.check_count, x, "--n") == "ok") == expect_ok, (v, wrap)
