"""Wall time of a CLI one-liner beside a bare interpreter start, median of N runs each.

    python benchmarks/bench_cli.py [N]

Reports numbers; asserts nothing (the goal in issue #2 is a median <= 0.3 s for
`llmcalc params llama-3.1-8b` on the 2-core development machine).
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path


def median_wall_s(cmd: list[str], n: int) -> float:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    # The console script next to this interpreter (a venv's bin/), not a shell shim such as pyenv's, which
    # adds its own start-up; else whatever is on PATH.
    beside = Path(sys.executable).parent / "llmcalc"
    script = str(beside) if beside.exists() else shutil.which("llmcalc")
    cli = [script] if script else [sys.executable, "-m", "llmcalc"]
    cases = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "llmcalc --help": [*cli, "--help"],
        "llmcalc params llama-3.1-8b": [*cli, "params", "llama-3.1-8b"],
        "llmcalc params deepseek-v3 --json": [*cli, "params", "deepseek-v3", "--json"],
    }
    for _ in range(3):  # warm the OS file cache and .pyc files
        subprocess.run(cases["llmcalc params llama-3.1-8b"], stdout=subprocess.DEVNULL)
    print(f"median wall time over {n} runs ({script or 'python -m llmcalc'}):")
    for name, cmd in cases.items():
        print(f"  {name:40s} {median_wall_s(cmd, n) * 1e3:7.1f} ms")


if __name__ == "__main__":
    main()
