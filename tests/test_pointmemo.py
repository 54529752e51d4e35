"""Per-process point tables (llmcalc.core.pointmemo) behind the serving planner's decode step: a value read from a
table must be, bit for bit, the value a direct call gives (issue #13: plan-serve under 0.3 s, every figure unchanged).

The reference here is always the direct computation (the code path without a table), never a pasted output.
"""

import numpy as np
import pytest

from llmcalc.core.catalogue import load_hardware, load_model, names
from llmcalc.core.pointmemo import PointTable, tableable
from llmcalc.inference import latency
from llmcalc.inference.kv import fit
from llmcalc.inference.latency import Deployment, _forward_flops_direct, forward_flops

N = np.arange(1, 4097, dtype=float)
# the grids a planner steps: N in flight, N per pipeline stage, ⌈N/dpa⌉ per attention group, beyond 4096 by search
GRIDS = [N[:700], np.maximum(N / 2, 1.0), np.maximum(N / 8, 1.0), np.maximum(np.ceil(N / 4), 1.0), N,
         np.arange(4097, 9000, 13.0), np.array([3.0, 1.0, 3.0, 2.5])]


def test_table_calls_f_on_new_points_only_and_returns_its_values():
    seen = []

    def f(x):
        seen.append(x.copy())
        return 1.7 * x * x / 3.1 + np.ceil(x / 7)  # elementwise: + − × ÷ ceil

    t = PointTable()
    for g in GRIDS:
        assert np.array_equal(t(f, g), f(g))
        seen.pop()  # the direct call above
    asked = np.concatenate(seen)
    assert asked.size == np.unique(np.concatenate(GRIDS)).size  # each distinct point computed exactly once
    assert np.array_equal(t(f, N.reshape(64, 64)), f(N).reshape(64, 64))  # shape kept


def test_a_full_table_starts_afresh_and_still_answers_every_point(monkeypatch):
    from llmcalc.core import pointmemo

    monkeypatch.setattr(pointmemo, "MAX_POINTS", 1000)
    t = PointTable()

    def f(x):
        return x * 3.0 + 1.0 / x

    for g in GRIDS:  # most grids overflow 1,000 points, some after hits on the points already held
        assert np.array_equal(t(f, g), f(g))
        assert t.x.size <= max(1000, np.unique(g).size)


def test_only_finite_positive_points_are_tabled():
    assert tableable(N) and not tableable(np.array([1.0, np.nan])) and not tableable(np.array([0.0, 1.0]))
    assert not tableable(np.array([-1.0])) and not tableable(np.float64(3.0)) and not tableable(np.array([]))


@pytest.mark.parametrize("name", names("models"))
def test_forward_flops_from_the_table_equals_the_direct_count(name):
    m = load_model(name)
    latency._FLOPS_TABLES.clear()
    for ctx in (1150.5, 4096.0):
        for g in GRIDS:
            direct = _forward_flops_direct(m, g, 1, ctx, False)
            # L and M as int, float and 0-d float64 share one table (keyed by value): the same bits each way
            for lq, c in ((1, ctx), (np.asarray(1.0), np.asarray(ctx)), (1.0, ctx)):
                assert np.array_equal(forward_flops(m, g, lq, c, causal=False), direct)


@pytest.mark.parametrize("hw_name, tp", [("h100-sxm", 2), ("h100-sxm", 8), ("h100-sxm", 16), ("b200", 4),
                                         ("tpu-v5p", 4), ("mi300x", 8), ("a100-sxm-80gb", 16)])
def test_tp_allreduce_from_the_point_cache_equals_a_fresh_call(hw_name, tp):
    """The TP all-reduce over batch grids reads the collective model's per-process points: after other grids
    have filled it, every grid's times equal those of a call on an empty cache, bit for bit."""
    from llmcalc.network import collectives

    hw, m = load_hardware(hw_name), load_model("llama-3.1-405b")
    dep = Deployment(m, hw, tp)
    grids = GRIDS + [np.arange(1, 12000, dtype=float)]
    msgs = [g * np.asarray(1.0) * m.d_model * dep.act_bytes for g in grids]
    cold = []
    for msg in msgs:
        collectives._POINTS.clear()
        collectives._SCALAR_CALLS.clear()
        cold.append(np.asarray(dep.tp_allreduce(msg).time_s))
    for msg, c in zip(msgs[::-1], cold[::-1], strict=True):  # warm, in the other order
        assert np.array_equal(np.asarray(dep.tp_allreduce(msg).time_s), c)


def test_step_with_tables_equals_step_without(monkeypatch):
    m, hw = load_model("deepseek-v3"), load_hardware("h100-sxm")
    dep = Deployment(m, hw, 8, "fp8", None, "fp8", "fp8")
    with_tables = [latency.step(dep, g, 1, 1150.5, prefill=False)["step_s"] for g in GRIDS]
    monkeypatch.setattr(latency, "_TABLE_MIN", 10**12)  # every call the direct path
    for g, t in zip(GRIDS, with_tables, strict=True):
        assert np.array_equal(latency.step(dep, g, 1, 1150.5, prefill=False)["step_s"], t)


@pytest.mark.parametrize("tp, pp, ep, kv", [(1, 1, 1, "bf16"), (8, 2, 1, "fp8"), (8, 1, 4, "bf16")])
def test_brief_fit_keeps_every_number_it_reports(tp, pp, ep, kv):
    m, hw = load_model("deepseek-v3"), load_hardware("h100-sxm")
    full = fit(m, hw, "fp8", None, kv, tp, pp, reserve=0.1, context=1300, ep=ep).data
    brief = fit(m, hw, "fp8", None, kv, tp, pp, reserve=0.1, context=1300, ep=ep, brief=True).data
    for k in ("fits", "weight_bytes_per_gpu", "usable_bytes_per_gpu", "free_bytes_per_gpu", "kv_tokens_capacity",
              "max_batch", "bits_per_weight"):
        assert brief[k] == full[k], k
    assert brief["max_batch_by_context"] is None and brief["max_context"] is None


def test_a_kept_sweep_scatters_its_other_fields_read_only_when_read():
    """collective_time keeps a small sweep for later callers: the fields it scatters only when first read (not at
    the call, issue #13) are read-only like the rest, and equal to a fresh call's."""
    from llmcalc.network import collectives

    hw = load_hardware("h100-sxm")
    msg = np.arange(1, 4097, dtype=float) * 16384
    collectives._SCALAR_CALLS.clear()
    kept = collectives.collective_time(hw, "all-reduce", msg, 8)
    assert "algorithm" not in kept.__dict__  # not scattered yet
    fresh = collectives._collective_time(hw, "all-reduce", msg, 8)
    for f in ("time_s", "algorithm", "protocol", "latency_s", "hops", "nodes"):
        v = getattr(kept, f)
        assert not v.flags.writeable, f
        assert np.array_equal(v, getattr(fresh, f)), f
