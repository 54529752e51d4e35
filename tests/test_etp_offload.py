"""Expert tensor parallelism (ETP ≠ TP) and optimizer offload: layout checks, memory, comms, step and the planner.

Expected numbers are derived by hand in the comments (shapes from the model cards, Megatron-Core's group arithmetic
from megatron/core/parallel_state.py, ZeRO-Offload's placement from Ren et al. 2021 §3-4), not read back from the
engine.
"""

import numpy as np
import pytest
from typer.testing import CliRunner

from llmcalc.cli import app
from llmcalc.core.catalogue import load_hardware, load_model
from llmcalc.core.errors import LayoutError, LlmcalcError
from llmcalc.training.comms import comm_ledger
from llmcalc.training.layout import Layout, check_layout, group_spans
from llmcalc.training.memory import training_memory
from llmcalc.training.plan import plan_training
from llmcalc.training.step import CPU_ADAM_PARAMS_PER_S, training_step

V3 = load_model("deepseek-v3")
MIX = load_model("mixtral-8x7b")
LLAMA8 = load_model("llama-3.1-8b")
L70 = load_model("llama-3.1-70b")
H100 = load_hardware("h100-sxm")
A100 = load_hardware("a100-sxm-80gb")

# DeepSeek-V3 (model card / config.json): 61 layers, the first 3 dense, 58 MoE layers of 256 routed experts, each a
# SwiGLU of D = 7168 and Fe = 2048: 3·D·Fe = 44,040,192 parameters per expert.
V3_EXPERTS = 58 * 256 * 3 * 7168 * 2048  # 653,908,770,816 routed-expert parameters


# ---------------------------------------------------------------- layout


@pytest.mark.parametrize("model, lay, words", [
    (LLAMA8, Layout(tp=8, dp=2, etp=2, sp=True), ["--etp 2", "dense"]),
    (V3, Layout(tp=8, dp=16, ep=8, etp=3, sp=True), ["--etp 3", "2048"]),  # 2048 % 3 != 0
    (V3, Layout(tp=2, dp=4, ep=4, etp=4, sp=True), ["--etp 4", "--ep 4", "tp·cp·dp"]),  # 16 ∤ 2·1·4 = 8
    (V3, Layout(tp=8, dp=16, ep=8, etp=1), ["--etp 1", "--sp"]),  # Megatron-Core: MoE + TP needs SP
    (V3, Layout(tp=8, dp=16, ep=8, etp=0, sp=True), ["--etp", "at least 1"]),
])
def test_etp_errors_name_the_flag(model, lay, words):
    with pytest.raises(LayoutError) as e:
        check_layout(model, lay)
    msg = str(e.value)
    assert "\n" not in msg and all(w in msg for w in words), msg


def test_expert_data_parallel_group_follows_megatron_core():
    # parallel_state.py: expert_data_parallel_size = world / (etp·ep·pp); world = tp·cp·dp·pp.
    # TP8 CP1 DP16 PP16, EP8: ETP1 → 8·16/(1·8) = 16; ETP = TP = 8 → 8·16/(8·8) = 2 = dp·cp/ep (the old convention).
    assert Layout(tp=8, dp=16, pp=16, ep=8, etp=1, sp=True).expert_dp == 16
    assert Layout(tp=8, dp=16, pp=16, ep=8).expert_dp == 2
    assert Layout(tp=8, dp=16, pp=16, ep=8, etp=8, sp=True).expert_dp == 2
    # Expert grid ETP, EP, EDP (innermost first): the EP group spans etp·ep ranks (8: one node), not tp·cp·ep (64).
    assert group_spans(Layout(tp=8, dp=16, ep=8, etp=1, sp=True))["ep"] == 8
    assert group_spans(Layout(tp=8, dp=16, ep=8))["ep"] == 64


# ---------------------------------------------------------------- memory


