"""llmcalc.rl against the published RL cases (llmcalc/validation/cases/rl.yaml) under the shipped RLSettings, and
the least-squares grid that fixed the three rollout/trainer defaults.

    python benchmarks/report_rl.py           # every rl_step row: ours, published, error, band, role
    python benchmarks/report_rl.py --refit   # re-run the calibration grid (a few minutes on 2 cores)

--refit: RLSettings.decode_step_overhead_s (host time per decode step), decode_overhead_per_seq_s (per sequence)
and trainer_efficiency_scale (MoE trainers) on a grid, scored by Σ ln(ours/published)² over the CALIBRATION rows
only (NeMo-RL H100 on-policy and 1-off, AReaL's Sync.AReaL/AReaL ratio); every other row is a test.
"""

from __future__ import annotations

import argparse
import itertools
import math
from dataclasses import replace
from pathlib import Path

import yaml

CASES = Path(__file__).resolve().parents[1] / "llmcalc" / "validation" / "cases" / "rl.yaml"
CALIBRATION = ("rl-nemorl-qwen3-30b-h100-on-policy", "rl-nemorl-qwen3-30b-h100-1off",
               "rl-areal-1p5b-math-async-speedup")
# 3 ms and 0.2/0.25 added (issue #10) when the calibration rows took their recipes' inputs and the best point
# sat on the grid's edge (4 ms, 0.3); an edge optimum is not a fit. 1-2 ms and 50/150 µs added (wave 8) when the
# RL review's fixes (exact order statistics, the async trainer's own clock) put the best point on the 3 ms edge.
GRID = dict(decode_step_overhead_s=(0.001, 0.002, 0.003, 0.004, 0.005, 0.006, 0.007, 0.008),
            decode_overhead_per_seq_s=(50e-6, 75e-6, 100e-6, 125e-6, 150e-6),
            trainer_efficiency_scale=(0.2, 0.25, 0.3, 0.4, 0.5))


def evaluate(settings=None, only=None) -> list[dict]:
    from llmcalc.rl import step
    from llmcalc.validation import evaluators

    rows = [c for c in yaml.safe_load(CASES.read_text()) if c["evaluator"] == "rl_step"]
    old = step.rl_step.__kwdefaults__["settings"]
    if settings is not None:
        step.rl_step.__kwdefaults__["settings"] = settings
    try:
        out = []
        for c in rows:
            if only and c["id"] not in only:
                continue
            ours = evaluators.rl_step(c["inputs"])
            out.append({"id": c["id"], "ours": ours, "published": c["published"], "band": c["tolerance"]["rel"],
                        "role": c.get("role", "test"), "err": ours / c["published"] - 1})
        return out
    finally:
        step.rl_step.__kwdefaults__["settings"] = old


def refit() -> None:
    from llmcalc.rl.phases import DEFAULT_SETTINGS

    scored = []
    for values in itertools.product(*GRID.values()):
        s = replace(DEFAULT_SETTINGS, **dict(zip(GRID, values, strict=True)))
        loss = sum(math.log(1 + r["err"]) ** 2 for r in evaluate(s, CALIBRATION))
        scored.append((loss, values))
        print(f"  {dict(zip(GRID, values, strict=True))}: Σ ln² = {loss:.4f}", flush=True)
    scored.sort()
    print("best:", dict(zip(GRID, scored[0][1], strict=True)), "shipped:",
          {k: getattr(DEFAULT_SETTINGS, k) for k in GRID})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--refit", action="store_true")
    if ap.parse_args().refit:
        refit()
        return
    for r in evaluate():
        verdict = "inside" if abs(r["err"]) <= r["band"] else "OUTSIDE"
        print(f"{r['id']:46s} {r['ours']:9.4g} {r['published']:9.4g} {r['err']:+7.1%}  ±{r['band']:.0%}  "
              f"{verdict:7s} {r['role']}")


if __name__ == "__main__":
    main()
