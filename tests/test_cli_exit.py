"""The console script leaves with os._exit after main() (llmcalc.cli.run, issue #13: Python's own teardown is
20-40 ms of a one-liner). What a user sees must be what Python's normal exit gives: every byte of output, the
exit status, SystemExit's meaning (None: 0, int: itself, anything else: printed, status 1), atexit handlers run."""

from __future__ import annotations

import subprocess
import sys

import pytest


def _py(code: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120)


NORMAL = "import sys\nsys.argv = ['llmcalc', *sys.argv[1:]]\nfrom llmcalc.cli import main\nmain()\n"
FAST = "import sys\nsys.argv = ['llmcalc', *sys.argv[1:]]\nfrom llmcalc.cli import run\nrun()\n"


@pytest.mark.parametrize("argv", [
    ("params", "gpt2", "--json"),
    ("sheet", "all", "deepseek-v3", "-f", "md"),  # bad: needs -o (exit 2, one line on stderr)
    ("validate",),
    ("plan", "gpt-3-175b", "-H", "a100-sxm-80gb", "--gpus", "1024", "--global-batch", "1536", "--json", "--top",
     "200"),  # more than a pipe's buffer
    ("memory", "llama-3.1-8b", "--tp", "0"),
    ("nonsense",),
])
def test_run_prints_and_exits_exactly_as_main_under_pythons_exit(argv):
    a, b = _py(NORMAL, *argv), _py(FAST, *argv)
    assert (b.returncode, b.stdout, b.stderr) == (a.returncode, a.stdout, a.stderr)


def test_a_long_output_is_longer_than_a_pipe_buffer():
    """So the case above checks that os._exit loses nothing still buffered (64 KiB on Linux)."""
    r = _py(FAST, "plan", "gpt-3-175b", "-H", "a100-sxm-80gb", "--gpus", "1024", "--global-batch", "1536", "--json",
            "--top", "200")
    assert len(r.stdout.encode()) > 65_536


@pytest.mark.parametrize("exit_with, status, stderr", [
    ("None", 0, ""), ("0", 0, ""), ("3", 3, ""), ("-1", 255, ""), ("'a message'", 1, "a message\n"),
])
def test_systemexit_codes_mean_what_they_mean_to_python(exit_with, status, stderr):
    code = ("import atexit, sys\nimport llmcalc.cli as cli\n"
            "atexit.register(lambda: print('atexit ran'))\n"
            f"def fake():\n    print('out', end='')\n    raise SystemExit({exit_with})\n"
            "cli.main = fake\ncli.run()\n")
    r = _py(code)
    plain = _py(code.replace("cli.run()", "cli.main()"))
    assert (r.returncode, r.stdout, r.stderr) == (status, "outatexit ran\n", stderr)
    assert (plain.returncode, plain.stdout, plain.stderr) == (r.returncode, r.stdout, r.stderr)


def test_an_unexpected_exception_keeps_pythons_traceback():
    r = _py("import llmcalc.cli as cli\ndef fake():\n    raise RuntimeError('bug')\ncli.main = fake\ncli.run()\n")
    assert r.returncode == 1 and "Traceback" in r.stderr and "RuntimeError: bug" in r.stderr


def test_console_script_and_dash_m_use_run():
    import tomllib
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    scripts = tomllib.loads((root / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["llmcalc"] == "llmcalc.cli:run"
    assert "run()" in (root / "llmcalc/__main__.py").read_text()
