"""llmcalc.rl.loop.simulate_async (Generator's methods written out over local variables, issue #13) against the
readable reference simulate_async_events (the loop over Generator.admit/advance/reprefill and DecodeCost.step_s):
the same events and the same float operations in the same order, so every output, timeline included, is equal to
the bit, over generated pools, length tables, staleness bounds, train and sync times."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st
from rl_async_reference import simulate_async_events

from llmcalc.core.catalogue import load_hardware, load_model
from llmcalc.inference.latency import Deployment
from llmcalc.rl.loop import simulate_async
from llmcalc.rl.rollout import DecodeCost, Pool

_COSTS: dict = {}


def _cost(slots: int, overhead: float, per_seq: float, prompt: int) -> DecodeCost:
    key = (slots, overhead, per_seq, prompt)
    if key not in _COSTS:
        dep = Deployment(load_model("qwen2.5-7b"), load_hardware("h100-sxm"), 1)
        _COSTS[key] = DecodeCost(dep, slots, overhead, float(prompt), per_seq)
    return _COSTS[key]


def _same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert a[k] == b[k], k  # exact: floats, lists of floats, timeline tuples


@settings(max_examples=60, deadline=None)
@given(slots=st.sampled_from([1, 3, 16, 64, 200]), engines=st.integers(1, 12), group=st.sampled_from([1, 4, 16]),
       overhead=st.sampled_from([0.0, 0.005]), per_seq=st.sampled_from([0.0, 75e-6]),
       prompt=st.sampled_from([16, 512, 2048]),
       classes=st.lists(st.tuples(st.integers(1, 20000), st.integers(1, 200)), min_size=1, max_size=6),
       eta=st.one_of(st.none(), st.integers(0, 4)), partial=st.booleans(), t_train=st.floats(0.01, 200.0),
       t_sync=st.sampled_from([0.0, 0.05, 3.0]))
def test_fast_loop_equals_reference(slots, engines, group, overhead, per_seq, prompt, classes, eta, partial, t_train,
                                    t_sync):
    pool = Pool(_cost(slots, overhead, per_seq, prompt), engines, group)
    lengths, counts = [float(x) for x, _ in classes], [float(c) for _, c in classes]
    _same(simulate_async(pool, lengths, counts, t_train, t_sync, eta, partial),
          simulate_async_events(pool, lengths, counts, t_train, t_sync, eta, partial))


def test_fast_loop_equals_reference_at_readme_scale():
    """The README's first rl one-liner's batch (512 × 16 samples, lognormal mean 3,000, cv 1, capped at 8,192) on
    28 engines of 326 slots at η = 2: ~6,000 events, fractional admissions, the partial-rollout re-prefills."""
    from llmcalc.rl.lengths import parse_response_len

    lengths, counts = parse_response_len("3000,1.0", 8192).cohorts(512 * 16)
    pool = Pool(_cost(326, 0.005, 75e-6, 512), 28, 16)
    for eta, partial in ((2, True), (0, True), (1, False), (None, True)):
        fast = simulate_async(pool, lengths, counts, 114.2, 0.165, eta, partial)
        _same(fast, simulate_async_events(pool, lengths, counts, 114.2, 0.165, eta, partial))
        assert math.isfinite(fast["period_s"]) and fast["period_s"] >= 114.2 + 0.165 - 1e-9  # trainer-bound at least


@settings(max_examples=40, deadline=None)
@given(slots=st.sampled_from([1, 16, 200]), engines=st.integers(1, 8), group=st.sampled_from([1, 16]),
       classes=st.lists(st.tuples(st.integers(1, 20000), st.integers(1, 200)), min_size=1, max_size=4),
       eta=st.one_of(st.none(), st.integers(0, 3)), partial=st.booleans(), t_train=st.floats(0.001, 500.0),
       t_sync=st.sampled_from([0.0, 0.05, 3.0]))
def test_period_is_at_least_train_plus_sync(slots, engines, group, classes, eta, partial, t_train, t_sync):
    """What the split search's pruning rests on (llmcalc.rl.step.best_split): the trainer trains, then syncs, so
    each step ends at least t_train + t_sync − 2·EPS after the last, and so does the measured period."""
    pool = Pool(_cost(slots, 0.005, 75e-6, 512), engines, group)
    lengths, counts = [float(x) for x, _ in classes], [float(c) for _, c in classes]
    sim = simulate_async(pool, lengths, counts, t_train, t_sync, eta, partial)
    assert sim["period_s"] >= t_train + t_sync - 2e-9
    ends = sim["end_times_s"]
    assert all(b - a >= t_train + t_sync - 2e-9 for a, b in zip(ends[:-1], ends[1:], strict=True))


@settings(max_examples=40, deadline=None)
@given(slots=st.sampled_from([1, 16, 200]), engines=st.integers(1, 8), group=st.sampled_from([1, 16]),
       classes=st.lists(st.tuples(st.integers(1, 20000), st.integers(1, 200)), min_size=1, max_size=4),
       eta=st.one_of(st.none(), st.integers(0, 3)), partial=st.booleans(), t_train=st.floats(0.001, 500.0),
       t_sync=st.sampled_from([0.0, 0.05, 3.0]), ratio=st.floats(0.5, 1.5))
def test_stop_above_only_stops_a_period_above_it(slots, engines, group, classes, eta, partial, t_train, t_sync,
                                                 ratio):
    """simulate_async(stop_above=x) (the split search's candidates after the first): None only when the full
    simulation's period exceeds x; otherwise the full simulation, unchanged."""
    pool = Pool(_cost(slots, 0.005, 75e-6, 512), engines, group)
    lengths, counts = [float(x) for x, _ in classes], [float(c) for _, c in classes]
    full = simulate_async(pool, lengths, counts, t_train, t_sync, eta, partial)
    for x in (full["period_s"] * ratio, full["period_s"], t_train + t_sync):
        stopped = simulate_async(pool, lengths, counts, t_train, t_sync, eta, partial, stop_above=x)
        if stopped is None:
            assert full["period_s"] > x
        else:
            _same(stopped, full)