def test_expert_weights_shard_over_etp_and_optimizer_over_the_expert_dp_group():
    # 64 GPUs, PP1, TP8 SP, DP8, EP8, ZeRO-1. Expert parameters per GPU: Px/(etp·ep) = Px/8 with ETP1, Px/64 with
    # ETP = TP. Weights are 2 B/param unsharded (ZeRO-1); the expert optimizer states (12 B/param) are sharded over
    # the expert-DP group tp·dp/(etp·ep) = 8 with ETP1 and 1 with ETP8, so they are equal: 12·Px/64 either way.
    common = dict(seq=4096, optimizer="adam-fp32-grads")
    old = training_memory(V3, H100, Layout(tp=8, dp=8, ep=8, sp=True, zero=1), **common)
    new = training_memory(V3, H100, Layout(tp=8, dp=8, ep=8, etp=1, sp=True, zero=1), **common)
    assert new.value("params/experts") == pytest.approx(V3_EXPERTS / 8, rel=1e-12)
    assert old.value("params/experts") == pytest.approx(V3_EXPERTS / 64, rel=1e-12)
    dw = new.data["first_stage"]["weights_bytes"] - old.data["first_stage"]["weights_bytes"]
    assert dw == pytest.approx(2 * (V3_EXPERTS / 8 - V3_EXPERTS / 64), rel=1e-12)
    # fp32 main gradients (4 B/param) are not sharded by ZeRO-1: the same difference ×2
    dg = new.data["first_stage"]["grads_bytes"] - old.data["first_stage"]["grads_bytes"]
    assert dg == pytest.approx(4 * (V3_EXPERTS / 8 - V3_EXPERTS / 64), rel=1e-12)
    assert new.data["first_stage"]["optimizer_bytes"] == pytest.approx(old.data["first_stage"]["optimizer_bytes"],
                                                                        rel=1e-12)


def test_offload_leaves_16_bit_weights_and_gradients_on_the_gpu():
    # Llama-3.1-8B: 8,030,261,248 parameters (HF model card). One GPU of a DP8 ZeRO-1 job holds all of them:
    # adam-fp32-grads = 2 B weights + 4 B fp32 grads + 12/8 B optimizer shard per parameter. Offloaded (DeepSpeed
    # offload_optimizer): the fp32 gradients and the optimizer shard go to the host, a 16-bit gradient stays: the
    # GPU saves (4 − 2) + 12/8 = 3.5 B per parameter, and the activations do not change.
    P = 8_030_261_248
    kw = dict(seq=4096, micro_batch=1, recompute="selective")
    base = training_memory(LLAMA8, H100, Layout(dp=8, zero=1), **kw)
    off = training_memory(LLAMA8, H100, Layout(dp=8, zero=1), offload_optimizer=True, **kw)
    assert off.data["first_stage"]["optimizer_bytes"] == 0
    assert off.data["first_stage"]["grads_bytes"] == pytest.approx(2 * P, rel=1e-12)
    assert base.data["total_bytes"] - off.data["total_bytes"] == pytest.approx(3.5 * P, rel=1e-12)


@pytest.mark.parametrize("call, words", [
    (lambda: training_memory(LLAMA8, H100, Layout(dp=8, zero=0), offload_optimizer=True), ["--offload-optimizer",
                                                                                            "--zero 1, 2 or 3"]),
    (lambda: training_step(LLAMA8, load_hardware("tpu-v5p"), Layout(dp=8, zero=1), global_batch=8,
                           offload_optimizer=True), ["--offload-optimizer", "host link"]),
    (lambda: training_step(LLAMA8, H100, Layout(dp=8, zero=1), global_batch=8, offload_optimizer=True,
                           cpu_adam_params_per_s=0), ["--cpu-adam-rate"]),
])
def test_offload_errors_name_the_flag(call, words):
    with pytest.raises(LlmcalcError) as e:
        call()
    assert "\n" not in str(e.value) and all(w in str(e.value) for w in words), str(e.value)


# ---------------------------------------------------------------- comms


