"""Speed of the training planner: GPT-3 175B on 4096 A100s, the full space (every dimension the planner
searches, every micro-batch size), one core.

    taskset -c 0 python benchmarks/bench_plan.py [--repeat 3] [--global-batch 1536]

Prints the raw combination count (Cartesian product of every dimension's own values), what is left after
divisibility and after memory pruning, wall time of the whole search (enumerate + memory for every divisible
candidate + a step lower bound for every one that fits + the exact step for every one that can still appear in the
output, ranked; llmcalc.training.search), candidates/s and peak Python memory (tracemalloc) and max RSS. For
scale: Calculon (Isaev et al. 2023) enumerates 7,474,752 raw combinations for this case at ~150 layouts per second
per core (the issue's figures). Wall-clock numbers depend on machine load.
"""

from __future__ import annotations

import argparse
import resource
import time
import tracemalloc


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--global-batch", type=int, default=1536)
    ap.add_argument("--gpus", type=int, default=4096)
    a = ap.parse_args()
    from llmcalc.core.catalogue import load_hardware, load_model
    from llmcalc.training.plan import plan_training

    m, hw = load_model("gpt-3-175b"), load_hardware("a100-sxm-80gb")
    kw = dict(gpus=a.gpus, global_batch=a.global_batch, seq=2048)
    plan_training(m, hw, **kw)  # warm imports and formula caches
    times = []
    for _ in range(a.repeat):
        t0 = time.perf_counter()
        r = plan_training(m, hw, **kw)
        times.append(time.perf_counter() - t0)
    tracemalloc.start()
    plan_training(m, hw, **kw)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    d = r.data
    best = min(times)
    print(f"GPT-3 175B on {a.gpus} x A100 80GB, global batch {a.global_batch} x 2048")
    print(f"raw combinations:        {d['raw_combinations']:,}  ({d['per_dimension']})")
    print(f"after divisibility:      {d['divisible']:,}  (memory evaluated for each)")
    print(f"after memory pruning:    {d['fit']:,}  (step bound for each, exact step where it can be shown)")
    print(f"wall time (best of {a.repeat}):  {best:.3f} s   (all: {', '.join(f'{t:.3f}' for t in times)})")
    print(f"candidates/s:            {d['divisible'] / best:,.0f} divisible layouts/s "
          f"({d['raw_combinations'] / best:,.0f} raw combinations/s)")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak traced memory:      {peak / 2**20:.0f} MiB; max RSS {rss:.0f} MiB")
    print(f"best: {d['best']['layout']}  step {d['best']['step_time_s']:.2f} s  MFU {100 * d['best']['mfu']:.1f}%")
    print("Calculon: 7,474,752 raw combinations at ~150 layouts/s/core (~12 core-hours)")


if __name__ == "__main__":
    main()
