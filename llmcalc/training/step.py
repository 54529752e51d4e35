"""Training step time, tokens/s, MFU and HFU for a parallel layout.

step = (compute + exposed pipeline communication) × (1 + bubble) + exposed DP/ZeRO communication

and every result shows compute, bubble, exposed and hidden communication separately.

- compute: the hardware FLOPs (model FLOPs + recomputation) of each DP replica's sequences through the
  SLOWEST pipeline stage (its L/p layers plus the LM head on the last stage), on that stage's tp·cp GPUs;
  the dense matmuls at the accelerator's matmul efficiency × the GEMM-width factor w/(w + w½), w = D/tp,
  the attention core as its kernel executes it (FlashAttention skips the masked half of causal attention;
  the unfused kernels of Megatron-LM 2021-22 compute the full L×L rectangle) at the attention efficiency
  (llmcalc.core.efficiency.TrainingEfficiency: per accelerator, with its calibration source);
- pipeline bubble: (p−1)/m for 1F1B, (p−1)/(v·m) interleaved (Narayanan et al. 2021 §2.2);
- communication from :func:`llmcalc.training.comms.comm_ledger` (each call timed by llmcalc.network's NCCL
  model); what hides behind compute follows the frameworks (see :func:`training_step`'s overlap flags):
  gradient reduction only behind the last micro-batch's backward, ZeRO-3 gathers one layer ahead, TP exposed
  unless --tp-comm-overlap, PP p2p and EP all-to-all exposed, CP ring exchanges behind attention.
- MFU is reported in two named conventions: "6·N·D" (Kaplan et al. 2020; PaLM's MFU "without attention") and
  "with attention" (every matmul, attention over the full L×L rectangle: PaLM App. B's 6N + 12·L·H·Q·T,
  Korthikanti et al. 2022 App. A eq. 7); HFU adds recomputation (Narayanan et al. 2021 eq. 3 counts it).
  The step TIME counts what the kernels execute (causal attention halved under FlashAttention); MFU does not.
- the layout's memory is checked (llmcalc.training.memory, the same reserve as fit and serve): a layout that
  does not fit says so in the title and ``data['fits']``, and its MFU is labelled hypothetical.
"""

from __future__ import annotations

import numpy as np

from ..core.errors import LlmcalcError
from ..core.results import Result, derive, memo_by_identity
from ..core.specs import Hardware, Model
from .comms import comm_ledger
from .layout import (
    Layout,
    check_layout,
    check_recompute_layers,
    is_sweep,
    masked_sweep,
    microbatches,
    recompute_code,
    recompute_share,
    stage_layers,
    where,
)

SRC_BUBBLE = "Narayanan et al. 2021 §2.2: bubble fraction (p−1)/m for 1F1B, (p−1)/(v·m) interleaved"
MFU_BEYOND_PUBLISHED = 0.60
SRC_TP_OVERLAP = ("Megatron-LM arguments.py: 'Tensor parallel communication/GEMM overlap can happen only when "
                  "sequence parallelism is enabled'")
MFU_ABOVE_HFU = ("MFU with attention counts the full L×L rectangle; FlashAttention executes only the causal half, so "
                 "at this length that convention exceeds the FLOPs actually run (HFU): read MFU 6·N·D or HFU here")
SRC_BEST_MFU = ("no large-scale run among the published cases this model is tested on reaches it (Narayanan et al. "
                "2021: 52% on A100; Megatron-Core r0.8 H100 table: ≤ 49%; Llama 3 405B: 43%; PaLM: 46%)")
LOW_PRECISION_TRAINING = ("fp8", "fp6", "fp4", "int8", "int4")  # dtypes whose peak only the block linears reach
SRC_DUALPIPE = ("DeepSeek-V3 report (arXiv 2412.19437) §3.2.1, Table 2: DualPipe bubble (PP/2 − 1)(F&B + B − 3W), "
                "computation-communication overlap of paired forward and backward chunks")
SRC_MFU = "Chowdhery et al. 2022 (PaLM) App. B: MFU = model FLOPs per second / peak; Korthikanti et al. 2022 App. A"


def flops_per_sequence(m: Model, seq, *, causal: bool = False, extras: bool = False):
    """(model FLOPs, hardware FLOPs by recompute code 0/1/2, LM-head training FLOPs) of one training sequence,
    via llmcalc.flops. The head is run forward and backward once (never recomputed): 3 × its forward.
    With ``extras``, also a dict: ``core`` (attention scores + values, one forward, full L×L rectangle),
    ``moe`` (router + expert matmuls, one forward) and ``six_nd`` (6·N per token × L).

    Evaluated once per distinct ``seq`` so a million-point sweep over a few lengths stays cheap; one scalar
    ``seq`` is kept per model (issue #13: calibrate's fit asks 26 times for the same sequence, a step 1-4 times)
    and each caller gets its own list and dict."""
    if np.ndim(seq) == 0:
        out = _flops_per_sequence_memo(m, seq, causal, extras)
        return (out[0], list(out[1]), *out[2:-1], dict(out[-1])) if extras else (out[0], list(out[1]), out[2])
    return _flops_per_sequence(m, seq, causal, extras)


