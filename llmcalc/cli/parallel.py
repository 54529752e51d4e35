"""Parallel-training commands: memory per GPU, the communication ledger, step time and MFU."""

from __future__ import annotations

import typer

from ._app import app
from ._common import (
    EXPLAIN_OPT,
    FP8_ACT,
    HARDWARE_OPT,
    JSON_OPT,
    MODEL_ARG,
    NORM_UP,
    RESERVE,
    SCHEDULE,
    emit,
    profile_active,
    profile_blocks,
    profile_inference,
    profile_training,
    table,
    user_errors,
    with_profile,
)

TP = typer.Option(1, "--tp", help="Tensor-parallel degree (innermost ranks).")
PP = typer.Option(1, "--pp", help="Pipeline-parallel degree.")
DP = typer.Option(None, "--dp", help="Data-parallel degree (default: GPUs / (tp·pp·cp), else 1).")
EP = typer.Option(1, "--ep", help="Expert-parallel degree (carved out of DP, Megatron-Core).")
CP = typer.Option(1, "--cp", help="Context-parallel degree.")
ETP = typer.Option(None, "--etp", help="Expert tensor-parallel degree (Megatron-Core --expert-tensor-parallel-size; "
                   "default: = --tp). Needs --sp when --tp > 1.")
OFFLOAD = typer.Option(False, "--offload-optimizer", help="Optimizer states, fp32 master and fp32 gradients in host "
                       "memory, the Adam step on the CPU (ZeRO-Offload / DeepSpeed offload_optimizer; needs "
                       "--zero 1-3).")
ZERO = typer.Option(0, "--zero", help="ZeRO stage 0-3 over the DP group (FSDP full shard = 3).")
SP = typer.Option(False, "--sp", help="Sequence parallelism with TP (Korthikanti et al. 2022).")
MICRO = typer.Option(1, "--micro-batch", "-b", help="Micro-batch size (sequences).")
SEQ = typer.Option(2048, "--seq", "-L", help="Sequence length (tokens).")
GLOBAL = typer.Option(None, "--global-batch", help="Global batch (sequences per step).")
RECOMPUTE = typer.Option("none", "--recompute", help="Activation recomputation: none, selective or full.")
RECOMPUTE_LAYERS = typer.Option(None, "--recompute-layers", help="With --recompute full: recompute only the first k "
                                "layers of each stage (Megatron-Core --recompute-method block --recompute-num-layers).")
INTERLEAVE = typer.Option(1, "--interleave", "-v", help="Virtual pipeline stages per device (interleaved 1F1B).")
GPUS = typer.Option(None, "--gpus", "-n", help="Total GPUs; must equal tp·pp·dp·cp.")
PP_LAYERS = typer.Option(None, "--pp-layers", help="Layers per pipeline stage, first to last: 7,8x14,7 "
                         "(default: even, or lighter first/last stages when --pp does not divide the layers).")
PP_FIRST = typer.Option(None, "--pp-first", help="Layers on the first pipeline stage; the others split the rest "
                        "(Megatron-Core --decoder-first-pipeline-num-layers).")
PP_LAST = typer.Option(None, "--pp-last", help="Layers on the last pipeline stage "
                       "(--decoder-last-pipeline-num-layers).")
LINK_EFF = typer.Option(None, "--link-efficiency", help="Fraction of per-direction link bandwidth reached.")
OPTIMIZER = typer.Option("adam-fp32-grads", "--optimizer",
                         help="adam-fp32-grads (default: Megatron-Core bf16, fp32 main grads, 18 B/param), adam (ZeRO "
                              "paper, 16 B), adam-no-master (10 B), adam-bf16-moments (DeepSeek-V3, 14 B), "
                              "adam-8bit, sgd.")
LATENCY_SCALE = typer.Option(1.0, "--latency-scale", help="Multiply every collective latency (NCCL's per-hop "
                             "and base latencies); 0 = bandwidth terms only.")
GRAD_OVERLAP = typer.Option(True, "--overlap-grad-reduce/--no-overlap-grad-reduce",
                            help="DP/ZeRO-1 gradient reduction hides behind the LAST micro-batch's backward (PyTorch "
                                 "DDP; Megatron --overlap-grad-reduce).")
PARAM_OVERLAP = typer.Option(False, "--overlap-param-gather", help="ZeRO-1/2 parameter all-gather hides behind the "
                             "next step's first forward (Megatron --overlap-param-gather; default off).")
