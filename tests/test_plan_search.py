"""The planner's grid evaluation (llmcalc.training.search, issue #13 speed) against the reference models.

The grid evaluates training_memory and training_step on broadcast arrays (outer rows × ZeRO × recompute × SP);
every candidate it returns must carry the figures the scalar models give for that one layout (the reference), and
the figures a flat vectorised call over the same candidates gives, bit for bit (broadcasting changes the shape of
each operation, never its operands)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmcalc.core.catalogue import load_hardware, load_model
from llmcalc.training.layout import Layout
from llmcalc.training.memory import training_memory
from llmcalc.training.plan import enumerate_space, plan_training
from llmcalc.training.search import TIMED
from llmcalc.training.step import training_step

# small spaces that still hold every kind of candidate: plain, rc-firstK (rc = 3) and optimizer-offloaded
CASES = {
    "llama-2-13b on 8 A100 40GB": ("llama-2-13b", "a100-sxm-40gb", [8], 64, 4096, {}),
    "mixtral-8x7b on 16, 32 H100": ("mixtral-8x7b", "h100-sxm", [16, 32], 64, 4096, {"max_cp": 2}),
    "llama-3.1-8b on 8, 16 H100, cost": ("llama-3.1-8b", "h100-sxm", [8, 16], 32, 8192, {"objective": "cost"}),
    "llama-2-70b on 32 H100, DualPipe": ("llama-2-70b", "h100-sxm", [32], 64, 4096, {"schedule": "dualpipe",
                                                                                      "max_cp": 2}),
}
_PLANS: dict = {}


def _plan(name: str):
    if name not in _PLANS:
        model, hw, gpus, gb, seq, kw = CASES[name]
        m, h = load_model(model), load_hardware(hw)
        r = plan_training(m, h, gpus=gpus, global_batch=gb, seq=seq, keep_evaluated=True, **kw)
        _PLANS[name] = (m, h, gb, seq, kw, r.data["evaluated"])
    return _PLANS[name]


def _scalar(m, h, ev, i, gb, seq, schedule):
    """The step and memory models called on one candidate, as `llmcalc step` / `llmcalc memory` would."""
    row = {k: int(ev[k][i]) for k in ("gpus", "tp", "pp", "v", "cp", "dp", "ep", "mb", "zero", "rc", "sp", "rk",
                                      "etp", "off")}
    lay = Layout(tp=row["tp"], pp=row["pp"], dp=row["dp"], ep=row["ep"], cp=row["cp"], sp=bool(row["sp"]),
                 zero=row["zero"], interleave=row["v"], etp=row["etp"] or None, schedule=schedule)
    kw = dict(micro_batch=row["mb"], seq=seq, recompute=("none", "selective", "full", "full")[row["rc"]],
              recompute_layers=row["rk"] if row["rc"] == 3 else None, offload_optimizer=bool(row["off"]))
    st_ = training_step(m, h, lay, global_batch=gb, gpus=row["gpus"], check_memory=False, **kw)
    mem = training_memory(m, h, lay, global_batch=gb, **kw)
    return st_.data, mem.data, row


def test_cases_hold_every_kind_of_candidate():
    kinds = set()
    for name in CASES:
        ev = _plan(name)[-1]
        kinds |= {"first-k"} if np.any(ev["rc"] == 3) else set()
        kinds |= {"offload"} if np.any(ev["off"] == 1) else set()
        kinds |= {"etp"} if np.any(ev["etp"] > 0) else set()
        kinds |= {"plain"} if np.any((ev["rc"] < 3) & (ev["off"] == 0)) else set()
    assert kinds == {"first-k", "offload", "etp", "plain"}


@settings(max_examples=60, deadline=None)
@given(name=st.sampled_from(sorted(CASES)), pick=st.floats(0, 1, exclude_max=True))
def test_every_candidate_is_what_the_scalar_models_say(name, pick):
    """Any candidate of the grid search (hypothesis picks which) has the step time, tokens/s, MFU, bubble, exposed
    communication, compute and memory that the scalar step and memory models give for that layout alone."""
    m, h, gb, seq, kw, ev = _plan(name)
    i = int(pick * len(ev["tp"]))
    step, mem, row = _scalar(m, h, ev, i, gb, seq, kw.get("schedule", "1f1b"))
    assert step["valid"] is True or bool(step["valid"]), row
    for k in TIMED:
        assert ev[k][i] == pytest.approx(step[k], rel=1e-12), (k, row)
    assert ev["memory_bytes"][i] == pytest.approx(mem["total_bytes"], rel=1e-12), row
    assert mem["total_bytes"] <= mem["usable_bytes"], row  # every candidate fits


@pytest.mark.parametrize("name", sorted(CASES))
def test_grid_equals_one_flat_vectorised_call(name):
    """The plain candidates the grid returns carry, bit for bit, what one flat call of training_memory and
    training_step over the enumerated layouts gives (the planner's previous evaluation); and every divisible layout
    that fits there is among them."""
    m, h, gb, seq, kw, ev = _plan(name)
    model, hw, gpus, _, _, _ = CASES[name]
    sched = kw.get("schedule", "1f1b")
    a = enumerate_space(m, gpus, global_batch=gb, seq=seq, max_cp=kw.get("max_cp", 16),
                        max_etp=h.scale_up.domain_size).arrays
    lay = Layout(tp=a["tp"], pp=a["pp"], dp=a["dp"], ep=a["ep"], cp=a["cp"], sp=a["sp"].astype(bool), zero=a["zero"],
                 interleave=a["v"], etp=a["etp"] if np.any(a["etp"]) else None, schedule=sched)
    mem = training_memory(m, h, lay, micro_batch=a["mb"], seq=seq, recompute=a["rc"], global_batch=gb).data
    need = np.broadcast_to(np.asarray(mem["total_bytes"], float), a["tp"].shape)
    fits = np.broadcast_to(mem["valid"], need.shape) & (need <= mem["usable_bytes"])
    sub = {k: v[fits] for k, v in a.items()}
    lay = Layout(tp=sub["tp"], pp=sub["pp"], dp=sub["dp"], ep=sub["ep"], cp=sub["cp"], sp=sub["sp"].astype(bool),
                 zero=sub["zero"], interleave=sub["v"], etp=sub["etp"] if np.any(sub["etp"]) else None, schedule=sched)
    step = training_step(m, h, lay, global_batch=gb, micro_batch=sub["mb"], seq=seq, gpus=sub["gpus"],
                         recompute=sub["rc"], check_memory=False).data
    plain = (ev["rc"] < 3) & (ev["off"] == 0)
    assert plain.sum() == fits.sum() > 100
    for k in ("gpus", "tp", "pp", "v", "cp", "dp", "ep", "mb", "etp", "zero", "rc", "sp"):
        assert np.array_equal(ev[k][plain], sub[k]), k  # the same candidates, in the same order
    assert np.array_equal(ev["memory_bytes"][plain], need[fits])
    for k in TIMED:
        assert np.array_equal(ev[k][plain], np.broadcast_to(np.asarray(step[k], float), sub["tp"].shape)), k


def test_worst_stage_of_a_sweep_is_each_layouts_own():
    m, h = load_model("llama-3.1-70b"), load_hardware("h100-sxm")
    pp = np.array([1, 2, 3, 4, 5, 8, 10, 16])
    mb = np.array([1, 2, 4, 8]).reshape(-1, 1)
    sweep = training_memory(m, h, Layout(tp=8, pp=pp, dp=1), micro_batch=mb, global_batch=64).data["worst_stage"]
    assert sweep.shape == (4, 8) and set(np.unique(sweep)) >= {"first", "last"}
    for i, b in enumerate(mb[:, 0]):
        for j, p in enumerate(pp):
            one = training_memory(m, h, Layout(tp=8, pp=int(p), dp=1), micro_batch=int(b), global_batch=64)
            assert sweep[i, j] == one.data["worst_stage"]