def _flops_per_sequence(m: Model, seq, causal: bool, extras: bool):
    from ..model.flops import forward_flops

    u, inv = np.unique(np.asarray(seq), return_inverse=True)
    model = head = None
    hw = []
    ex = {}
    for rc in ("none", "selective", "full"):
        d = forward_flops(m, 1, u.astype(float), causal=causal, recompute=rc).data
        model = np.asarray(d["train_step_flops"], float)
        head = 3 * np.asarray(d["lm_head_flops"], float) * np.ones_like(model)
        hw.append(np.asarray(d["hardware_flops"], float))
        if extras and rc == "none":
            full = d if not causal else forward_flops(m, 1, u.astype(float), recompute=rc).data
            core = moe = 0.0
            for name, blk in full["per_layer"].items():
                for mm in blk["matmuls"]:
                    if mm["key"].endswith(("/scores", "/values")):
                        core = core + blk["layers"] * np.asarray(mm["flops"], float)
                    elif name.startswith("moe") and mm["key"].endswith(("/router", "/experts")):
                        # routed experts (grouped GEMMs over uneven token counts); shared experts run as a dense MLP
                        moe = moe + blk["layers"] * np.asarray(mm["flops"], float)
            ex = {"core": core * np.ones_like(model), "moe": moe * np.ones_like(model),
                  "six_nd": np.asarray(d["six_nd_flops"], float) * np.ones_like(model)}
    if np.ndim(seq) == 0:
        out = float(model[0]), [float(h[0]) for h in hw], float(head[0])
        return (*out, {k: float(v[0]) for k, v in ex.items()}) if extras else out
    inv = inv.reshape(np.shape(seq))
    out = model[inv], [h[inv] for h in hw], head[inv]
    return (*out, {k: v[inv] for k, v in ex.items()}) if extras else out


_flops_per_sequence_memo = memo_by_identity(_flops_per_sequence)


def compute_efficiency_default(hw: Hardware | None = None, m: Model | None = None, tp: int = 1) -> float:
    """The dense-matmul efficiency the step model uses on ``hw`` for ``m`` at width d_model/tp (the hardware's
    efficiency block, llmcalc.core.efficiency); H100 SXM's set (the stated generation default) without ``hw``,
    the wide-GEMM limit without ``m``. For callers that need one fraction (forward-only passes)."""
    from ..core.catalogue import load_hardware
    from ..core.efficiency import training_efficiency

    te = training_efficiency(hw if hw is not None else load_hardware("h100-sxm"))
    return te.matmul if m is None else float(te.matmul_at(m.d_model / tp))


def _lower_bound(compute, bubble, valid, *, global_batch, seq, f_model, gpus, peak, pipe=None,
                 offload=0.0) -> Result:
    """step = compute + comm + bubble·(compute + comm) + grad + offload, every added term >= 0 (the rows below)
    and 1 + bubble > 0, so step >= compute·(1 + bubble), and with the exposed pipeline communication ``pipe``
    (TP, EP, PP, CP rows) and the exposed optimizer offload, step >= (compute + comm)·(1 + bubble) + offload: the
    planner prunes with it (issue #13), and the tokens/s and MFU it gives are upper bounds on the real ones."""
    if pipe is None:
        lb = derive("time/step_lower_bound", "C*(1 + b)", "s", "step with no communication: compute and bubble only",
                    label="step time lower bound", C=compute.value, b=bubble.value)
    else:
        lb = derive("time/step_lower_bound", "(C + P)*(1 + b) + O", "s", "step without the DP/ZeRO gradient and "
                    "parameter communication", label="step time lower bound", C=compute.value, P=pipe.value,
                    b=bubble.value, O=offload)
    tps = derive("throughput/tokens_per_s_upper", "gb*L/T", "token/s", "definition", label="tokens/s upper bound",
                 gb=global_batch, L=seq, T=lb.value)
    mfu = derive("mfu_upper", "F/(T*N*peak)", "%", SRC_MFU, label="MFU upper bound", F=f_model, T=lb.value, N=gpus,
                 peak=peak)
    return Result("Step time lower bound", (lb, tps, mfu), (), {"valid": valid, "step_time_s": lb.value,
                                                                "tokens_per_s": tps.value, "mfu": mfu.value,
                                                                "compute_s": compute.value,
                                                                "bubble_fraction": bubble.value})


def mfu_from_time(model_flops, step_time_s, gpus, peak_flops_per_s):
    """MFU of a measured step: model FLOPs / (time × GPUs × peak) (PaLM App. B)."""
    return derive("mfu_measured", "F/(T*N*peak)", "%", SRC_MFU, label="MFU from the measured step time",
                  F=model_flops, T=step_time_s, N=gpus, peak=peak_flops_per_s)


