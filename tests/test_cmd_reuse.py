"""What one-liners reuse within a process (issue #13) answers exactly what a fresh call answers.

- comm_ledger and flops_per_sequence keep scalar calls by model/hardware identity and exact inputs: the same
  inputs give the same object, other inputs never get it (the ZeRO-3 / ZeRO-1 bytes ratio of 1.5, ZeRO paper
  §7.2, holds after both were asked), and a caller changing its copy changes nothing kept;
- latency(knee=False) gives the same figures as latency(), only without the compute-bound batch search;
- the RL trainer probes a packed micro-batch's memory before stepping it: the phase times are those of stepping
  every micro-batch, with fewer training_step calls.
"""

import sys

import numpy as np
import pytest

import llmcalc.training.step as step_mod
from llmcalc.core.catalogue import load_hardware, load_model
from llmcalc.core.errors import LlmcalcError
from llmcalc.inference.latency import Deployment, latency, step
from llmcalc.rl.phases import DEFAULT_SETTINGS, trainer_work
from llmcalc.training.comms import comm_ledger
from llmcalc.training.layout import Layout
from llmcalc.training.step import flops_per_sequence

H100 = load_hardware("h100-sxm")
LLAMA70 = load_model("llama-3.1-70b")
LLAMA8 = load_model("llama-3.1-8b")
QWEN7 = load_model("qwen2.5-7b")


def _dp_bytes(r) -> float:
    return sum(x["count"] * x["bytes_per_rank"] for x in r.data["rows"] if x["parallelism"] == "dp")


def test_ledger_kept_only_for_the_same_inputs():
    kw = dict(seq=4096)  # one micro-batch per step
    z1 = comm_ledger(LLAMA70, H100, Layout(tp=8, dp=8, zero=1, sp=True), **kw)
    assert comm_ledger(LLAMA70, H100, Layout(tp=8, dp=8, zero=1, sp=True), **kw) is z1  # equal layout, same ledger
    z3 = comm_ledger(LLAMA70, H100, Layout(tp=8, dp=8, zero=3, sp=True), **kw)
    assert z3 is not z1
    # ZeRO paper §7.2: ZeRO-1 moves 2Ψ per step, ZeRO-3 3Ψ (reduce-scatter + two all-gathers)
    assert _dp_bytes(z3) / _dp_bytes(z1) == pytest.approx(1.5, rel=1e-9)
    # the same number as another type is another entry (an int seq gives int figures, a float seq float ones)
    assert comm_ledger(LLAMA70, H100, Layout(tp=8, dp=8, zero=1, sp=True), seq=4096.0) is not z1
    # a sweep is never kept
    sweep = Layout(tp=np.array([4, 8]), dp=8, zero=1, sp=True)
    assert comm_ledger(LLAMA70, H100, sweep, **kw) is not comm_ledger(LLAMA70, H100, sweep, **kw)


def test_flops_per_sequence_hands_out_copies():
    model, hw, head, ex = flops_per_sequence(LLAMA8, 4096, extras=True)
    # 6·N·L with N = 8,030,261,248 parameters (the Hugging Face count of Llama 3.1 8B, README `llmcalc params`)
    assert ex["six_nd"] == 6 * 8_030_261_248 * 4096
    hw.append(-1.0)
    ex["six_nd"] = -1.0
    model2, hw2, head2, ex2 = flops_per_sequence(LLAMA8, 4096, extras=True)
    assert (model2, head2) == (model, head)
    assert len(hw2) == 3 and -1.0 not in hw2
    assert ex2["six_nd"] == 6 * 8_030_261_248 * 4096


def test_latency_without_knee_has_the_same_figures():
    dep = Deployment(LLAMA8, H100, 1)
    full = latency(dep, 8, 100, 28)  # a short context: decode turns compute-bound at a few hundred sequences
    lean = latency(dep, 8, 100, 28, knee=False)
    assert [(f.key, f.value) for f in lean.figures] == [(f.key, f.value) for f in full.figures]
    assert lean.data["compute_bound_batch"] is None
    knee = full.data["compute_bound_batch"]
    # the knee is where a decode step at the mid-output context turns compute-bound: not one batch earlier
    mid = 100 + 28 // 2
    assert step(dep, float(knee), 1, mid, prefill=False)["compute_bound"]
    assert not step(dep, float(knee - 1), 1, mid, prefill=False)["compute_bound"]


def test_rl_trainer_probe_matches_stepping_every_micro_batch(monkeypatch):
    # 8,192 samples of 512 + 4,134 = 4,646 tokens on 64 H100s, ZeRO-1: 7 packed sequences per micro-batch do not
    # fit, 3 do (the README's `llmcalc rl` trainer)
    lengths, counts = np.array([4134.0]), np.array([8192.0])
    kw = dict(algo="grpo", ref=False, reward_model=None, minibatches=1, settings=DEFAULT_SETTINGS, zero=1)
    steps = []
    real_step = step_mod.training_step

    def counted(*a, **k):
        steps.append(k["micro_batch"])
        return real_step(*a, **k)

    monkeypatch.setattr(step_mod, "training_step", counted)
    probed = trainer_work(QWEN7, H100, 64, lengths, counts, 512.0, **kw)
    assert steps == [3]  # 7 was only probed for memory

    real_memory = step_mod.step_memory

    def refuse_probe(*a, **k):  # the probe refused: it then leaves every micro-batch to training_step
        if sys._getframe(1).f_code.co_name == "_memory_fit":
            raise LlmcalcError("probe off")
        return real_memory(*a, **k)

    steps.clear()
    monkeypatch.setattr(step_mod, "step_memory", refuse_probe)  # the step's own check (training_step) still runs
    stepped = trainer_work(QWEN7, H100, 64, lengths, counts, 512.0, **kw)
    assert steps == [7, 3]
    assert probed == stepped
