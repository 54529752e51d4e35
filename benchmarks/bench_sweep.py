"""How many training-memory + step-time evaluations per second one vectorised call reaches.

Builds a ~1e6-point grid of layouts and workloads by numpy broadcasting (tp, pp, dp, micro-batch,
recompute, ZeRO stage, sequence parallelism, global batch, sequence length), evaluates
``training_memory`` and ``training_step`` once each over the whole grid, and prints the rate.
It prints numbers; it does not assert.

    python benchmarks/bench_sweep.py [model] [hardware] [--repeat N] [--flat]

The default grid keeps each axis on its own broadcast dimension, so intermediate arrays that depend
on a few axes stay small; ``--flat`` first materialises every axis as a 1e6-long vector (the rate a
caller gets who passes flat arrays).
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def grid():
    axes = {
        "tp": [1, 2, 4, 8],
        "pp": [1, 2, 4, 8, 16],
        "dp": [1, 2, 4, 8, 16, 32, 64, 128],
        "micro_batch": [1, 2, 4, 8],
        "recompute": [0, 1, 2],
        "zero": [0, 1, 2, 3],
        "sp": [False, True],
        "global_batch": [64, 128, 256, 512, 768, 1024, 1536, 2048, 3072, 4096, 8192],
        "seq": [1024, 2048, 4096, 8192, 16384, 32768],
    }
    n = len(axes)
    shaped = {}
    for i, (k, v) in enumerate(axes.items()):
        shape = [1] * n
        shape[i] = len(v)
        shaped[k] = np.asarray(v).reshape(shape)
    return shaped, int(np.prod([len(v) for v in axes.values()]))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("model", nargs="?", default="llama-3.1-70b")
    ap.add_argument("hardware", nargs="?", default="h100-sxm")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--flat", action="store_true",
                    help="materialise every axis as a full 1-D array first (no broadcasting shortcuts: worst case)")
    args = ap.parse_args()

    from llmcalc.core.catalogue import load_hardware, load_model
    from llmcalc.training.layout import Layout
    from llmcalc.training.memory import training_memory
    from llmcalc.training.step import training_step

    m, hw = load_model(args.model), load_hardware(args.hardware)
    g, n = grid()
    if args.flat:
        g = dict(zip(g, (a.ravel() for a in np.broadcast_arrays(*g.values())), strict=True))
    lay = Layout(tp=g["tp"], pp=g["pp"], dp=g["dp"], sp=g["sp"], zero=g["zero"])
    best_mem = best_step = float("inf")
    for _ in range(args.repeat):
        np.seterr(divide="ignore", invalid="ignore")  # impossible layouts (m = 0) are masked by `valid`
        t0 = time.perf_counter()
        mem = training_memory(m, hw, lay, micro_batch=g["micro_batch"], seq=g["seq"], recompute=g["recompute"],
                              global_batch=g["global_batch"])
        t1 = time.perf_counter()
        st = training_step(m, hw, lay, micro_batch=g["micro_batch"], seq=g["seq"], recompute=g["recompute"],
                           global_batch=g["global_batch"], check_memory=False)  # memory timed above
        t2 = time.perf_counter()
        best_mem, best_step = min(best_mem, t1 - t0), min(best_step, t2 - t1)
    valid = np.broadcast_to(mem.data["valid"] & st.data["valid"], np.shape(st.data["step_time_s"]))
    fits = np.broadcast_to(mem.data["fits"], valid.shape) & valid
    print(f"model {m.display_name} on {hw.display_name}; {'flat' if args.flat else 'broadcast'} grid of {n:,} "
          "layouts × workloads "
          f"({valid.sum():,} valid, {fits.sum():,} of them fit in memory)")
    print(f"training_memory : {best_mem:.3f} s  -> {n / best_mem:,.0f} evaluations/s")
    print(f"training_step   : {best_step:.3f} s  -> {n / best_step:,.0f} evaluations/s")
    print(f"memory + step   : {best_mem + best_step:.3f} s  -> {n / (best_mem + best_step):,.0f} evaluations/s "
          f"(best of {args.repeat})")
    ok = np.where(fits, np.broadcast_to(st.data["mfu"], fits.shape), -1.0)
    i = np.unravel_index(np.argmax(ok), ok.shape)
    pick = {k: np.broadcast_to(v, ok.shape)[i].item() for k, v in g.items()}
    print(f"best predicted MFU that fits: {ok[i]:.1%} at {pick}")


if __name__ == "__main__":
    main()
