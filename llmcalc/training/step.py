"""Training step time, tokens/s, MFU and HFU for a parallel layout.

step = (compute + exposed pipeline communication) × (1 + bubble) + exposed gradient sync
       + max(0, overlappable communication − compute)

- compute: the hardware FLOPs (model FLOPs + recomputation) of each DP replica's sequences through the
  SLOWEST pipeline stage (its L/p layers plus the LM head on the last stage), on that stage's tp·cp GPUs
  at ``compute_efficiency`` × dense peak; with pp = 1 this is the global batch split evenly over the GPUs;
- pipeline bubble: (p−1)/m for 1F1B, (p−1)/(v·m) interleaved (Narayanan et al. 2021 §2.2);
- communication from :func:`llmcalc.comms.comm_ledger`: TP/EP/PP rows sit on every micro-batch's
  critical path; DP/ZeRO gradient and parameter collectives and CP ring exchanges can overlap compute.
- MFU counts model FLOPs (3 × forward; Korthikanti et al. 2022 App. A eq. 7 for GPT blocks);
  HFU adds recomputation (Chowdhery et al. 2022 App. B; Narayanan et al. 2021 eq. 3 counts it).
"""

from __future__ import annotations

import numpy as np

from ..core.checks import check_number
from ..core.results import Result, derive
from ..core.specs import Hardware, Model
from .comms import comm_ledger
from .layout import Layout, check_layout, is_sweep, microbatches, recompute_code, stage_layers, where

SRC_BUBBLE = "Narayanan et al. 2021 §2.2: bubble fraction (p−1)/m for 1F1B, (p−1)/(v·m) interleaved"
SRC_MFU = "Chowdhery et al. 2022 (PaLM) App. B: MFU = model FLOPs per second / peak; Korthikanti et al. 2022 App. A"


def compute_efficiency_default() -> float:
    """Fraction of peak a whole training layer reaches (see llmcalc.core.efficiency: calibrated on Korthikanti 2022)."""
    from ..core.efficiency import TRAINING_COMPUTE_EFFICIENCY

    return TRAINING_COMPUTE_EFFICIENCY


def flops_per_sequence(m: Model, seq, *, causal: bool = False):
    """(model FLOPs, hardware FLOPs by recompute code 0/1/2, LM-head training FLOPs) of one training sequence,
    via llmcalc.flops. The head is run forward and backward once (never recomputed): 3 × its forward.

    Evaluated once per distinct ``seq`` so a million-point sweep over a few lengths stays cheap."""
    from ..model.flops import forward_flops

    u, inv = np.unique(np.asarray(seq), return_inverse=True)
    model = head = None
    hw = []
    for rc in ("none", "selective", "full"):
        d = forward_flops(m, 1, u.astype(float), causal=causal, recompute=rc).data
        model = np.asarray(d["train_step_flops"], float)
        head = 3 * np.asarray(d["lm_head_flops"], float) * np.ones_like(model)
        hw.append(np.asarray(d["hardware_flops"], float))
    if np.ndim(seq) == 0:
        return float(model[0]), [float(h[0]) for h in hw], float(head[0])
    inv = inv.reshape(np.shape(seq))
    return model[inv], [h[inv] for h in hw], head[inv]


def mfu_from_time(model_flops, step_time_s, gpus, peak_flops_per_s):
    """MFU of a measured step: model FLOPs / (time × GPUs × peak) (PaLM App. B)."""
    return derive("mfu_measured", "F/(T*N*peak)", "%", SRC_MFU, label="MFU from the measured step time",
                  F=model_flops, T=step_time_s, N=gpus, peak=peak_flops_per_s)


