import json
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"
CONFIGS = DATA / "configs"


@pytest.fixture
def config_dict():
    """A catalogue model's Hugging Face config.json (shipped in tests/data/configs) as a dict."""

    def load(name: str) -> dict:
        return json.loads((CONFIGS / name / "config.json").read_text())

    return load


def one_line_error(args, *needles):
    """Run the CLI with ``args``: it must fail with exit 2 and one plain line (no traceback, no numpy repr)
    containing each of ``needles``."""
    from typer.testing import CliRunner

    from llmcalc.cli import app

    res = CliRunner().invoke(app, args)
    assert res.exit_code == 2, res.output
    out = res.output.strip()
    assert "Traceback" not in out and "\n" not in out and "array(" not in out
    for n in needles:
        assert n in out
    return out
