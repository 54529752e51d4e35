"""The README's examples stay true: every one-liner runs, and the Python block executes."""

import re
import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from llmcalc.cli import app

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()
SKIP = ("llmcalc app", "--install-completion", "path/to/")


def _one_liners() -> list[str]:
    blocks = re.findall(r"```bash\n(.*?)```", README, re.S)
    lines = [ln.split("#")[0].strip() for b in blocks for ln in b.splitlines()]
    return [ln for ln in lines if ln.startswith("llmcalc ") and not any(s in ln for s in SKIP)]


@pytest.mark.parametrize("line", _one_liners())
def test_readme_one_liner_runs(line):
    r = CliRunner().invoke(app, shlex.split(line)[1:])
    assert r.exit_code == 0, f"{line}\n{r.output}"


def test_readme_python_block_runs():
    code = re.search(r"```python\n(.*?)```", README, re.S).group(1)
    exec(compile(code, "README.md", "exec"), {})


@pytest.mark.parametrize("line", [ln for ln in _one_liners()
                                  if ln.split()[1] not in ("list", "show", "notation", "import")])
def test_readme_one_liner_explains_itself_and_prints_json(line):
    """Every calculator one-liner also answers --explain (formula, values, source) and --json (valid JSON)."""
    import json

    args = [a for a in shlex.split(line)[1:] if a not in ("--json", "--explain")]
    r = CliRunner().invoke(app, [*args, "--explain"])
    assert r.exit_code == 0 and "formula:" in r.output and "source:" in r.output, f"{line}\n{r.output[-500:]}"
    r = CliRunner().invoke(app, [*args, "--json"])
    assert r.exit_code == 0, r.output
    json.loads(r.output)
