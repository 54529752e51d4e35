"""Thin wrapper: the published cases now ship inside the package (llmcalc/validation/cases/*.yaml) and run
with ``llmcalc validate``; this script runs the same and reports the wall time (the issue's budget is
< 10 s on the 2-core dev machine).

    python benchmarks/validate.py [--category training_step]
"""

from __future__ import annotations

import subprocess
import sys
import time

if __name__ == "__main__":
    t0 = time.perf_counter()
    rc = subprocess.call([sys.executable, "-m", "llmcalc", "validate", *sys.argv[1:]])
    print(f"wall time {time.perf_counter() - t0:.2f} s (whole process, imports included)")
    sys.exit(rc)