ATTENTION_KERNELS = ("flash", "unfused")
SRC_FLASH = ("FlashAttention skips key blocks above the causal diagonal (Dao 2023, FlashAttention-2 §3.1.1): "
             "executed QKᵀ/AV FLOPs are half the L×L rectangle")
SRC_UNFUSED = ("unfused attention (Megatron-LM 2021-22): scores materialised for the full L×L rectangle, the causal "
               "mask applied to them (Korthikanti et al. 2022 App. A counts the full rectangle)")


@masked_sweep
def step_memory(m: Model, hw: Hardware, layout: Layout = Layout(), *, global_batch, micro_batch=1, seq=2048,
                recompute="none", act_bytes: int = 2, optimizer: str = "adam-fp32-grads", reserve: float | None = None,
                recompute_layers=None, recompute_norm_up: bool = False, fp8_activations: bool = False,
                offload_optimizer=False, **timing) -> Result:
    """The memory check :func:`training_step` makes (``data['fits']``), given the same arguments as the step: a
    caller that asks it before stepping (llmcalc.rl's trainer skips the step where it does not fit) passes the one
    set of arguments to both, so the two cannot disagree. ``timing``: the step's other arguments, which memory does
    not depend on."""
    from .memory import training_memory

    return training_memory(m, hw, layout, micro_batch=micro_batch, seq=seq, recompute=recompute_code(recompute),
                           optimizer=optimizer, global_batch=global_batch, act_bytes=act_bytes, reserve=reserve,
                           recompute_layers=recompute_layers, recompute_norm_up=recompute_norm_up,
                           fp8_activations=fp8_activations, offload_optimizer=offload_optimizer)



def check_tp_comm_overlap(tp, sp, sp_off: str = "no --sp") -> None:
    """--tp-comm-overlap needs sequence parallelism with TP > 1 (SRC_TP_OVERLAP); LlmcalcError where the layout
    rules that out, ``sp_off`` naming how SP was left off. ``None`` (a planner's search) rules out nothing: its
    SP-less candidates keep their TP collectives exposed instead (training_step)."""
    from ..core.errors import LlmcalcError

    if sp is None and tp is None:
        return
    if (sp is not None and not sp) or (tp is not None and int(tp) == 1):
        got = ", ".join(x for x in (None if tp is None else f"--tp {int(tp)}", None if sp is None or sp else
                                    sp_off) if x)
        raise LlmcalcError(f"--tp-comm-overlap needs --sp with --tp > 1 (got {got}): {SRC_TP_OVERLAP}")

