"""llmcalc.rl.phases.planned_layout asks the training planner's own steps for its top row alone (issue #13); the
answer must be the row ``plan_training(..., top=1).data["best"]`` gives for the same question (same grid, pins,
pruning and ranking), or the same error. Cases: dense and MoE models, one node and many, a layout that needs
tensor parallelism, PPO mini-batches, hardware without a scale-out link (the planner's refusal) and a trainer
that fits nowhere."""

from __future__ import annotations

import math

import pytest

from llmcalc.core.catalogue import load_hardware, load_model
from llmcalc.core.errors import LlmcalcError
from llmcalc.rl import phases
from llmcalc.rl.lengths import parse_response_len
from llmcalc.training.plan import plan_training

CASES = [  # model, hardware, gpus, prompts x samples, response lengths, minibatches
    ("qwen2.5-7b", "h100-sxm", 64, 512 * 16, "3000,1.0", 1),
    ("qwen2.5-7b", "h100-sxm", 64, 512 * 16, "2000,6000,8000", 1),
    ("qwen2.5-7b", "h100-sxm", 8, 32 * 8, "1000,0.3", 4),
    ("llama-3.1-70b", "h100-sxm", 128, 256 * 8, "4000,1.0", 1),
    ("mixtral-8x7b", "h100-sxm", 32, 128 * 8, "2000,1.0", 2),
    ("qwen2.5-7b", "mi300x", 8, 64 * 16, "2500,1.5", 1),
    ("qwen2.5-7b", "mi300x", 16, 64 * 16, "2500,1.5", 1),  # beyond the scale-up domain, no scale-out: refused
    ("llama-3.1-405b", "a100-sxm-40gb", 8, 64 * 8, "4000,1.0", 1),  # fits nowhere
]


def _plan_best(m, hw, gpus, lengths, counts, prompt, minibatches):
    """The question planned_layout documents, put to plan_training itself."""
    _, l_eff, b_eff = phases.effective_batch(lengths, counts, prompt)
    seq = max(int(round(l_eff)), 1)
    gb = int(max(gpus, math.ceil(b_eff / minibatches / gpus) * gpus))
    pps = [d for d in range(1, m.n_layers + 1) if m.n_layers % d == 0]
    return plan_training(m, hw, gpus=gpus, global_batch=gb, seq=seq, top=1,
                         pins={"cp": 1, "v": 1, "sp": 0, "pp": pps}).data["best"]


@pytest.mark.parametrize("model,hardware,gpus,batch,response,minibatches", CASES)
def test_planned_layout_is_the_planners_best(model, hardware, gpus, batch, response, minibatches):
    m, hw = load_model(model), load_hardware(hardware)
    lengths, counts = parse_response_len(response).cohorts(batch)
    phases._PLANNED.clear()
    try:
        want = _plan_best(m, hw, gpus, lengths, counts, 512.0, minibatches)
    except LlmcalcError as e:
        with pytest.raises(LlmcalcError) as got:
            phases.planned_layout(m, hw, gpus, lengths, counts, 512.0, minibatches)
        assert str(got.value) == str(e)
        return
    if want is None:
        with pytest.raises(LlmcalcError, match="the planner finds no layout"):
            phases.planned_layout(m, hw, gpus, lengths, counts, 512.0, minibatches)
        return
    got = phases.planned_layout(m, hw, gpus, lengths, counts, 512.0, minibatches)
    assert {k: got[k] for k in ("tp", "pp", "ep", "zero", "layout")} == \
        {k: (want[k] if k == "layout" else int(want[k])) for k in ("tp", "pp", "ep", "zero", "layout")}