ZERO3_PREFETCH = typer.Option(True, "--zero3-prefetch/--no-zero3-prefetch",
                              help="ZeRO-3/FSDP gathers the next layer behind the current one "
                                   "(FSDP/DeepSpeed default).")


def _not_applicable(m, lay, r) -> set[str]:
    """Memory rows that are 0 because they do not apply: a middle stage at pp <= 2, experts of a dense model, the
    ZeRO-3 gather buffers below stage 3 (the table leaves them out; JSON and --explain keep them)."""
    import numpy as np

    keys = {f.key for f in r.figures}
    hide = set()
    if np.ndim(lay.pp) == 0 and lay.pp <= 2:
        hide |= {k for k in keys if "middle" in k}
    if not m.moe:
        hide |= {k for k in keys if k.startswith("params/experts")}
    if np.ndim(lay.zero) == 0 and lay.zero < 3:
        hide.add("memory/zero3_gathered")
    return hide


def _layout(m, tp, pp, dp, ep, cp, zero, sp, interleave=1, gpus=None, pp_layers=None, pp_first=None,
            pp_last=None, schedule="1f1b", etp=None):
    from ..core.checks import check_count
    from ..core.errors import LayoutError
    from ..training.layout import Layout, check_layout, parse_pp_layers

    stages = dict(pp_first=pp_first, pp_last=pp_last)
    if pp_layers is not None:
        if pp_first is not None or pp_last is not None:
            raise LayoutError("give either --pp-layers or --pp-first/--pp-last, not both")
        stages = dict(pp_layers=parse_pp_layers(pp_layers))
        if pp == 1:  # --pp-layers alone names the stage count
            pp = len(stages["pp_layers"])

    for opt, v in (("--tp", tp), ("--pp", pp), ("--dp", dp), ("--ep", ep), ("--cp", cp), ("--interleave", interleave),
                   ("--gpus", gpus), ("--etp", etp)):
        check_count(v, opt)  # before any division: --tp 0 is a message, not a ZeroDivisionError
    if dp is None:
        if gpus is None:
            dp = 1
        elif gpus % (tp * pp * cp):
            check_layout(m, Layout(tp=tp, pp=pp, cp=cp, interleave=interleave, **stages))  # name a head/layer problem
            raise LayoutError(f"--gpus {gpus} is not divisible by tp·pp·cp = {tp}·{pp}·{cp} = {tp * pp * cp}")
        else:
            dp = gpus // (tp * pp * cp)
    return Layout(tp=tp, pp=pp, dp=dp, ep=ep, cp=cp, sp=sp, zero=zero, interleave=interleave,
                  schedule=schedule.lower(), etp=etp, **stages)


@app.command()
@user_errors
def memory(model: str = MODEL_ARG, hardware: str = HARDWARE_OPT, tp: int = TP, pp: int = PP, dp: int = DP,
           ep: int = EP, cp: int = CP, zero: int = ZERO, sp: bool = SP, micro_batch: int = MICRO, seq: int = SEQ,
           global_batch: int = GLOBAL, recompute: str = RECOMPUTE, interleave: int = INTERLEAVE,
           pp_layers: str = PP_LAYERS, pp_first: int = PP_FIRST, pp_last: int = PP_LAST,
           optimizer: str = OPTIMIZER, reserve: float = RESERVE, recompute_layers: int = RECOMPUTE_LAYERS,
           schedule: str = SCHEDULE, recompute_norm_up: bool = NORM_UP, fp8_activations: bool = FP8_ACT,
           etp: int = ETP, offload_optimizer: bool = OFFLOAD,
           flash: bool = typer.Option(True, "--flash/--no-flash", help="FlashAttention (no L×L scores)."),
           dropout: bool = typer.Option(False, "--dropout", help="Count dropout masks (GPT-3-style blocks)."),
           lora_rank: int = typer.Option(None, "--lora-rank", help="Train LoRA adapters of this rank."),
           lora_targets: str = typer.Option("q,k,v,o", "--lora-targets", help="Comma list of q,k,v,o,gate,up,down."),
           base_bits: int = typer.Option(16, "--base-bits", help="Frozen base precision with LoRA: 16, 8 or 4."),
           as_json: bool = JSON_OPT, explain: bool = EXPLAIN_OPT) -> None:
    """Training memory per GPU (weights, grads, optimizer, activations) and whether it fits."""
    from ..core.catalogue import load_hardware, load_model
    from ..training.memory import LoRA, training_memory

    lora = None
    if lora_rank is not None:
        lora = LoRA(lora_rank, tuple(t.strip() for t in lora_targets.split(",") if t.strip()), base_bits)
    m = load_model(model)
    lay = _layout(m, tp, pp, dp, ep, cp, zero, sp, interleave, None, pp_layers, pp_first, pp_last, schedule, etp)
    r = training_memory(m, load_hardware(hardware), lay,
                        micro_batch=micro_batch, seq=seq, recompute=recompute, optimizer=optimizer,
                        global_batch=global_batch, flash=flash, dropout=dropout, lora=lora, reserve=reserve,
                        recompute_layers=recompute_layers, recompute_norm_up=recompute_norm_up,
                        fp8_activations=fp8_activations, offload_optimizer=offload_optimizer)
    emit(r, as_json, explain, hide=_not_applicable(m, lay, r))
    if explain:
        from ..core.units import fmt

        typer.echo("tensors kept per layer for backward (one micro-batch; region seq: /tp only with --sp, "
                   "tp: /tp, core: dropped by selective recompute):")
        typer.echo(table([(t["block"], t["key"], t["shape"], t["region"], fmt(t["bytes"], "B").split(" (")[0],
                           t["why"]) for t in r.data["activation_tensors"]],
                         ("block", "tensor", "shape", "region", "bytes", "why")))