def test_etp_rows_carry_the_dispatched_tokens():
    # DeepSeek-V3, TP8 SP, DP8, EP8, ETP2, seq 4096, micro-batch 1, global batch 8 → m = 8/(1·8) = 1 micro-batch.
    # Each rank holds B·L/tp = 4096/8 = 512 tokens; after the all-to-all it holds k·512 token copies (k = 8) and
    # all-gathers them over ETP: message k·B·L·D·etp/tp·2 B = 8·4096·7168·2/8·2 = 117,440,512 B.
    # Calls: the MoE layers' MLP half of the TP collectives, 2 per layer (fwd + bwd) on the 58 MoE layers = 116,
    # for the all-gather and again for the reduce-scatter; the TP rows keep 4·61 − 116 = 128 each.
    r = comm_ledger(V3, H100, Layout(tp=8, dp=8, ep=8, etp=2, sp=True), seq=4096, micro_batch=1, global_batch=8)
    rows = {(x["parallelism"], x["collective"]): x for x in r.data["rows"]}
    for coll in ("all-gather", "reduce-scatter"):
        x = rows[("etp", coll)]
        assert x["group_size"] == 2 and x["message_bytes"] == pytest.approx(117_440_512)
        assert x["count"] == pytest.approx(116) and x["link"] == "scale-up"
        assert rows[("tp", coll)]["count"] == pytest.approx(128)
    # EP on the expert grid spans etp·ep = 16 ranks: two 8-GPU nodes, so the all-to-all leaves NVLink; with ETP1 it
    # spans 8 and stays inside, and there is no ETP row at all.
    assert rows[("ep", "all-to-all")]["link"] == "scale-out"
    r1 = comm_ledger(V3, H100, Layout(tp=8, dp=8, ep=8, etp=1, sp=True), seq=4096, micro_batch=1, global_batch=8)
    rows1 = {(x["parallelism"], x["collective"]): x for x in r1.data["rows"]}
    assert rows1[("ep", "all-to-all")]["link"] == "scale-up" and ("etp", "all-gather") not in rows1


def test_host_copies_move_the_zero_partition_over_pcie():
    # Llama-3.1-8B, DP8 ZeRO-1: each rank's partition P/8 = 1,003,782,656 parameters; 16-bit gradients down and
    # 16-bit parameters up, each 2·P/8 B at 64 GB/s per direction (PCIe Gen5 x16): 31.37 ms each.
    P = 8_030_261_248
    r = comm_ledger(LLAMA8, H100, Layout(dp=8, zero=1), seq=4096, global_batch=8, offload_optimizer=True)
    host = [x for x in r.data["rows"] if x["parallelism"] == "host"]
    assert len(host) == 2
    for x in host:
        assert x["bytes_per_rank"] == pytest.approx(2 * P / 8, rel=1e-12)
        assert x["time_s"] == pytest.approx(2 * P / 8 / 64e9, rel=1e-12)


# ---------------------------------------------------------------- step


def test_expert_gemms_use_the_expert_tp_width():
    # efficiency = e / ((1 − s)·(w + w0)/w + s·(we + w0)/(we·moe)), w = D/tp, we = D/etp (time-weighted by the MoE
    # share s of the matmul FLOPs). From the ETP = TP figure, E_tp = e·w/(w + w0)/(1 − s + s/moe), solve for s, then
    # predict ETP1 (we = 7168) by hand.
    from llmcalc.core.efficiency import training_efficiency

    te = training_efficiency(H100)
    kw = dict(seq=4096, global_batch=64, micro_batch=1, recompute="full")
    e_tp = training_step(V3, H100, Layout(tp=8, dp=8, ep=8, sp=True, zero=1), **kw).data["matmul_efficiency"]
    e_1 = training_step(V3, H100, Layout(tp=8, dp=8, ep=8, etp=1, sp=True, zero=1), **kw).data["matmul_efficiency"]
    e, w0, moe, w = te.matmul, te.half_width, te.moe, 7168 / 8
    fw = w / (w + w0)
    s = (e * fw / e_tp - 1) / (1 / moe - 1)
    assert 0 < s < 1
    expected = e / ((1 - s) / fw + s * (7168 + w0) / (7168 * moe))
    assert e_1 == pytest.approx(expected, rel=1e-9)
    assert e_1 > e_tp
    # an explicit etp equal to tp is the default
    e_8 = training_step(V3, H100, Layout(tp=8, dp=8, ep=8, etp=8, sp=True, zero=1), **kw).data["matmul_efficiency"]
    assert e_8 == pytest.approx(e_tp, rel=1e-12)