def training_step(m: Model, hw: Hardware, layout: Layout = Layout(), *, global_batch, micro_batch=1, seq=2048,
                  gpus=None, recompute="none", compute_efficiency: float | None = None,
                  link_efficiency: float | None = None, causal: bool = False, dtype: str = "bf16",
                  act_bytes: int = 2, grad_bytes: int = 2) -> Result:
    """Predicted step time, tokens/s, MFU and HFU. Numeric arguments may be numpy arrays (then ``data['valid']``
    masks impossible layouts instead of raising)."""
    rc = recompute_code(recompute)
    valid = check_layout(m, layout, gpus=gpus, micro_batch=micro_batch, seq=seq, global_batch=global_batch)
    eff = compute_efficiency_default() if compute_efficiency is None else check_number(
        compute_efficiency, "--compute-efficiency (fraction of the dense peak)", high=1)
    peak = hw.peak(dtype)
    n_gpus = layout.gpus if gpus is None else gpus
    f_model, f_hw, f_head = flops_per_sequence(m, seq, causal=causal)
    f_hw = where(np.asarray(rc) == 2, f_hw[2], where(np.asarray(rc) == 1, f_hw[1], f_hw[0]))
    comm = comm_ledger(m, hw, layout, micro_batch=micro_batch, seq=seq, global_batch=global_batch,
                       recompute=rc, link_efficiency=link_efficiency, act_bytes=act_bytes, grad_bytes=grad_bytes)
    c = comm.data
    mb = microbatches(layout, micro_batch, global_batch)
    figs = [
        derive("flops/model", "gb*Fm", "FLOP", "3 × forward FLOPs (llmcalc.model.flops; Korthikanti et al. 2022 eq. 7)",
               label="model FLOPs per step", gb=global_batch, Fm=f_model),
        derive("flops/hardware", "gb*Fh", "FLOP", "model FLOPs + recomputation (llmcalc.model.flops)",
               label="hardware FLOPs per step", gb=global_batch, Fh=f_hw)]
    # A pipeline runs at the pace of its slowest stage: each stage runs its Ls of the L layers, and the last
    # also runs the LM head (the embedding lookup on the first is not a matmul). Even split: (Fh − Fhead)/pp
    # + Fhead; pp = 1 gives F/(N·peak·eff). Uneven stages (Llama 3 §3.3.2) lighten the ends.
    sl = stage_layers(m.n_layers, layout)
    stage = derive("flops/slowest_stage", "max((Fh - Fhead)*Lother/layers, (Fh - Fhead)*Llast/layers + Fhead)",
                   "FLOP", "each stage its Ls of the L layers, LM head on the last (Narayanan et al. 2021 §2.2: the "
                   "pipeline advances at the pace of its slowest stage)",
                   label="hardware FLOPs per sequence, slowest pipeline stage", Fh=f_hw, Fhead=f_head,
                   Lother=where(True, np.maximum(sl["first"], sl["middle"]), 0), Llast=sl["last"],
                   layers=m.n_layers)
    figs.append(stage)
    compute = derive("time/compute", "gb/dp*Fstage/(tp*cp*peak*eff)", "s",
                     "each DP replica's sequences through the slowest stage, its tp·cp GPUs at a fraction of peak",
                     label=f"compute (efficiency {eff:g}, slowest stage)", gb=global_batch, dp=layout.dp,
                     Fstage=stage.value, tp=layout.tp, cp=layout.cp, peak=peak, eff=eff)
    bubble = derive("pipeline/bubble_fraction", "(pp - 1)/(v*m)", "ratio", SRC_BUBBLE,
                    label="pipeline bubble / ideal time", pp=layout.pp, v=layout.interleave, m=mb)
    pipe = derive("time/pipeline_comm", "x", "s", "TP, EP and PP rows of the communication ledger",
                  label="exposed TP/EP/PP communication", x=c["exposed_pipeline_s"])
    bub_t = derive("time/bubble", "b*(compute + comm)", "s", SRC_BUBBLE, label="pipeline bubble",
                   b=bubble.value, compute=compute.value, comm=pipe.value)
    grad = derive("time/grad_sync_exposed", "serial + max(0, overlappable - compute)", "s",
                  "gradient/parameter sync once per step; DP, ZeRO and CP rows hide behind compute when shorter",
                  label="exposed DP/ZeRO/CP communication", serial=c["exposed_step_s"],
                  overlappable=c["overlappable_s"], compute=compute.value)
    step = derive("time/step", "compute + comm + bubble + grad", "s", "sum of the rows above",
                  label="step time", compute=compute.value, comm=pipe.value, bubble=bub_t.value, grad=grad.value)
    tps = derive("throughput/tokens_per_s", "gb*L/T", "token/s", "definition", label="tokens per second",
                 gb=global_batch, L=seq, T=step.value)
    mfu = derive("mfu", "F/(T*N*peak)", "%", SRC_MFU, label="MFU (model FLOPs utilization)",
                 F=figs[0].value, T=step.value, N=n_gpus, peak=peak)
    hfu = derive("hfu", "F/(T*N*peak)", "%", SRC_MFU + "; hardware FLOPs include recomputation",
                 label="HFU (hardware FLOPs utilization)", F=figs[1].value, T=step.value, N=n_gpus, peak=peak)
    figs += [compute, bubble, pipe, bub_t, grad, step, tps, mfu, hfu]
    if is_sweep(step.value, valid):
        valid = np.broadcast_to(valid, np.broadcast(valid, step.value).shape)
    data = {"model": m.name, "hardware": hw.name, "gpus": n_gpus, "microbatches": mb, "valid": valid,
            "step_time_s": step.value, "compute_s": compute.value, "bubble_fraction": bubble.value,
            "bubble_s": bub_t.value, "exposed_comm_s": pipe.value + grad.value, "tokens_per_s": tps.value,
            "mfu": mfu.value, "hfu": hfu.value, "model_flops": figs[0].value, "hardware_flops": figs[1].value,
            "compute_efficiency": eff, "causal_attention": causal}
    if not is_sweep(step.value):
        data["comm_rows"] = c["rows"]
    from ..core.efficiency import SOURCE_TRAINING_COMPUTE

    why = "" if compute_efficiency is not None else f" ({SOURCE_TRAINING_COMPUTE})"
    notes = [f"compute at {eff:g} × the dense {dtype} peak ({peak / 1e12:g} TFLOP/s){why}",
             "attention FLOPs " + ("causal-halved (Megatron-LM counter)" if causal else
                                   "over the full L×L rectangle (Narayanan 2021, Korthikanti 2022, PaLM)"),
             *comm.assumptions]  # the ledger names an uneven split
    return Result(f"Training step: {m.display_name} on {n_gpus if not is_sweep(n_gpus) else 'N'} × "
                  f"{hw.display_name}", tuple(figs), tuple(notes), data)
