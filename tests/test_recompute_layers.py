"""Full recompute of only the first k layers of each pipeline stage (Megatron-Core --recompute-method block
--recompute-num-layers k): memory between none and full, extra FLOPs = the forward of the k recomputed layers.

Expected values are hand-derived from Llama-3.1-70B's published shape (config.json: d_model 8192, 64 query and
8 key/value heads of 128, SwiGLU d_ff 28672, 80 layers)."""

from __future__ import annotations

import pytest

from llmcalc.core.catalogue import load_hardware, load_model
from llmcalc.core.errors import LlmcalcError
from llmcalc.training.layout import Layout
from llmcalc.training.memory import training_memory
from llmcalc.training.step import training_step

M, H = load_model("llama-3.1-70b"), load_hardware("h100-sxm")
LAY = Layout(tp=8, pp=4, dp=2)  # 80 layers: 20 per stage
KW = dict(global_batch=64, seq=4096, micro_batch=1, gpus=64)


def _step(**kw):
    return training_step(M, H, LAY, **KW, **kw).data


def test_k_equal_to_the_stage_is_full_recompute_and_beyond_is_capped():
    full = _step(recompute="full")
    for k in (20, 21, 80):
        d = _step(recompute="full", recompute_layers=k)
        assert d["step_time_s"] == pytest.approx(full["step_time_s"], rel=1e-12)
        assert d["memory_bytes_needed"] == pytest.approx(full["memory_bytes_needed"], rel=1e-12)


def test_extra_flops_are_the_forward_of_the_recomputed_layers():
    # One Llama-3.1-70B layer forward per token: 2 x its matmul parameters + the attention core over the full
    # L x L rectangle (4·L·D: scores and values), as the hardware-FLOPs convention counts it.
    d, kv = 8192, 8 * 128
    layer_params = d * (d + kv + kv + d) + 3 * d * 28672  # q, k, v, o + gate, up, down = 855,638,016
    per_token = 2 * layer_params + 4 * 4096 * d
    none = _step(recompute="none")["hardware_flops"]
    for k in (1, 3, 7):
        extra = 64 * 4096 * (4 * k) * per_token  # k layers on each of the 4 stages, 64 sequences of 4096
        assert _step(recompute="full", recompute_layers=k)["hardware_flops"] - none == pytest.approx(extra, rel=1e-9)


def test_memory_falls_linearly_with_k_between_none_and_full():
    mem = [training_memory(M, H, LAY, micro_batch=1, seq=4096, global_batch=64, recompute="full",
                           recompute_layers=k).data["total_bytes"] for k in range(1, 21)]
    none = training_memory(M, H, LAY, micro_batch=1, seq=4096, global_batch=64).data["total_bytes"]
    steps = [a - b for a, b in zip(mem[:-1], mem[1:], strict=True)]
    assert all(s > 0 for s in steps) and max(steps) == pytest.approx(min(steps), rel=1e-9)
    assert none > mem[0]  # the first recomputed layer also adds one layer's working set back, never more


@pytest.mark.parametrize("bad", [0, -1, 2**60, 1.5, True])
def test_bad_k_is_one_line_naming_the_option(bad):
    with pytest.raises(LlmcalcError, match="--recompute-layers"):
        _step(recompute="full", recompute_layers=bad)


def test_k_needs_full_recompute():
    with pytest.raises(LlmcalcError, match="--recompute full"):
        _step(recompute="selective", recompute_layers=2)


def test_planner_finds_the_fewest_recomputed_layers_that_fit():
    from llmcalc.training.plan import plan_training

    r = plan_training(M, H, gpus=64, global_batch=64, seq=8192, pins={"tp": 8, "pp": 1, "cp": 1}, top=5,
                      keep_evaluated=True)
    ev = r.data["evaluated"]
    rows = [i for i in range(len(ev["tp"])) if ev["rc"][i] == 3]
    assert rows, "no first-k candidate found where full recompute fits and none does not"
    for i in rows[:12]:
        lay = Layout(tp=int(ev["tp"][i]), pp=int(ev["pp"][i]), dp=int(ev["dp"][i]), sp=bool(ev["sp"][i]),
                     zero=int(ev["zero"][i]))
        kw = dict(micro_batch=int(ev["mb"][i]), seq=8192, global_batch=64)
        k = int(ev["rk"][i])
        assert training_memory(M, H, lay, recompute="full", recompute_layers=k, **kw).data["fits"]
        fewer = (training_memory(M, H, lay, recompute="full", recompute_layers=k - 1, **kw) if k > 1 else
                 training_memory(M, H, lay, recompute="none", **kw))
        assert not fewer.data["fits"]  # k is the fewest: one layer fewer (or none at all) does not fit
        full = training_step(M, H, lay, recompute="full", gpus=64, **kw).data["step_time_s"]
        assert ev["step_time_s"][i] < full  # recomputing k < 80 layers costs less than recomputing all
