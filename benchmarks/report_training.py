"""Predicted vs published training step time and utilization (Narayanan et al. 2021 Table 1,
Korthikanti et al. 2022 Table 5), for a stated compute efficiency.

    python benchmarks/report_training.py [--compute-efficiency 0.62]

The compute efficiency is an assumption (fraction of the A100's 312 TFLOP/s bf16 peak that a whole
transformer layer's kernels reach, matmuls and elementwise together), the same for every row, not fitted
per row. Layout, batch and recompute are the published ones; what a row's source does not state
(micro-batch, interleaving) is marked as assumed. Cross-node links are the A100 catalogue entry's
200 Gb/s HDR InfiniBand per GPU (Narayanan et al. 2021 §5: Selene's eight HDR HCAs per node).
"""

from __future__ import annotations

import argparse

PEAK_A100 = 312e12


def gpt_block(layers: int, hidden: int, heads: int, vocab: int = 51200, seq: int = 2048):
    """A GPT-3-style model (4h GELU MLP, LayerNorm, learned positions, tied embeddings) with these sizes."""
    from llmcalc.core.catalogue import load_model
    from llmcalc.core.specs import Model

    d = load_model("gpt-3-175b").model_dump()
    d.update(name=f"gpt-{layers}x{hidden}", display_name=f"GPT {layers}L×{hidden}", n_layers=layers,
             d_model=hidden, vocab_size=vocab, max_seq_len=seq, sources={"architecture": "published case inputs"})
    d["attention"].update(n_heads=heads, n_kv_heads=heads, head_dim=hidden // heads)
    d["mlp"].update(d_ff=4 * hidden)
    return Model.model_validate(d)


# (case id, model args, layout kwargs, workload, published step time (s), published utilization, its kind, note)
CASES = [
    ("korthikanti2022-175b selective+SP", (96, 12288, 96), dict(tp=8, pp=8, dp=1, sp=True, interleave=3),
     dict(global_batch=64, micro_batch=1, recompute="selective"), 13.75, 0.514, "mfu", "Table 3/5"),
    ("korthikanti2022-175b full recompute", (96, 12288, 96), dict(tp=8, pp=8, dp=1, interleave=3),
     dict(global_batch=64, micro_batch=1, recompute="full"), 18.13, None, "mfu", "Table 5; SP off assumed"),
    ("korthikanti2022-22b selective+SP", (48, 6144, 64), dict(tp=8, pp=1, dp=1, sp=True),
     dict(global_batch=4, micro_batch=4, recompute="selective"), 1.10, 0.415, "mfu", "Table 5"),
    ("korthikanti2022-530b selective+SP", (105, 20480, 128), dict(tp=8, pp=35, dp=1, sp=True),
     dict(global_batch=280, micro_batch=1, recompute="selective"), 37.83, 0.560, "mfu",
     "Table 5; micro-batch 1, no interleaving assumed"),
    ("korthikanti2022-1t selective+SP", (128, 25600, 160), dict(tp=8, pp=64, dp=1, sp=True),
     dict(global_batch=512, micro_batch=1, recompute="selective"), 71.49, 0.563, "mfu",
     "Table 5; micro-batch 1, no interleaving assumed"),
    ("narayanan2021-1t 3072 GPUs", (128, 25600, 160), dict(tp=8, pp=64, dp=6),
     dict(global_batch=3072, micro_batch=1, recompute="full"), None, 0.52, "hfu",
     "Table 1 (163 TFLOP/s = 52% incl. recompute); micro-batch 1, no interleaving assumed"),
]


def narayanan_eq3_flops(B, s, layers, h, V):
    """Narayanan et al. 2021 eq. 3: F = 96·B·s·l·h²(1 + s/6h + V/16lh) (with recompute)."""
    return 96 * B * s * layers * h**2 * (1 + s / (6 * h) + V / (16 * layers * h))


def evaluate(case, compute_efficiency: float):
    from llmcalc.core.catalogue import load_hardware
    from llmcalc.training.layout import Layout
    from llmcalc.training.step import training_step

    cid, margs, lay, work, t_pub, u_pub, kind, note = case
    m = gpt_block(*margs)
    lay = Layout(**lay)
    r = training_step(m, load_hardware("a100-sxm-80gb"), lay, seq=2048, gpus=lay.gpus,
                      compute_efficiency=compute_efficiency, **work)
    if t_pub is None:  # Narayanan reports FLOP/s per GPU; its step time follows from eq. 3
        t_pub = narayanan_eq3_flops(work["global_batch"], 2048, margs[0], margs[1], 51200) / (
            lay.gpus * 163e12)
    return {"case": cid, "note": note, "predicted_s": r.data["step_time_s"], "published_s": t_pub,
            "error": r.data["step_time_s"] / t_pub - 1, "kind": kind, "predicted_util": r.data[kind],
            "published_util": u_pub, "mfu": r.data["mfu"], "hfu": r.data["hfu"]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--compute-efficiency", type=float, default=0.62)
    args = ap.parse_args()
    print(f"compute efficiency assumed: {args.compute_efficiency:g} of 312 TFLOP/s (A100 bf16 dense)")
    print("step model: slowest pipeline stage (L/p layers, + the LM head on the last) × (1 + bubble) "
          "+ exposed communication (llmcalc.training.step)")
    print(f"{'case':40s} {'pred s':>8s} {'pub s':>8s} {'error':>7s}   {'util':>4s} {'pred':>6s} {'pub':>6s}  note")
    for case in CASES:
        e = evaluate(case, args.compute_efficiency)
        pub = "-" if e["published_util"] is None else f"{e['published_util']:.1%}"
        print(f"{e['case']:40s} {e['predicted_s']:8.2f} {e['published_s']:8.2f} {e['error']:+7.1%}   "
              f"{e['kind']:>4s} {e['predicted_util']:6.1%} {pub:>6s}  {e['note']}")


if __name__ == "__main__":
    main()
