"""Wall time of EVERY README one-liner beside a bare interpreter start, median of N runs each, in one run.

    python benchmarks/bench_cli.py [N] [--markdown] [--no-pyc]

The one-liners are read from README.md's ```bash blocks, as tests/test_readme.py reads them (the dashboard,
shell completion and placeholder paths excepted: ``path/to/config.json`` becomes a shipped test config and
``-o path/to/...`` a temporary folder). Reports numbers and asserts nothing (the goal, issue #13: every
one-liner <= 0.3 s median on the 2-core development machine). Rows are marked ``> 0.3 s`` when over.

llmcalc's modules are byte-compiled first, as an installed llmcalc is (pip compiles at install): where
PYTHONDONTWRITEBYTECODE is set, as on the development machine, no run would write the .pyc files and every
one-liner would compile llmcalc's sources again (~30 ms each). ``--no-pyc`` measures without them.
"""

from __future__ import annotations

import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SKIP = ("llmcalc app", "--install-completion")
GOAL_S = 0.3


def one_liners(readme: str) -> list[str]:
    blocks = re.findall(r"```bash\n(.*?)```", readme, re.S)
    lines = [ln.split("  #")[0].strip() for b in blocks for ln in b.splitlines()]
    return [ln for ln in lines if ln.startswith("llmcalc ") and not any(s in ln for s in SKIP)]


def median_wall_s(cmd: list[str], n: int, fresh: Path | None = None) -> tuple[float, int]:
    """``fresh``: an output folder removed before each run (untimed): `sheet -o` refuses to replace its files."""
    times, rc = [], 0
    for _ in range(n):
        if fresh is not None:
            shutil.rmtree(fresh, ignore_errors=True)
        t = time.perf_counter()
        rc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT).returncode
        times.append(time.perf_counter() - t)
    return statistics.median(times), rc


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    n = int(args[0]) if args else 11
    markdown = "--markdown" in sys.argv
    pyc = "--no-pyc" not in sys.argv
    beside = Path(sys.executable).parent / "llmcalc"  # the venv's console script, not a shell shim
    script = str(beside) if beside.exists() else shutil.which("llmcalc")
    cli = [script] if script else [sys.executable, "-m", "llmcalc"]
    out = Path(tempfile.mkdtemp(prefix="bench-cli-"))
    config = str(ROOT / "tests/data/configs/gpt2/config.json")
    cases: dict[str, list[str]] = {"python -c pass": [sys.executable, "-c", "pass"], "llmcalc --help": [*cli, "--help"]}
    for line in one_liners((ROOT / "README.md").read_text()):
        words = shlex.split(line)[1:]
        words = [config if w == "path/to/config.json" else w for w in words]
        words = [str(out / Path(w).name) if w.startswith(("path/to/", "models/")) and w.endswith((".yaml", "sheets"))
                 else w for w in words]
        if "import" in words[:1]:
            words.append("--force")  # the same output file on every run
        cases[line] = [*cli, *words]
    if pyc:  # compileall writes .pyc files whatever PYTHONDONTWRITEBYTECODE says
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "llmcalc")], check=True,
                       stdout=subprocess.DEVNULL)
    for _ in range(2):  # warm the OS file cache (and the .pyc files of any module compileall did not reach)
        subprocess.run(cases[next(iter(list(cases)[2:]))], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    print(f"median wall time over {n} runs, {script or 'python -m llmcalc'} ({len(cases) - 2} README one-liners"
          f"{'' if pyc else ', llmcalc not byte-compiled'}):")
    rows = []
    for name, cmd in cases.items():
        t, rc = median_wall_s(cmd, n, fresh=out / "sheets" if "sheets" in name else None)
        flag = f"exit {rc}" if rc else ("> 0.3 s" if t > GOAL_S and name.startswith("llmcalc ") else "")
        rows.append((name, t, flag))
        if not markdown:
            print(f"  {t * 1e3:7.0f} ms  {flag:8s} {name}", flush=True)
    over = [r for r in rows[2:] if r[2] == "> 0.3 s"]  # the one-liners (not the two reference rows)
    if markdown:
        print("| one-liner | median |\n|---|---:|")
        for name, t, flag in rows:
            print(f"| `{name}` | {t * 1e3:.0f} ms{' ⚠' if flag else ''} |")
    print(f"{len(rows) - 2 - len(over)} of {len(rows) - 2} README one-liners at or under {GOAL_S} s; "
          f"slowest {max(r[1] for r in rows[2:]) * 1e3:.0f} ms")
    shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
