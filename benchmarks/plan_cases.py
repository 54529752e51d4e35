"""The planner's published training cases (shared/reference/rl-and-planner-cases.yaml, feature: planner).

For each case: the published layout is entered as pins on the planner (what the source states: TP, PP,
DP, CP, EP, ZeRO, micro-batch, virtual stages, recompute where stated); what the source does not state
is left free and the planner picks its best value (listed as "free" in the report). The same planner then
searches the whole space; the report gives the published layout's rank, its predicted throughput against
the case's band, and how the winner differs.

Calibration vs test: the A100 efficiencies are calibrated on Korthikanti et al. 2022 Table 5 (175B, 22B) and
Narayanan et al. 2021's 3.6B row, H100's on the Megatron-Core table's 16B and 32B rows (see
llmcalc/core/efficiency.py and llmcalc/validation/training_cases.py), so the korthikanti case is a CALIBRATION
case; every other case here is a test the constants were not fitted on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

REFERENCE = Path(__file__).resolve().parents[1] / ".." / "shared" / "reference" / "rl-and-planner-cases.yaml"


def reference_path() -> Path:
    for p in (REFERENCE, Path("/work/shared/reference/rl-and-planner-cases.yaml")):
        if p.exists():
            return p
    raise FileNotFoundError("shared/reference/rl-and-planner-cases.yaml not found")


def load_reference() -> dict[str, dict]:
    return {c["id"]: c for c in yaml.safe_load(reference_path().read_text()) if c.get("feature") == "planner"}


def gpt(layers: int, hidden: int, heads: int, vocab: int = 51200, seq: int = 2048, tied: bool = True):
    """A GPT-style model (4h GELU MLP, LayerNorm, learned positions) with the case's sizes."""
    from llmcalc.core.catalogue import load_model
    from llmcalc.core.specs import Model

    d = load_model("gpt-3-175b").model_dump()
    d.update(name=f"gpt-{layers}x{hidden}", display_name=f"GPT {layers}L×{hidden}", n_layers=layers,
             d_model=hidden, vocab_size=vocab, max_seq_len=max(seq, 2048), tie_embeddings=tied,
             sources={"architecture": "published case inputs (rl-and-planner-cases.yaml)"})
    d["attention"].update(n_heads=heads, n_kv_heads=heads, head_dim=hidden // heads)
    d["mlp"].update(d_ff=4 * hidden)
    return Model.model_validate(d)


def h800():
    """H800: an H100 SXM die with NVLink cut to 400 GB/s bidirectional (DeepSeek-V3 report §3.1: 160 GB/s
    achievable NVLink, 50 GB/s IB per GPU); the case's figures, everything else as the h100-sxm entry."""
    from llmcalc.core.catalogue import load_hardware
    from llmcalc.core.specs import Hardware

    d = load_hardware("h100-sxm").model_dump()
    d.update(name="h800", display_name="NVIDIA H800 (from H100 SXM, case links)", price_usd_per_hour=2.0)
    d["scale_up"].update(name="NVLink (H800)", bw_bytes_per_s=200e9, direction="per_direction")
    d["scale_out"].update(name="InfiniBand 400 Gb/s per GPU (50 GB/s)", bw_bytes_per_s=50e9, direction="per_direction")
    d["sources"] = dict(d["sources"], scale_up="DeepSeek-V3 report §3.1 (H800 NVLink 400 GB/s bidirectional)",
                        scale_out="DeepSeek-V3 report §3.1 (IB 50 GB/s per GPU)",
                        price_usd_per_hour="DeepSeek-V3 report Table 1 ($2 per H800 GPU-hour)")
    return Hardware.model_validate(d)


@dataclass(frozen=True)
class Case:
    id: str
    model: object  # callable -> Model
    hardware: object  # callable -> Hardware
    gpus: int
    global_batch: int
    seq: int
    pins: dict
    metric: str  # hfu_tflops | mfu_tflops | mfu | step_s | gpu_hours_per_T
    reported: float
    tolerance: float  # relative, or absolute points for mfu
    dtype: str = "bf16"
    calibration: bool = False
    attention: str = "flash"  # unfused for Megatron-LM 2021-22 (no FlashAttention)
    tp_comm_overlap: bool = False  # Megatron-Core --tp-comm-overlap
    reserve: float | None = None  # memory kept free; None = the engine's default (10%)
    options: dict = field(default_factory=dict)  # schedule, optimizer, memory recipe: as the source states them
    note: str = ""
    extra: dict = field(default_factory=dict)


def _cat_model(name):
    def f():
        from llmcalc.core.catalogue import load_model

        return load_model(name)
    return f


def _cat_hw(name):
    def f():
        from llmcalc.core.catalogue import load_hardware

        return load_hardware(name)
    return f


A100 = _cat_hw("a100-sxm-80gb")
H100 = _cat_hw("h100-sxm")
FULL = {"rc": "full", "cp": 1}  # Narayanan et al. 2021 ran every Table 1 row with full recomputation

CASES = [
    Case("plan-ptdp-table1-1p7b", lambda: gpt(24, 2304, 24), A100, 32, 512, 2048,
         dict(FULL, tp=1, pp=1, dp=32, mb=16, v=1, zero=0), "hfu_tflops", 137, 0.15, "fp16", attention="unfused"),
    Case("plan-ptdp-table1-18p4b", lambda: gpt(40, 6144, 48), A100, 256, 1024, 2048,
         dict(FULL, tp=8, pp=1, dp=32, mb=8, v=1, zero=0), "hfu_tflops", 135, 0.15, "fp16", attention="unfused"),
    Case("plan-ptdp-table1-145p6b", lambda: gpt(80, 12288, 96), A100, 1536, 2304, 2048,
         dict(FULL, tp=8, pp=8, dp=24, mb=2, v=2, zero=0), "hfu_tflops", 148, 0.15, "fp16", attention="unfused"),
    Case("plan-ptdp-table1-1t", lambda: gpt(128, 25600, 160), A100, 3072, 3072, 2048,
         dict(FULL, tp=8, pp=64, dp=6, mb=1, v=1, zero=0), "hfu_tflops", 163, 0.15, "fp16", attention="unfused"),
    Case("plan-ptdp-gpt3-175b-zero3-vs-ptdp", lambda: gpt(96, 12288, 96), A100, 1536, 1536, 2048,
         dict(FULL, tp=8, pp=12, dp=16, mb=1, zero=0), "hfu_tflops", 141, 0.20, "fp16", attention="unfused",
         note="PTD-P row at 1536 GPUs (TP8×PP12, interleaving not stated); ZeRO-3 row compared in the test",
         extra={"zero3": dict(FULL, tp=1, pp=1, dp=1536, mb=1, zero=3, reported=44)}),
    Case("plan-mcore-h100-weak-7p1b", lambda: gpt(30, 4096, 32, vocab=131072, seq=4096, tied=False), H100, 96, 192,
         4096, dict(tp=2, pp=1, dp=48, cp=1, zero=1), "mfu", 0.47, 0.05, tp_comm_overlap=True,
         note="distributed optimizer = ZeRO-1; micro-batch, recompute and SP not stated (free)"),
    Case("plan-mcore-h100-weak-70b", lambda: gpt(84, 8192, 64, vocab=131072, seq=4096, tied=False), H100, 768, 384,
         4096, dict(tp=8, pp=2, dp=48, cp=1, zero=1), "mfu", 0.42, 0.05, tp_comm_overlap=True,
         note="distributed optimizer = ZeRO-1; micro-batch, interleaving, recompute and SP not stated (free)"),
    Case("plan-llama3-405b-16k-gpus", _cat_model("llama-3.1-405b"), H100, 16384, 2048, 8192,
         dict(tp=8, pp=16, cp=1, dp=128, zero=2, v=8, rc="none"), "mfu_tflops", 400, 0.12, reserve=0.0,
         note="§3.3.2: FSDP keeping weights after forward = ZeRO-2; 126 layers on PP16 as 7, 8×14, 7 with the "
              "first chunk embedding-only = one-layer chunks, v = 8; no activation checkpointing; memory checked "
              "against the physical 80 GiB (reserve 0: fitted by their memory profiling); micro-batch free"),
    Case("plan-deepseek-v3-hai-llm", _cat_model("deepseek-v3"), h800, 2048, 15360, 4096,
         dict(tp=1, pp=16, ep=64, dp=128, cp=1, zero=1, v=1, rc="none"), "gpu_hours_per_T", 180e3, 0.25, "fp8",
         calibration=True, options=dict(schedule="dualpipe", recompute_norm_up=True, fp8_activations=True,
                      optimizer="adam-bf16-moments"),
         note="as the report states it: DualPipe (§3.2.1), RMSNorm + MLA up-projection recompute (§3.2.3), FP8 "
              "activation caching (§3.3.2), BF16 Adam moments with FP32 master and grads (§3.3.3), FP8 GEMMs with "
              "attention and head in BF16 (§3.3.1); 61 layers on PP16; MTP not modelled; micro-batch free. NOT an "
              "independent test: the MoE efficiency factor (0.74) was read off DeepSeek-V3's own GPU-hours"),
    Case("plan-mlperf-v30-gpt3-512gpu", _cat_model("gpt-3-175b"), H100, 512, 2048, 2048,
         dict(tp=4, pp=8, dp=16, v=12, mb=1, zero=1, rc="none", cp=1), "step_s", 12.083, 0.15, "fp8",
         note="FP8 (Transformer Engine) GEMM peak; SP not stated (free)"),
    Case("plan-korthikanti-gpt3-175b", lambda: gpt(96, 12288, 96), A100, 64, 64, 2048,
         dict(tp=8, pp=8, dp=1, v=3, mb=1, sp=1, rc="selective", cp=1, zero=0), "step_s", 13.75, 0.10, "fp16",
         calibration=True, attention="unfused",
         note="SP + selective row; the A100 efficiencies were fitted on this table (with its 22B row)"),
]


def predicted(case: Case, row: dict, model, hw) -> float:
    """The case's metric for one planned row."""
    if case.metric == "step_s":
        return row["step_time_s"]
    if case.metric == "mfu":
        return row["mfu"]
    if case.metric == "gpu_hours_per_T":
        return 1e12 / row["tokens_per_s"] * row["gpus"] / 3600
    if case.metric == "mfu_tflops":  # model FLOP/s per GPU (Llama 3 Table 4 reports BF16 MFU × peak)
        return row["mfu"] * hw.peak(case.dtype) / 1e12
    # hfu_tflops: hardware FLOPs incl. recompute per GPU-second (Narayanan et al. 2021 eq. 3 counts it), as the
    # step model counts them for this row (llmcalc.training.plan.best_breakdown: one place for the formula)
    from llmcalc.training.plan import best_breakdown

    opts = {k: v for k, v in case.options.items()}
    st, _ = best_breakdown(model, hw, row, global_batch=case.global_batch, seq=case.seq, dtype=case.dtype,
                           attention=case.attention, tp_comm_overlap=case.tp_comm_overlap, reserve=case.reserve,
                           **opts)
    return st.data["hardware_flops"] / row["step_time_s"] / row["gpus"] / 1e12


def in_band(case: Case, value: float) -> bool:
    if case.metric == "mfu":
        return abs(value - case.reported) <= case.tolerance
    return abs(value / case.reported - 1) <= case.tolerance


def run_case(case: Case) -> dict:
    """Plan the published layout (pinned) and the full space; the published layout's rank and the winner."""
    from llmcalc.training.plan import find, plan_training

    m, hw = case.model(), case.hardware()
    kw = dict(gpus=case.gpus, global_batch=case.global_batch, seq=case.seq, dtype=case.dtype,
              attention=case.attention, tp_comm_overlap=case.tp_comm_overlap)
    if case.reserve is not None:
        kw["reserve"] = case.reserve
    kw.update(case.options)
    pub = plan_training(m, hw, pins=case.pins, top=1, **kw)
    full = plan_training(m, hw, top=5, keep_evaluated=True, **kw)
    out = {"id": case.id, "model": m.display_name, "hardware": hw.display_name, "calibration": case.calibration,
           "published_fits": bool(pub.data["ranked"]), "space": (full.data["raw_combinations"], full.data["divisible"],
                                                                 full.data["fit"])}
    if not pub.data["ranked"]:
        return out
    p = pub.data["best"]
    ev = full.data["evaluated"]
    dims = {k: p[k] for k in ("tp", "pp", "v", "cp", "dp", "ep", "mb", "zero", "rc", "sp", "rk")}
    idx = find(ev, **dims)
    w = full.data["best"]
    out.update(published=p, slower_than_winner=w["tokens_per_s"] / p["tokens_per_s"] - 1,
               rank=None if idx is None else int(ev["rank"][idx]), of=len(ev["tp"]), winner=w,
               predicted=predicted(case, p, m, hw), winner_predicted=predicted(case, w, m, hw),
               in_band=in_band(case, predicted(case, p, m, hw)),
               differs={k: (p[k], w[k]) for k in dims if p[k] != w[k]},
               free=[k for k in dims if k not in case.pins and not (k == "rk" and "rc" in case.pins)])
    return out