def test_offload_adds_the_exposed_cpu_adam_step():
    # Llama-3.1-8B, 8 × H100 (one host), DP8 ZeRO-1: each rank's host share is P/8 parameters, and the host updates
    # all 8 ranks' shares: CPU Adam = 8·(P/8)/rate = P/rate = 8.03e9/1.415e9 = 5.68 s. The gradient copy (31 ms)
    # hides behind the last backward; the parameter copy back (31 ms) under the CPU step (DeepSpeed adam_update_copy);
    # nothing else in the step changes, so the step grows by exactly P/rate.
    P = 8_030_261_248
    assert CPU_ADAM_PARAMS_PER_S == pytest.approx(11.6e9 / 8.2)  # DeepSpeed PR #735: 11.6B parameters in 8.2 s
    kw = dict(seq=4096, global_batch=64, micro_batch=1, recompute="selective", gpus=8)
    base = training_step(LLAMA8, H100, Layout(dp=8, zero=1), **kw)
    off = training_step(LLAMA8, H100, Layout(dp=8, zero=1), offload_optimizer=True, **kw)
    assert off.data["step_time_s"] - base.data["step_time_s"] == pytest.approx(P / (11.6e9 / 8.2), rel=1e-9)
    slow = training_step(LLAMA8, H100, Layout(dp=8, zero=1), offload_optimizer=True, cpu_adam_params_per_s=1e9, **kw)
    assert slow.data["offload_exposed_s"] == pytest.approx(P / 1e9, rel=1e-9)


# ---------------------------------------------------------------- planner


