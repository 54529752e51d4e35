"""Published training layouts vs the planner: per case, the published layout's predicted throughput
against the case's band, its rank among every layout that fits, and how the planner's winner differs.

    python benchmarks/report_plan.py

Cases, their inputs and which is calibration vs test: benchmarks/plan_cases.py. What a source does not
state is left free (the planner's best value for it is used and listed under "free").
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from plan_cases import CASES, run_case  # noqa: E402

UNITS = {"hfu_tflops": "TFLOP/s/GPU (incl. recompute)", "mfu_tflops": "model TFLOP/s/GPU", "mfu": "MFU",
         "step_s": "s/step", "gpu_hours_per_T": "GPU-h per 1T tokens"}


def fmt(metric: str, v: float) -> str:
    if metric == "mfu":
        return f"{100 * v:.1f}%"
    if metric == "gpu_hours_per_T":
        return f"{v / 1e3:.0f}K"
    return f"{v:.3g}"


def main() -> None:
    bands = 0
    for c in CASES:
        r = run_case(c)
        tag = " [CALIBRATION case]" if c.calibration else ""
        print(f"\n{c.id}{tag}: {r['model']} on {c.gpus} × {r['hardware']}, global batch {c.global_batch} × {c.seq}")
        raw, div, fit = r["space"]
        print(f"  space: {raw:,} raw, {div:,} divide, {fit:,} fit")
        if not r["published_fits"]:
            print("  published layout does NOT fit in memory under our model")
            continue
        p, w = r["published"], r["winner"]
        tol = f"±{c.tolerance * 100:.0f} points" if c.metric == "mfu" else f"±{c.tolerance * 100:.0f}%"
        bands += r["in_band"]
        print(f"  published: {p['layout']}  (free, chosen by the planner: {', '.join(r['free']) or 'none'})")
        print(f"    predicted {fmt(c.metric, r['predicted'])} vs reported {fmt(c.metric, c.reported)} "
              f"{UNITS[c.metric]} ({tol}): {'IN band' if r['in_band'] else 'OUT of band'}; "
              f"memory {p['memory_bytes'] / 2**30:.1f} GiB/GPU")
        print(f"    rank {r['rank']:,} of {r['of']:,} that fit; winner predicted {100 * r['slower_than_winner']:.1f}% "
              f"faster")
        print(f"  winner:    {w['layout']}  ({fmt(c.metric, r['winner_predicted'])})")
        print("    differs in: " + (", ".join(f"{k} {a}→{b}" for k, (a, b) in r["differs"].items()) or "nothing"))
        if c.note:
            print(f"  note: {c.note}")
    print(f"\n{bands} of {len(CASES)} published layouts predicted inside their band")


if __name__ == "__main__":
    main()
