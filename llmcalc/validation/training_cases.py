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
- MOSAIC: MosaicML llm-foundry scripts/train/benchmarking/README.md (H100 80GB BF16 and A100 80GB tables): MPT
  models (GPT blocks, 4h GELU MLP, tied embeddings, learned positions in these runs, vocab 50432 assumed), FSDP
  FULL_SHARD (ZeRO-3 over every GPU, no TP), FlashAttention (triton), activation checkpointing as listed (full
  recompute), micro-batch × grad-accumulation × GPUs = global batch; MFU counts the full L×L attention (their
  formula n_layers·2·2·d_model·seq²), the same convention as ours. No tolerance is stated: we borrow ±12%.
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
MOSAIC = "MosaicML llm-foundry benchmarking README (MPT)"
A100, H100 = "a100-sxm-80gb", "h100-sxm"


def _k(i, m, lay, gb, mb, rc, t, role, note=""):
    return Case(i, K, A100, (*m, 51200, 2048, True), lay, gb, mb, rc, "unfused", False, t, "time", 0.10, role, note)


def _n(i, m, lay, gb, mb, x, role):
    return Case(i, N, A100, (*m, 51200, 2048, True), lay, gb, mb, "full", "unfused", False, x, "x_eq3", 0.15, role,
                "micro-batch, interleaving: run_table_1.sh")


def _mc(i, m, tp, pp, gb, mfu, role):
    return Case(i, MC, H100, (*m, 131072, 4096, False), dict(tp=tp, pp=pp, dp=48, zero=1, sp=tp > 1), gb, 1,
                "none", "flash", True, mfu, "mfu", 0.12, role, "micro-batch 1, no interleaving assumed")


MPT = {"1b": (24, 2048, 16), "3b": (32, 2560, 20), "7b": (32, 4096, 32), "13b": (40, 5120, 40),
       "30b": (48, 7168, 64), "70b": (80, 8192, 64)}


def _mpt(hw, size, seq, gpus, mb, gb, ckpt, mfu, role):
    return Case(f"mosaic-{'h100' if hw == H100 else 'a100'}-{size}-{seq}-{gpus}gpu", MOSAIC, hw,
                (*MPT[size], 50432, seq, True), dict(dp=gpus, zero=3), gb, mb, "full" if ckpt else "none", "flash",
                False, mfu, "mfu", 0.12, role, "FSDP full shard" + (", activation checkpointing" if ckpt else ""))


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
    _mc("mcore-1.7b", (24, 2048, 16), 1, 1, 192, 0.41, "calibrate"),
    _mc("mcore-7.1b", (30, 4096, 32), 2, 1, 192, 0.47, "test"),
    _mc("mcore-16b", (32, 6144, 48), 4, 1, 192, 0.49, "calibrate"),
    _mc("mcore-32b", (48, 7168, 56), 8, 1, 192, 0.46, "test"),
    _mc("mcore-70b", (84, 8192, 64), 8, 2, 384, 0.42, "calibrate"),
    _mc("mcore-119b", (92, 10240, 80), 8, 4, 768, 0.43, "test"),
    _mc("mcore-177b", (96, 12288, 96), 8, 6, 1152, 0.44, "calibrate"),
    _mc("mcore-314b", (96, 16384, 128), 8, 8, 1536, 0.48, "test"),
    _mc("mcore-462b", (112, 18432, 144), 8, 16, 3072, 0.47, "calibrate"),
    # MosaicML H100 BF16: every second row calibrates H100 (with Megatron-Core's), the others are held out
    _mpt(H100, "7b", 32768, 8, 2, 32, True, 0.3094, "calibrate"),
    _mpt(H100, "1b", 32768, 8, 1, 32, False, 0.3354, "test"),
    _mpt(H100, "7b", 65536, 8, 1, 16, True, 0.2859, "calibrate"),
    _mpt(H100, "3b", 16384, 8, 1, 48, False, 0.3634, "test"),
    _mpt(H100, "7b", 8192, 8, 8, 128, True, 0.3714, "calibrate"),
    _mpt(H100, "7b", 4096, 8, 16, 256, True, 0.4042, "test"),
    _mpt(H100, "13b", 4096, 8, 10, 240, True, 0.416, "calibrate"),
    _mpt(H100, "7b", 2048, 8, 6, 48, False, 0.4644, "test"),
    _mpt(H100, "13b", 2048, 8, 2, 16, False, 0.3979, "calibrate"),
    _mpt(H100, "1b", 2048, 8, 14, 112, False, 0.4182, "test"),
    _mpt(H100, "3b", 2048, 16, 10, 480, False, 0.4373, "calibrate"),
    _mpt(H100, "30b", 2048, 32, 14, 1344, True, 0.4392, "test"),
    _mpt(H100, "70b", 2048, 64, 8, 2048, True, 0.4257, "calibrate"),
    # MosaicML A100 80GB: the same two 32K rows calibrate A100's attention_flash
    _mpt(A100, "7b", 32768, 8, 2, 32, True, 0.4946, "calibrate"),
    _mpt(A100, "1b", 32768, 8, 1, 32, False, 0.5552, "calibrate"),
    _mpt(A100, "7b", 65536, 8, 1, 16, True, 0.4697, "test"),
    _mpt(A100, "3b", 16384, 8, 1, 48, False, 0.5713, "test"),
    _mpt(A100, "7b", 8192, 8, 8, 128, True, 0.5447, "test"),
    _mpt(A100, "13b", 4096, 8, 10, 240, True, 0.5762, "test"),
    _mpt(A100, "7b", 2048, 8, 6, 96, False, 0.6423, "test"),
    _mpt(A100, "3b", 2048, 8, 10, 160, False, 0.6211, "test"),
    _mpt(A100, "30b", 2048, 8, 3, 504, True, 0.553, "test"),
    _mpt(A100, "70b", 2048, 64, 8, 2048, True, 0.5333, "test"),
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