def test_planner_offloads_only_where_the_layout_does_not_fit_otherwise():
    # Llama-3.1-70B on 16 H100: 70.6e9 × 18 B = 1.27 TB of model states; every candidate that fits must either fit
    # without offload (off = 0) or be a layout that fails without it and fits with it.
    r = plan_training(L70, H100, gpus=16, global_batch=32, seq=4096, top=5, keep_evaluated=True)
    ev = r.data["evaluated"]
    off = np.flatnonzero(ev["off"] == 1)
    assert len(off) > 0 and r.data["best"]["layout"].endswith("offload")
    for i in off[:: max(1, len(off) // 6)][:6]:
        lay = Layout(tp=int(ev["tp"][i]), pp=int(ev["pp"][i]), dp=int(ev["dp"][i]), cp=int(ev["cp"][i]),
                     sp=bool(ev["sp"][i]), zero=int(ev["zero"][i]), interleave=int(ev["v"][i]))
        rc = ("none", "selective", "full")[int(ev["rc"][i])]
        kw = dict(seq=4096, micro_batch=int(ev["mb"][i]), global_batch=32, recompute=rc)
        assert training_memory(L70, H100, lay, **kw).data["fits"] is False
        assert training_memory(L70, H100, lay, offload_optimizer=True, **kw).data["fits"] is True
    assert not any("optimizer offload, expert-TP" in a for a in r.assumptions)


def test_planner_searches_expert_tp_for_moe_only():
    r = plan_training(MIX, H100, gpus=16, global_batch=64, seq=4096, top=5, keep_evaluated=True, pins={"zero": 1})
    ev = r.data["evaluated"]
    etp = ev["etp"]
    assert np.any(etp > 0)
    x = etp[etp > 0]
    # every explicit ETP divides Mixtral's expert FFN width 14336, sits in one 8-GPU node, differs from TP, and
    # etp·ep divides tp·cp·dp (Megatron-Core's expert grid fills the same ranks)
    assert np.all(14336 % x == 0) and np.all(x <= 8) and np.all(x != ev["tp"][etp > 0])
    t, c, d, e = (ev[k][etp > 0] for k in ("tp", "cp", "dp", "ep"))
    assert np.all((t * c * d) % (x * e) == 0)
    dense = plan_training(LLAMA8, H100, gpus=8, global_batch=8, seq=4096, top=3, keep_evaluated=True,
                          pins={"zero": 1, "rc": "none"})
    assert not np.any(dense.data["evaluated"]["etp"])
    pinned = plan_training(MIX, H100, gpus=16, global_batch=64, seq=4096, top=5, keep_evaluated=True,
                           pins={"zero": 1, "etp": 1, "tp": 2})
    assert np.all(pinned.data["evaluated"]["etp"] == 1)


# ---------------------------------------------------------------- CLI


@pytest.mark.parametrize("args, words", [
    (["memory", "llama-3.1-8b", "-H", "h100-sxm", "--tp", "8", "--etp", "2", "--sp"], ["--etp 2", "dense"]),
    (["step", "llama-3.1-8b", "-H", "h100-sxm", "--gpus", "8", "--global-batch", "8", "--offload-optimizer"],
     ["--offload-optimizer", "--zero"]),
    (["comms", "deepseek-v3", "-H", "h100-sxm", "--tp", "8", "--dp", "8", "--ep", "8", "--etp", "1"], ["--sp"]),
    (["step", "llama-3.1-8b", "-H", "h100-sxm", "--gpus", "8", "--global-batch", "8", "--cpu-adam-rate", "1e9"],
     ["--cpu-adam-rate", "--offload-optimizer"]),
])
def test_cli_errors_are_one_line(args, words):
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 2, res.output
    out = res.output.strip()
    assert len(out.splitlines()) == 1 and all(w in out for w in words), out


def test_cli_shows_etp_and_host_rows():
    res = CliRunner().invoke(app, ["comms", "deepseek-v3", "-H", "h100-sxm", "--tp", "8", "--pp", "16", "--dp", "16",
                                   "--ep", "8", "--etp", "2", "--sp", "--zero", "1", "--seq", "4096",
                                   "--global-batch", "1024", "--offload-optimizer"])
    assert res.exit_code == 0, res.output
    assert "etp" in res.output and "host (PCIe)" in res.output


# ---------------------------------------------------------------- MoE parallel folding (EP beyond DP)


def test_explicit_etp_folds_experts_over_tp_cp_dp():
    # MoE parallel folding (Liu et al. 2025, arXiv 2504.14960; Megatron-Core parallel_state.py builds the expert grid
    # ETP × EP × EDP × PP over the same world as TP × CP × DP × PP): with ETP1, EP16 folds over TP2·DP8 = 16 ranks,
    # as NeMo-RL's Qwen3-235B recipes run (TP2 CP2 PP8 EP16 on 128 GPUs: DP 4, EP 16 = TP·CP·DP).
    lay = Layout(tp=2, dp=8, ep=16, etp=1, sp=True)
    assert check_layout(V3, lay)
    assert lay.expert_dp == 1  # 2·8 / (1·16)
    assert group_spans(lay)["ep"] == 16  # etp·ep consecutive ranks
    # without --etp, EP is carved out of DP (the default grid) and must divide it; the message names the way out
    with pytest.raises(LayoutError) as e:
        check_layout(V3, Layout(tp=2, dp=8, ep=16, sp=True))
    assert "--ep 16 must divide --dp 8" in str(e.value) and "--etp" in str(e.value)
    # folding still needs etp·ep | tp·cp·dp: EP32 over 16 ranks is refused
    with pytest.raises(LayoutError, match="tp·cp·dp"):
        check_layout(V3, Layout(tp=2, dp=8, ep=32, etp=1, sp=True))


def test_folded_expert_parallelism_shards_expert_weights_by_ep():
    # Mixtral 8x7B: 32 layers × 8 experts × 3·4096·14336 = 45,097,156,608 expert parameters. On 8 GPUs with TP2 SP,
    # ETP1, going from EP4 (inside DP4) to EP8 (folded over TP2·DP4) halves each GPU's experts: Px/4 → Px/8, and with
    # ZeRO-0 each expert parameter costs 2 (bf16 weight) + 4 (fp32 main gradient) + 12 (fp32 master + Adam m, v) B.
    px = 32 * 8 * 3 * 4096 * 14336
    common = dict(seq=4096, optimizer="adam-fp32-grads")
    ep4 = training_memory(MIX, H100, Layout(tp=2, dp=4, ep=4, etp=1, sp=True), **common)
    ep8 = training_memory(MIX, H100, Layout(tp=2, dp=4, ep=8, etp=1, sp=True), **common)
    assert ep8.value("params/experts") == pytest.approx(px / 8, rel=1e-12)
    saved = sum(ep4.data["first_stage"][k] - ep8.data["first_stage"][k]
                for k in ("weights_bytes", "grads_bytes", "optimizer_bytes"))
    assert saved == pytest.approx(18 * (px / 4 - px / 8), rel=1e-12)
    # the CLI takes the folded layout (it said "--ep 8 must divide --dp 4")
    r = CliRunner().invoke(app, ["step", "mixtral-8x7b", "-H", "h100-sxm", "--gpus", "8", "--tp", "2", "--sp",
                                 "--etp", "1", "--ep", "8", "--global-batch", "32", "--seq", "4096"])
    assert r.exit_code == 0 and "must divide" not in r.output, r.output