@app.command()
@user_errors
@with_profile
def comms(model: str = MODEL_ARG, hardware: str = HARDWARE_OPT, tp: int = TP, pp: int = PP, dp: int = DP,
          ep: int = EP, cp: int = CP, zero: int = ZERO, sp: bool = SP, micro_batch: int = MICRO, seq: int = SEQ,
          global_batch: int = GLOBAL, recompute: str = RECOMPUTE, interleave: int = INTERLEAVE,
          pp_layers: str = PP_LAYERS, pp_first: int = PP_FIRST, pp_last: int = PP_LAST,
          link_efficiency: float = LINK_EFF, latency_scale: float = LATENCY_SCALE,
          recompute_layers: int = RECOMPUTE_LAYERS, schedule: str = SCHEDULE, etp: int = ETP,
          offload_optimizer: bool = OFFLOAD, as_json: bool = JSON_OPT, explain: bool = EXPLAIN_OPT) -> None:
    """Every collective one training step issues, per rank: bytes, link, time, overlap, and the NCCL algorithm."""
    from ..core.catalogue import load_hardware, load_model
    from ..core.units import fmt
    from ..training.comms import comm_ledger

    m, hw = load_model(model), load_hardware(hardware)
    lay = _layout(m, tp, pp, dp, ep, cp, zero, sp, interleave, None, pp_layers, pp_first, pp_last, schedule, etp)
    if offload_optimizer:
        from ..training.layout import check_layout
        from ..training.memory import DEFAULT_OPTIMIZER, check_offload, optimizer_bytes

        check_layout(m, lay)  # a layout problem is named before the offload one
        check_offload(lay, optimizer_bytes(DEFAULT_OPTIMIZER), True, True)
    if profile_active():  # the profile's inference.link: fraction of link bandwidth (an --link-efficiency given wins)
        link_efficiency = profile_inference(hw, link=link_efficiency).link
    r = comm_ledger(m, hw, lay, micro_batch=micro_batch, seq=seq,
                    global_batch=global_batch, recompute=recompute, link_efficiency=link_efficiency,
                    latency_scale=latency_scale, recompute_layers=recompute_layers,
                    offload_optimizer=offload_optimizer)
    if as_json or explain:
        emit(r, as_json, explain)
        return
    typer.echo(r.title)
    rows = [(x["parallelism"], x["collective"], x["tensor"], x["shape"], str(x["group_size"]),
             fmt(x["message_bytes"], "B").split(" (")[0], fmt(x["bytes_per_rank"], "B").split(" (")[0],
             f"{x['count']:g}", x["link"], f"{x.get('algorithm', '')}/{x.get('protocol', '')}",
             fmt(x["time_s"], "s"), "yes" if x["overlappable"] else "no")
            for x in r.data["rows"]]
    typer.echo(table(rows, ("par", "collective", "tensor", "shape", "n", "message", "per rank", "count", "link",
                            "NCCL algo", "time/step", "overlap")))
    typer.echo(f"bytes moved per rank: {fmt(r.data['bytes_per_rank'], 'B')}; "
               f"serial time {fmt(r.data['total_time_s'], 's')}")
    for a in r.assumptions:
        typer.echo(f"  * {a}")