def training_step(m: Model, hw: Hardware, layout: Layout = Layout(), *, global_batch, micro_batch=1, seq=2048,
                  gpus=None, recompute="none", compute_efficiency: float | None = None,
                  link_efficiency: float | None = None, causal: bool = False, dtype: str = "bf16",
                  act_bytes: int = 2, grad_bytes: int = 2, efficiency=None, attention: str = "flash",
                  tp_comm_overlap: bool = False, optimizer: str = "adam-fp32-grads", reserve: float | None = None,
                  check_memory: bool = True, latency_scale: float = 1.0, overlap_grad_reduce: bool = True,
                  overlap_param_gather: bool = False, zero3_prefetch: bool = True, recompute_layers=None,
                  recompute_norm_up: bool = False, fp8_activations: bool = False, offload_optimizer=False,
                  cpu_adam_params_per_s: float | None = None, lower_bound_only: bool | str = False,
                  checked=None) -> Result:
    """Predicted step time, tokens/s, MFU and HFU. Numeric arguments may be numpy arrays (then ``data['valid']``
    masks impossible layouts instead of raising).

    ``efficiency``: a :class:`~llmcalc.core.efficiency.TrainingEfficiency` (e.g. a calibrated profile); default
    the hardware's own set; ``compute_efficiency`` replaces it with one flat fraction. ``attention``: "flash"
    or "unfused" (how the attention core executes). ``causal``: count MFU's model FLOPs causal-halved (the
    Megatron-LM counter) instead of the full rectangle. ``tp_comm_overlap``: TP collectives hide behind the
    GEMMs (Megatron-Core ``--tp-comm-overlap``), exposed only where longer than compute. ``optimizer`` and
    ``reserve`` go to the memory check. ``latency_scale`` multiplies every collective latency (0: none).

    Overlap (each a flag, defaults as the frameworks ship): ``overlap_grad_reduce`` (PyTorch DDP buckets, Megatron
    ``--overlap-grad-reduce``): DP/ZeRO-1 gradient reduction hides behind the LAST micro-batch's backward only
    (earlier micro-batches accumulate locally, no_sync), ZeRO-2's per-micro-batch reduce-scatter behind each
    backward; ``overlap_param_gather`` (Megatron ``--overlap-param-gather``, default off): the ZeRO-1/2 parameter
    all-gather behind the next step's first forward; ``zero3_prefetch`` (FSDP backward/forward prefetch,
    DeepSpeed stage-3 prefetch): each layer's all-gather hides behind the previous layer's compute, the first
    layer's stays exposed. Pipeline p2p and expert all-to-all stay exposed; ring-attention (CP) exchanges overlap
    the blockwise attention.

    ``offload_optimizer`` (ZeRO-Offload, Ren et al. 2021; DeepSpeed offload_optimizer, ZeRO 1-3): the optimizer step
    runs on the host. Gradients go down behind the last micro-batch's backward; the CPU Adam step (at
    ``cpu_adam_params_per_s`` per host, shared by the host's GPUs) and the copy of the updated parameters back
    overlap each other (DeepSpeed CPU Adam's adam_update_copy) but not the GPU step: exposed, as DeepSpeed runs
    by default (the paper's one-step delayed update, §4.2, is not modelled).

    ``lower_bound_only``: return only a lower bound on the step time with the tokens/s and MFU it allows (see
    :func:`_lower_bound`): True, compute × (1 + bubble) without the communication ledger; "pipeline",
    (compute + exposed TP/EP/PP/CP communication) × (1 + bubble) + exposed optimizer offload, from the ledger's
    pipeline and host rows alone.

    ``checked``: for a caller that reads the result only where its own mask says, and checked those layouts
    before: a mask that broadcasts to the layouts and holds every layout it will read (a planner's candidates' outer
    rows: the candidates passed the memory model's check on a grid whose GPU counts are tp·pp·dp·cp by
    construction). It is ``data['valid']`` and check_layout is not run (issue #13: a planner's step calls, 10³-10⁵
    layouts each)."""
    from ..core.efficiency import training_efficiency

    rc = recompute_code(recompute)
    check_recompute_layers(rc, recompute_layers)
    valid = checked if checked is not None else check_layout(m, layout, gpus=gpus, micro_batch=micro_batch, seq=seq,
                                                             global_batch=global_batch)
    if attention not in ATTENTION_KERNELS:
        raise LlmcalcError(f"--attention expects flash or unfused, got {attention!r}")
    te = training_efficiency(hw, flat=compute_efficiency, profile=efficiency)
    peak = hw.peak(dtype)
    n_gpus = layout.gpus if gpus is None else gpus
    f_model, f_hw, f_head, ex = flops_per_sequence(m, seq, causal=causal, extras=True)
    # Full recompute of only the first k layers of each stage re-runs the forward of those k (Megatron-Core block
    # method): the slowest stage's share k/(Ls/v) of the full-recompute FLOPs.
    share = recompute_share(rc, recompute_layers, stage_layers(m.n_layers, layout)["max"], layout.interleave)
    f_hw = where(np.asarray(rc) == 1, f_hw[1], f_hw[0] + share * (f_hw[2] - f_hw[0]))
    if recompute_norm_up and m.attention.mla and not np.all(share == 1):
        # DeepSeek-V3 §3.2.3: the MLA up-projections (W_UQ, W_UK, W_UV) run again in backward, 2 FLOPs per weight
        # per token (norms: elementwise, not counted); layers already under full recompute pay nothing extra.
        a, ml = m.attention, m.attention.mla
        up = (ml.q_lora_rank or 0) * a.n_heads * a.qk_dim + ml.kv_lora_rank * a.n_heads * (
            ml.qk_nope_head_dim + ml.v_head_dim)
        f_hw = f_hw + (1 - share) * 2.0 * up * np.asarray(seq, float) * m.n_layers
    mb = microbatches(layout, micro_batch, global_batch)
    figs = [
        derive("flops/model", "gb*Fm", "FLOP", "3 × forward FLOPs (llmcalc.model.flops; Korthikanti et al. 2022 eq. 7)",
               label="model FLOPs per step" + (" (causal-halved attention)" if causal else ""),
               gb=global_batch, Fm=f_model),
        derive("flops/hardware", "gb*Fh", "FLOP", "model FLOPs + recomputation (llmcalc.model.flops)",
               label="hardware FLOPs per step", gb=global_batch, Fh=f_hw)]
    # The attention core runs forward, twice in backward and once more under any recompute; the rest of the
    # hardware FLOPs are matmuls (f_hw counts the core over the full rectangle unless ``causal``).
    core_counted = ex["core"] * (0.5 if causal else 1.0)
    passes = 3 + where(np.asarray(rc) == 1, 1, share)
    core_exec_share = 0.5 if attention == "flash" else 1.0
    core = derive("flops/attention_core_executed", "passes*Fcore*share", "FLOP",
                  SRC_FLASH if attention == "flash" else SRC_UNFUSED,
                  label=f"attention core per sequence as executed ({attention})", passes=passes, Fcore=ex["core"],
                  share=core_exec_share)
    dense = derive("flops/matmul", "Fh - passes*Fcounted", "FLOP", "hardware FLOPs less the attention core",
                   label="other matmuls per sequence (projections, MLP, LM head)", Fh=f_hw, passes=passes,
                   Fcounted=core_counted)
    moe_share = np.minimum(1.0, (ex["moe"] * 3) / np.maximum(dense.value, 1.0)) if m.moe else 0.0
    width = m.d_model / np.asarray(layout.tp, float)
    # Routed-expert GEMMs are split over the expert-TP group: the same width term with D/etp (etp = tp unless given,
    # Megatron-Core --expert-tensor-parallel-size); time-weighted with the other matmuls (harmonic mean by share s).
    x_width = m.d_model / np.asarray(layout.expert_tp, float)
    e_mm = derive("efficiency/matmul", "e/((1 - s)*(w + w0)/w + s*(we + w0)/(we*moe))", "ratio",
                  f"{te.origin}: {te.source or te.describe()}; width term: llmcalc.core.efficiency, experts at D/etp",
                  label=(f"matmul efficiency (D/tp = {_show(width)})" if te.flat is None
                         else "compute efficiency (flat)"),
                  e=te.matmul if te.flat is None else te.flat, w=width, w0=te.half_width if te.flat is None else 0,
                  s=moe_share, moe=te.moe if te.flat is None else 1, we=x_width)
    e_att = te.attention(attention)
    # A pipeline runs at the pace of its slowest stage: each stage runs its Ls of the L layers, and the last
    # also runs the LM head (the embedding lookup on the first is not a matmul). Even split: Ls = L/pp; uneven
    # stages (Llama 3 §3.3.2) lighten the ends. Matmuls and the attention core each at their efficiency.
    # 8-bit training runs the block linears in fp8 but keeps the attention operator and the output head in bf16
    # (DeepSeek-V3 report §3.3.1; Transformer Engine's fp8_autocast covers its Linear layers, attention only with
    # fp8_dpa): those two run at the 16-bit peak.
    wide = hw.peak("bf16") if dtype in LOW_PRECISION_TRAINING else peak
    sl = stage_layers(m.n_layers, layout)
    stage = derive("time/slowest_stage_per_sequence",
                   "max(((Fmm - Fhead)/(e_mm*peak) + Fcore/(e_att*wide))*Lother/layers, "
                   "((Fmm - Fhead)/(e_mm*peak) + Fcore/(e_att*wide))*Llast/layers + Fhead/(e_mm*wide))",
                   "s", "each stage its Ls of the L layers, LM head on the last (Narayanan et al. 2021 §2.2: the "
                   "pipeline advances at the pace of its slowest stage); matmuls and attention core each at their "
                   "efficiency; with fp8 the attention core and LM head at the bf16 peak (DeepSeek-V3 §3.3.1)",
                   label="one sequence through the slowest pipeline stage on one GPU",
                   Fmm=dense.value, Fhead=f_head, e_mm=e_mm.value, peak=peak, Fcore=core.value, e_att=e_att,
                   wide=wide, Lother=where(True, np.maximum(sl["first"], sl["middle"]), 0), Llast=sl["last"],
                   layers=m.n_layers)
    figs += [core, dense, e_mm, stage]
    compute = derive("time/compute", "gb/dp*Tseq/(tp*cp)", "s",
                     "each DP replica's sequences through the slowest stage, shared by its tp·cp GPUs",
                     label="compute (slowest stage)", gb=global_batch, dp=layout.dp, Tseq=stage.value, tp=layout.tp,
                     cp=layout.cp)
    # Forward share of the hardware FLOPs (model FLOPs are 3 x forward; recomputation is part of the backward)
    fwd = derive("time/forward_share", "Fm/3/Fh", "ratio", "forward = 1/3 of model FLOPs (Kaplan et al. 2020 "
                 "§2.1); recomputation runs inside the backward", label="forward share of the compute",
                 Fm=f_model, Fh=f_hw)
    dual = layout.schedule == "dualpipe"
    if dual:
        # DeepSeek-V3 Table 2: bubble (PP/2 − 1)(F&B + B − 3W) per step, F&B = an overlapped forward + full
        # backward chunk (= F + B in compute), B = full backward, W = its weight half (Qi et al. 2023: input and
        # weight gradients cost the same). Per micro-batch C = F + B, F = f·C: bubble = (p/2 − 1)·C·(1 + f)/2.
        bubble = derive("pipeline/bubble_fraction", "(pp/2 - 1)*(1 + f)/(2*m)", "ratio", SRC_DUALPIPE,
                        label="pipeline bubble / ideal time (DualPipe)", pp=layout.pp, f=fwd.value, m=mb)
    else:
        bubble = derive("pipeline/bubble_fraction", "(pp - 1)/(v*m)", "ratio", SRC_BUBBLE,
                        label="pipeline bubble / ideal time", pp=layout.pp, v=layout.interleave, m=mb)
    if lower_bound_only not in (False, True, "pipeline"):
        raise LlmcalcError(f"lower_bound_only expects False, True or 'pipeline', got {lower_bound_only!r}")
    bound = dict(global_batch=global_batch, seq=seq, f_model=figs[0].value, gpus=n_gpus, peak=peak)
    if lower_bound_only is True:  # the planner's pruning bound: no communication ledger (most of a step call's cost)
        return _lower_bound(compute, bubble, valid, **bound)
    comm = comm_ledger(m, hw, layout, micro_batch=micro_batch, seq=seq, global_batch=global_batch,
                       recompute=rc, link_efficiency=link_efficiency, act_bytes=act_bytes, grad_bytes=grad_bytes,
                       latency_scale=latency_scale, recompute_layers=recompute_layers,
                       offload_optimizer=offload_optimizer, pipeline_only=bool(lower_bound_only), checked=valid)
    c = comm.data
    k = c["by_overlap_s"]
    z = lambda key: k.get(key, 0.0)  # noqa: E731 - a missing kind moved nothing
    # only sequence-parallel TP collectives overlap (SRC_TP_OVERLAP): a layout without SP keeps them exposed, so a
    # plan with --tp-comm-overlap does not hide the all-reduces of its SP-less candidates
    ov = np.where(np.asarray(layout.sp, bool), float(bool(tp_comm_overlap)), 0.0)
    ov = float(ov) if np.ndim(ov) == 0 else ov
    tp_exp = derive("time/tp_comm_exposed", "ov*max(tp - compute, 0) + (1 - ov)*tp", "s",
                    "TP collectives exposed unless Megatron --tp-comm-overlap (TransformerEngine userbuffers hide them "
                    "behind the GEMMs, sequence parallelism only; Megatron-LM arguments.py default off)",
                    label=f"TP communication exposed ({'overlapped' if tp_comm_overlap else 'not overlapped'})",
                    tp=z("tp"), compute=compute.value, ov=ov)
    cp_exp = derive("time/cp_comm_exposed", "max(cp - compute, 0)", "s", "ring attention passes K,V blocks while "
                    "computing the current block (Liu et al. 2023 §3)", label="CP ring exchange exposed",
                    cp=z("cp"), compute=compute.value)
    if dual:  # DeepSeek-V3 §3.2.1: "both all-to-all and PP communication can be fully hidden during execution"
        pipe = derive("time/pipeline_comm", "tp_exposed + max(ep + pp - compute, 0) + cp_exposed", "s",
                      SRC_DUALPIPE + ": EP all-to-all and PP p2p overlap the paired chunk's compute",
                      label="exposed TP/EP/PP/CP communication", tp_exposed=tp_exp.value, ep=z("ep"), pp=z("pp"),
                      compute=compute.value, cp_exposed=cp_exp.value)
    else:
        pipe = derive("time/pipeline_comm", "tp_exposed + ep + pp + cp_exposed", "s",
                      "exposed TP, EP all-to-all, PP p2p (never overlapped here) and CP rows of the ledger, on every "
                      "micro-batch's critical path", label="exposed TP/EP/PP/CP communication",
                      tp_exposed=tp_exp.value, ep=z("ep"), pp=z("pp"), cp_exposed=cp_exp.value)
    if lower_bound_only:  # "pipeline": the ledger's per-micro-batch rows only, and the optimizer offload
        offload = _offload_time(hw, c, compute.value, fwd.value, mb, offload_optimizer, cpu_adam_params_per_s)
        return _lower_bound(compute, bubble, valid, pipe=pipe, offload=offload[-1].value if offload else 0.0,
                            **bound)
    bub_t = derive("time/bubble", "b*(compute + comm)", "s", SRC_BUBBLE, label="pipeline bubble",
                   b=bubble.value, compute=compute.value, comm=pipe.value)
    gl, ge, pg, zf, zb = z("grad_last"), z("grad_each"), z("param_gather"), z("zero3_fwd"), z("zero3_bwd")
    og, op, zp = float(bool(overlap_grad_reduce)), float(bool(overlap_param_gather)), float(bool(zero3_prefetch))
    grad = derive("time/grad_sync_exposed",
                  "(gl - og*min(gl, C*(1 - f)/mb)) + (ge - og*min(ge, C*(1 - f))) + (pg - op*min(pg, C*f/mb))"
                  " + (zp*max(zf - C*f, zf/layers) + (1 - zp)*zf) + (zp*max(zb - C*(1 - f), zb/layers)"
                  " + (1 - zp)*zb) + tied", "s",
                  "DP/ZeRO-1 reduction behind the last micro-batch's backward only (PyTorch DDP no_sync; Megatron "
                  "--overlap-grad-reduce); ZeRO-2 reduce-scatter behind each backward; ZeRO-1/2 parameter gather "
                  "exposed unless --overlap-param-gather; ZeRO-3 gathers prefetched one layer ahead (FSDP, "
                  "Zhao et al. 2023 §3.3), the first layer's exposed; tied-embedding all-reduce exposed",
                  label="exposed DP/ZeRO communication", gl=gl, ge=ge, pg=pg, zf=zf, zb=zb, C=compute.value,
                  f=fwd.value, mb=mb, og=og, op=op, zp=zp, layers=max(m.n_layers / layout.pp, 1)
                  if np.ndim(layout.pp) == 0 else np.maximum(m.n_layers / np.asarray(layout.pp), 1), tied=z("tied"))
    offload = _offload_time(hw, c, compute.value, fwd.value, mb, offload_optimizer, cpu_adam_params_per_s)
    serial = sum(v for v in k.values())
    # max(·, 0): with nothing hidden the difference of the two sums can round to -1e-18 (fuzz, issue #13)
    hidden = derive("time/comm_hidden", "max(serial - pipe_raw - grad, 0)", "s", "communication that overlaps compute",
                    label="hidden communication (overlapped with compute)", serial=serial,
                    pipe_raw=pipe.value, grad=grad.value)
    step = derive("time/step", "compute + comm + bubble + grad + offload", "s", "sum of the rows above",
                  label="step time", compute=compute.value, comm=pipe.value, bubble=bub_t.value, grad=grad.value,
                  offload=offload[-1].value if offload else 0.0)
    tps = derive("throughput/tokens_per_s", "gb*L/T", "token/s", "definition", label="tokens per second",
                 gb=global_batch, L=seq, T=step.value)
    fits, mem = True, None
    if check_memory:
        mem = step_memory(m, hw, layout, micro_batch=micro_batch, seq=seq, recompute=rc, optimizer=optimizer,
                          global_batch=global_batch, act_bytes=act_bytes, reserve=reserve,
                          recompute_layers=recompute_layers, recompute_norm_up=recompute_norm_up,
                          fp8_activations=fp8_activations, offload_optimizer=offload_optimizer)
        fits = mem.data["fits"]
    hypo = "" if fits is True else (" — HYPOTHETICAL, the layout does not fit" if fits is False else
                                    " (where the layout fits)")
    six = derive("flops/six_nd", "gb*F6", "FLOP", "6·N·D, N = active parameters incl. embeddings (Kaplan et al. "
                 "2020 §2.1; PaLM App. B 'without attention')", label="6·N·D FLOPs per step", gb=global_batch,
                 F6=ex["six_nd"])
    mfu = derive("mfu", "F/(T*N*peak)", "%", SRC_MFU + "; with attention (full L×L rectangle unless --causal)",
                 label="MFU (model FLOPs, with attention)" + hypo,
                 F=figs[0].value, T=step.value, N=n_gpus, peak=peak)
    mfu6 = derive("mfu_6nd", "F6/(T*N*peak)", "%", "6·N·D convention (Kaplan et al. 2020; PaLM 'without attention')",
                  label="MFU (model FLOPs, 6·N·D)" + hypo, F6=six.value, T=step.value, N=n_gpus, peak=peak)
    executed = derive("flops/executed", "gb*(Fmm + Fcore)", "FLOP", "matmuls + the attention core as its kernel "
                      "runs it, recomputation included", label="FLOPs executed per step", gb=global_batch,
                      Fmm=dense.value, Fcore=core.value)
    hfu = derive("hfu", "F/(T*N*peak)", "%", SRC_MFU + "; the FLOPs the kernels execute (recomputation included, "
                 "FlashAttention's skipped blocks not)", label="HFU (hardware FLOPs utilization)" + hypo,
                 F=executed.value, T=step.value, N=n_gpus, peak=peak)
    figs += [compute, bubble, fwd, tp_exp, cp_exp, pipe, bub_t, grad, hidden, *offload, step, tps, six, executed, mfu,
             mfu6, hfu]
    if mem is not None:
        figs.append(mem["memory/total"])
        figs.append(mem["memory/usable"])
    if is_sweep(step.value, valid):
        valid = np.broadcast_to(valid, np.broadcast(valid, step.value).shape)
    data = {"model": m.name, "hardware": hw.name, "gpus": n_gpus, "microbatches": mb, "valid": valid,
            "fits": fits, "step_time_s": step.value, "compute_s": compute.value, "bubble_fraction": bubble.value,
            "bubble_s": bub_t.value, "exposed_comm_s": pipe.value + grad.value, "hidden_comm_s": hidden.value,
            "offload_exposed_s": offload[-1].value if offload else 0.0,
            "tokens_per_s": tps.value,
            "mfu": mfu.value, "mfu_6nd": mfu6.value, "hfu": hfu.value, "model_flops": figs[0].value,
            "hardware_flops": figs[1].value, "executed_flops": executed.value, "six_nd_flops": six.value,
            "matmul_efficiency": e_mm.value,
            "attention_efficiency": e_att, "attention_kernel": attention, "efficiency": te.as_dict(),
            "causal_attention": causal, "tp_comm_overlap": tp_comm_overlap}
    if mem is not None:
        data["memory_bytes_needed"] = mem.data["total_bytes"]
        data["memory_bytes_usable"] = mem.data["usable_bytes"]
        data["reserve"] = mem.data["reserve"]
        data["optimizer"] = optimizer
    if not is_sweep(step.value):
        data["comm_rows"] = c["rows"]
    notes = [f"efficiency: {te.describe()}" + (f"; source: {te.source}" if te.source else ""),
             f"peak: dense {dtype} {peak / 1e12:g} TFLOP/s",
             "attention core executed " + ("causal-halved (FlashAttention skips masked blocks)" if attention == "flash"
                                           else "over the full L×L rectangle (unfused kernels)"),
             "MFU model FLOPs: attention " + ("causal-halved (Megatron-LM counter)" if causal else
                                              "over the full L×L rectangle (Narayanan 2021, Korthikanti 2022, PaLM)")
             + "; 6·N·D beside it",
             *comm.assumptions]  # the ledger names an uneven split
    above = np.asarray(mfu.value) > np.asarray(hfu.value)
    data["mfu_above_hfu"] = where(True, above, False)
    if np.any(above):
        notes.append(MFU_ABOVE_HFU)
    beyond = np.asarray(mfu6.value) > MFU_BEYOND_PUBLISHED
    data["beyond_published_mfu"] = where(True, beyond, False)
    if np.any(beyond):
        notes.insert(0, f"MFU 6·N·D above {MFU_BEYOND_PUBLISHED:.0%}: an extrapolation — {SRC_BEST_MFU}; read this "
                        "step time as an upper bound on speed")
    if mem is not None:
        notes.insert(0, ("fits" if fits is True else "does NOT fit" if fits is False else "memory per layout")
                     + f": {mem.data['verdict_line']} (llmcalc memory, optimizer {optimizer})")
    head = f"Training step: {m.display_name} on {n_gpus if not is_sweep(n_gpus) else 'N'} × {hw.display_name}"
    if fits is False:
        head = f"DOES NOT FIT: {mem.data['verdict_line']} — {head} (times and MFU below are hypothetical)"
    return Result(head, tuple(figs), tuple(notes), data)


