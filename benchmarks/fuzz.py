"""A long fuzzing campaign against the promise of issue #13 (for use before a release; CI runs the short
property suite in tests/test_fuzz_*.py instead).

    python benchmarks/fuzz.py [N] [--seed S] [--only cli,api,files,urls]

Generates N inputs (default 50,000) across CLI command lines (in-process, typer's runner), Python API calls,
mutated model/hardware YAML and config.json files, and dashboard URL queries, with the strategies of
tests/fuzzkit.py. Every outcome must be exit 2 with one line naming the input, or exit 0 with finite figures,
non-negative where they cannot be negative. Prints the seed of each part, then every distinct failure
(grouped by its first line) with a reproducer, and a summary line. Exit status 1 if anything broke.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")


def campaign(name: str, strategy, check, n: int, seed: int, failures: dict, counts: Counter) -> None:
    from fuzzkit import Broken
    from hypothesis import HealthCheck, given, settings
    from hypothesis import seed as hseed

    @hseed(seed)
    @settings(max_examples=n, database=None, deadline=None, derandomize=False,
              suppress_health_check=list(HealthCheck), phases=["generate"])
    @given(strategy)
    def run(x):
        counts[name] += 1
        try:
            counts[f"{name}:{check(x)}"] += 1
        except Broken as e:
            failures.setdefault((name, e.signature), str(e))

    run()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("n", nargs="?", type=int, default=50_000)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--only", default="cli,api,files,urls")
    a = ap.parse_args()
    import warnings

    warnings.simplefilter("error", RuntimeWarning)  # as pytest's configuration: a warning is a wrong number
    base = a.seed if a.seed is not None else random.SystemRandom().randrange(2**31)
    parts = a.only.split(",")
    import fuzz_parts  # noqa: F401  (tests/fuzz_parts.py: one (strategy, check) per part)

    weights = {"cli": 0.5, "api": 0.2, "files": 0.2, "urls": 0.1}
    total_w = sum(weights[p] for p in parts)
    failures: dict = {}
    counts: Counter = Counter()
    t0 = time.perf_counter()
    print(f"fuzz campaign: {a.n:,} inputs, base seed {base}", flush=True)
    for i, part in enumerate(parts):
        n = max(1, round(a.n * weights[part] / total_w))
        seed = base + i
        strategy, check = fuzz_parts.PARTS[part]
        t = time.perf_counter()
        campaign(part, strategy(), check, n, seed, failures, counts)
        outcomes = ", ".join(f"{k.split(':')[1]} {v:,}" for k, v in sorted(counts.items()) if k.startswith(part + ":"))
        print(f"  {part:6s} seed {seed}: {counts[part]:,} inputs in {time.perf_counter() - t:.0f} s ({outcomes})",
              flush=True)
    for (part, _key), msg in sorted(failures.items()):
        print(f"\nFAIL [{part}] {msg}")
    total = sum(counts[p] for p in parts)
    print(f"\n{total:,} inputs, {len(failures)} distinct failures, {time.perf_counter() - t0:.0f} s, base seed {base}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
