"""Published training step times and throughputs, with the layouts that produced them, split into the rows that
CALIBRATE the shipped efficiency defaults and the rows held out to TEST them.

Sources (inputs as published; what a source does not state is marked 'assumed'):
- KORTHIKANTI: Korthikanti et al. 2022 (arXiv 2205.05198) Table 3 (layouts) and Table 5 (iteration times):
  A100 80GB, seq 2048, vocab 51200, micro-batch 1 (22B: 4); the 175B row interleaved with 3 virtual stages;
  530B and 1T interleaving not stated (none assumed). Unfused attention (2022 Megatron-LM).
- NARAYANAN: Narayanan et al. 2021 (arXiv 2104.04473) Table 1 (TFLOP/s per GPU counted by eq. 3, which
  includes the recompute forward) with micro-batch, interleaving and recompute from the official script
  Megatron-LM examples/academic_paper_scripts/sc21/run_table_1.sh (full 'uniform' recompute in every row).
- MCORE: Megatron-Core r0.8.0 H100 weak-scaling table (Megatron-LM README, images/model_table.png): seq 4096,
  vocab 131072, GPT blocks (4h GELU MLP, untied embeddings), global batch = 4·DP·PP, TFLOP/s per GPU and MFU of
  the bf16 dense peak; run with --overlap-grad-reduce --overlap-param-gather --tp-comm-overlap, hence the
  distributed optimizer (ZeRO-1) and overlapped TP collectives; sequence parallelism with TP, no recompute,
  FlashAttention (Transformer Engine), micro-batch 1 and no interleaving assumed.
The published rows also live in shared/reference (rl-and-planner-cases.yaml: plan-ptdp-table1-*,
plan-mcore-h100-weak-*; published-cases.yaml: mfu-korthikanti2022-175b-iteration, mfu-megatron2021-1t-3072-a100).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Case:
    id: str
    source: str
    hardware: str
    model: tuple  # (layers, hidden, heads, vocab, seq, tied)
    layout: dict
    global_batch: int
    micro_batch: int
    recompute: str
    attention: str
    tp_comm_overlap: bool
    published: float  # step time s ("time"), TFLOP/s per GPU by eq. 3 ("x_eq3") or MFU ("mfu")
    kind: str
    band: float  # relative tolerance on the step time the source case states
    role: str  # "calibrate" or "test"
    note: str = ""


K, N, MC = "Korthikanti et al. 2022 Table 5", "Narayanan et al. 2021 Table 1", "Megatron-Core r0.8.0 H100 table"
A100, H100 = "a100-sxm-80gb", "h100-sxm"


def _k(i, m, lay, gb, mb, rc, t, role, note=""):
    return Case(i, K, A100, (*m, 51200, 2048, True), lay, gb, mb, rc, "unfused", False, t, "time", 0.10, role, note)


def _n(i, m, lay, gb, mb, x, role):
    return Case(i, N, A100, (*m, 51200, 2048, True), lay, gb, mb, "full", "unfused", False, x, "x_eq3", 0.15, role,
                "micro-batch, interleaving: run_table_1.sh")


def _mc(i, m, tp, pp, gb, mfu, role):
    return Case(i, MC, H100, (*m, 131072, 4096, False), dict(tp=tp, pp=pp, dp=48, zero=1, sp=tp > 1), gb, 1,
                "none", "flash", True, mfu, "mfu", 0.12, role, "micro-batch 1, no interleaving assumed")


CASES = [
    _k("korthikanti-175b-selective", (96, 12288, 96), dict(tp=8, pp=8, sp=True, interleave=3), 64, 1, "selective",
       13.75, "calibrate"),
    _k("korthikanti-22b-selective", (48, 6144, 64), dict(tp=8, sp=True), 4, 4, "selective", 1.10, "calibrate"),
    _k("korthikanti-175b-full", (96, 12288, 96), dict(tp=8, pp=8, interleave=3), 64, 1, "full", 18.13, "test",
       "SP off assumed"),
    _k("korthikanti-22b-full", (48, 6144, 64), dict(tp=8), 4, 4, "full", 1.42, "test", "SP off assumed"),
    _k("korthikanti-530b-selective", (105, 20480, 128), dict(tp=8, pp=35, sp=True), 280, 1, "selective", 37.83,
       "test", "interleaving not stated: none assumed"),
    _k("korthikanti-1t-selective", (128, 25600, 160), dict(tp=8, pp=64, sp=True), 512, 1, "selective", 71.49,
       "test", "interleaving not stated: none assumed"),
    _n("narayanan-1.7b", (24, 2304, 24), dict(tp=1, pp=1, dp=32), 512, 16, 137e12, "test"),
    _n("narayanan-3.6b", (30, 3072, 32), dict(tp=2, pp=1, dp=32), 512, 16, 138e12, "calibrate"),
    _n("narayanan-7.5b", (36, 4096, 32), dict(tp=4, pp=1, dp=32), 512, 16, 142e12, "test"),
    _n("narayanan-18.4b", (40, 6144, 48), dict(tp=8, pp=1, dp=32), 1024, 8, 135e12, "test"),
    _n("narayanan-39.1b", (48, 8192, 64), dict(tp=8, pp=2, dp=32), 1536, 4, 138e12, "test"),
    _n("narayanan-76.1b", (60, 10240, 80), dict(tp=8, pp=4, dp=32, interleave=3), 1792, 2, 140e12, "test"),
    _n("narayanan-145.6b", (80, 12288, 96), dict(tp=8, pp=8, dp=24, interleave=2), 2304, 2, 148e12, "test"),
    _n("narayanan-310.1b", (96, 16384, 128), dict(tp=8, pp=16, dp=15, interleave=2), 2160, 1, 155e12, "test"),
    _n("narayanan-529.6b", (105, 20480, 128), dict(tp=8, pp=35, dp=9, interleave=3), 2520, 1, 163e12, "test"),
    _n("narayanan-1t", (128, 25600, 160), dict(tp=8, pp=64, dp=6), 3072, 1, 163e12, "test"),
    _mc("mcore-1.7b", (24, 2048, 16), 1, 1, 192, 0.41, "test"),
    _mc("mcore-7.1b", (30, 4096, 32), 2, 1, 192, 0.47, "test"),
    _mc("mcore-16b", (32, 6144, 48), 4, 1, 192, 0.49, "calibrate"),
    _mc("mcore-32b", (48, 7168, 56), 8, 1, 192, 0.46, "calibrate"),
    _mc("mcore-70b", (84, 8192, 64), 8, 2, 384, 0.42, "test"),
    _mc("mcore-119b", (92, 10240, 80), 8, 4, 768, 0.43, "test"),
    _mc("mcore-177b", (96, 12288, 96), 8, 6, 1152, 0.44, "test"),
    _mc("mcore-314b", (96, 16384, 128), 8, 8, 1536, 0.48, "test"),
    _mc("mcore-462b", (112, 18432, 144), 8, 16, 3072, 0.47, "test"),
]
REFERENCE_IDS = {  # rows also in shared/reference (the acceptance set)
    "korthikanti-175b-selective", "korthikanti-175b-full", "korthikanti-22b-selective", "korthikanti-22b-full",
    "korthikanti-530b-selective", "korthikanti-1t-selective", "narayanan-1.7b", "narayanan-18.4b",
    "narayanan-145.6b", "narayanan-1t", "mcore-7.1b", "mcore-70b"}


def gpt_model(layers, hidden, heads, vocab, seq, tied):
    """A GPT block stack (4h GELU MLP, LayerNorm, learned positions) with these sizes."""
    from ..core.catalogue import load_model
    from ..core.specs import Model

    d = load_model("gpt-3-175b").model_dump()
    d.update(name=f"gpt-{layers}x{hidden}", display_name=f"GPT {layers}L×{hidden}", n_layers=layers, d_model=hidden,
             vocab_size=vocab, max_seq_len=max(seq, 2048), tie_embeddings=tied,
             sources={"architecture": "published case inputs"})
    d["attention"].update(n_heads=heads, n_kv_heads=heads, head_dim=hidden // heads)
    d["mlp"].update(d_ff=4 * hidden)
    return Model.model_validate(d)


def eq3_flops(B, s, layers, h, V):
    """Narayanan et al. 2021 eq. 3: F = 96·B·s·l·h²(1 + s/6h + V/16lh) (with recompute)."""
    return 96 * B * s * layers * h**2 * (1 + s / (6 * h) + V / (16 * layers * h))


def measurement(c: Case):
    """The case as a calibrate.Measurement (its published step time)."""
    from ..core.catalogue import load_hardware
    from ..training.layout import Layout
    from ..training.step import training_step
    from .calibrate import Measurement

    m, hw, lay = gpt_model(*c.model), load_hardware(c.hardware), Layout(**c.layout)
    seq = c.model[4]
    if c.kind == "time":
        t = c.published
    elif c.kind == "x_eq3":
        t = eq3_flops(c.global_batch, seq, c.model[0], c.model[1], c.model[3]) / (lay.gpus * c.published)
    else:  # MFU of the bf16 peak, model FLOPs as Megatron counts them (full L×L attention, as ours by default)
        f = training_step(m, hw, lay, global_batch=c.global_batch, micro_batch=c.micro_batch, seq=seq,
                          gpus=lay.gpus, compute_efficiency=0.5, check_memory=False).data["model_flops"]
        t = f / (lay.gpus * hw.peak("bf16") * c.published)
    return Measurement(m, hw, lay, c.global_batch, t, micro_batch=c.micro_batch, seq=seq, recompute=c.recompute,
                       attention=c.attention, tp_comm_overlap=c.tp_comm_overlap, label=c.id,
                       # the Megatron-Core benchmark's DP optimisations (Megatron-LM README, Benchmark Configuration:
                       # --overlap-grad-reduce, --overlap-param-gather), as llmcalc.training.step models them
                       extra={"overlap_param_gather": True} if c.source == MC else {})