# DeepSpeed PR #735 (deepspeedai/DeepSpeed, 2021-02, by a CPU-Adam author): DeepSpeed CPU Adam "reduces the optimizer
# time from 56 seconds to 8.2 seconds [for] an 11.6B parameter GPT2 model" (torch.optim.Adam on CPU: 56 s):
# 11.6e9 / 8.2 s = 1.41e9 parameters/s on one host. The DeepSpeed ZeRO-Offload tutorial (deepspeed.ai/tutorials/
# zero-offload) states DeepSpeedCPUAdam is "5X-7X faster than the standard PyTorch implementation": 56/8.2 = 6.8 agrees.
# The ZeRO-Offload paper's own CPU-Adam latency table (Ren et al. 2021 §5) could not be read here. Taken as the
# throughput of one host shared by its GPUs; a JUDGEMENT for any other CPU (pass cpu_adam_params_per_s).
CPU_ADAM_PARAMS_PER_S = 11.6e9 / 8.2
SRC_CPU_ADAM = ("DeepSpeed CPU Adam: 11.6e9 parameters in 8.2 s on one host (deepspeedai/DeepSpeed PR #735; 6.8x "
                "PyTorch's CPU Adam, inside the 5-7x of DeepSpeed's ZeRO-Offload tutorial)")