@app.command()
@user_errors
@with_profile
def step(model: str = MODEL_ARG, hardware: str = HARDWARE_OPT, gpus: int = GPUS, tp: int = TP, pp: int = PP,
         dp: int = DP, ep: int = EP, cp: int = CP, zero: int = ZERO, sp: bool = SP, micro_batch: int = MICRO,
         seq: int = SEQ, global_batch: int = typer.Option(..., "--global-batch", help="Sequences per step."),
         recompute: str = RECOMPUTE, recompute_layers: int = RECOMPUTE_LAYERS, interleave: int = INTERLEAVE,
         schedule: str = SCHEDULE, recompute_norm_up: bool = NORM_UP, fp8_activations: bool = FP8_ACT,
         dtype: str = typer.Option("bf16", "--dtype", help="Peak FLOP/s of this data type (bf16, fp8, ...); with "
                                   "fp8 the attention core and LM head stay at the bf16 peak."),
         etp: int = ETP, offload_optimizer: bool = OFFLOAD,
         cpu_adam_rate: float = typer.Option(None, "--cpu-adam-rate", help="With --offload-optimizer: parameters per "
                                             "second one host's CPU Adam updates (default 1.41e9, DeepSpeed "
                                             "CPU Adam)."),
         pp_layers: str = PP_LAYERS, pp_first: int = PP_FIRST, pp_last: int = PP_LAST,
         compute_efficiency: float = typer.Option(None, "--compute-efficiency",
                                                  help="Fraction of the dense peak that compute reaches."),
         link_efficiency: float = LINK_EFF,
         causal: bool = typer.Option(False, "--causal", help="Count MFU's attention FLOPs causal-halved (Megatron-LM "
                                     "counter) instead of the full rectangle (PaLM, Korthikanti)."),
         attention: str = typer.Option("flash", "--attention", help="How the attention core executes: flash "
                                       "(skips the masked half) or unfused (full L×L, Megatron-LM 2021-22)."),
         tp_comm_overlap: bool = typer.Option(False, "--tp-comm-overlap", help="TP collectives overlap the GEMMs "
                                              "(Megatron-Core --tp-comm-overlap)."),
         optimizer: str = OPTIMIZER, reserve: float = RESERVE,
         latency_scale: float = LATENCY_SCALE, overlap_grad_reduce: bool = GRAD_OVERLAP,
         overlap_param_gather: bool = PARAM_OVERLAP, zero3_prefetch: bool = ZERO3_PREFETCH,
         as_json: bool = JSON_OPT, explain: bool = EXPLAIN_OPT) -> None:
    """Step time, tokens/s, MFU and HFU for a parallel layout (compute + exposed comms + bubble), memory checked.
    Shows compute, bubble, exposed and hidden communication separately."""
    from ..core.catalogue import load_hardware, load_model
    from ..core.checks import check_fraction
    from ..core.errors import LlmcalcError
    from ..training.step import check_tp_comm_overlap, training_step

    check_fraction(compute_efficiency, "--compute-efficiency (fraction of the dense peak)")
    m = load_model(model)
    hw = load_hardware(hardware)
    eff = profile_training(hw, compute_efficiency)
    if link_efficiency is None and profile_active():
        link_efficiency = getattr(profile_blocks(hw)[1], "link", None)  # its inference.link, when it has one
    lay = _layout(m, tp, pp, dp, ep, cp, zero, sp, interleave, gpus, pp_layers, pp_first, pp_last, schedule, etp)
    if cpu_adam_rate is not None and not offload_optimizer:
        raise LlmcalcError("--cpu-adam-rate is the host optimizer's speed: give it with --offload-optimizer")
    if tp_comm_overlap:
        check_tp_comm_overlap(lay.tp, bool(lay.sp))
    r = training_step(m, hw, lay, global_batch=global_batch,
                      micro_batch=micro_batch, seq=seq, gpus=gpus, recompute=recompute,
                      compute_efficiency=compute_efficiency, link_efficiency=link_efficiency, causal=causal,
                      efficiency=eff, attention=attention.lower(), tp_comm_overlap=tp_comm_overlap,
                      optimizer=optimizer, reserve=reserve, latency_scale=latency_scale,
                      overlap_grad_reduce=overlap_grad_reduce, overlap_param_gather=overlap_param_gather,
                      zero3_prefetch=zero3_prefetch, recompute_layers=recompute_layers,
                      recompute_norm_up=recompute_norm_up, fp8_activations=fp8_activations, dtype=dtype.lower(),
                      offload_optimizer=offload_optimizer, cpu_adam_params_per_s=cpu_adam_rate)
    emit(r, as_json, explain)