def _offload_time(hw: Hardware, c: dict, compute, fwd, mb, offload, rate) -> list:
    """Exposed time of the host optimizer step (ZeRO-Offload): [] when offload is off everywhere."""
    if not np.any(np.asarray(offload)):
        return []
    if rate is not None and not (np.isfinite(rate) and rate > 0):
        raise LlmcalcError(f"--cpu-adam-rate must be a positive number of parameters per second, got {rate!r}")
    per_host = hw.scale_up.domain_size  # GPUs sharing one host's cores (8 on HGX/DGX nodes)
    cpu = derive("time/cpu_adam", "P*gpus_per_host/rate", "s", SRC_CPU_ADAM + "; each host updates the partitions of "
                 "its GPUs", label="CPU Adam step on the host (this rank's partition)", P=c["offloaded_params"],
                 gpus_per_host=per_host, rate=CPU_ADAM_PARAMS_PER_S if rate is None else rate)
    exposed = derive("time/offload_exposed", "max(d2h - C*(1 - f)/mb, 0) + max(cpu, h2d)", "s",
                     "ZeRO-Offload (Ren et al. 2021 §4.1): gradients copied to the host during the backward (here the "
                     "last micro-batch's); the CPU Adam step and the parameter copy back overlap each other (DeepSpeed "
                     "adam_update_copy) but not the GPU step (no one-step delayed update, §4.2)",
                     label="optimizer offload exposed (host link + CPU Adam)", d2h=c["host_d2h_s"], C=compute, f=fwd,
                     mb=mb, cpu=cpu.value, h2d=c["host_h2d_s"])
    return [cpu, exposed]


def _show(x) -> str:
    return f"{float(x):g}" if np.ndim(x) == 0 else "per layout"
