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


# ---------------------------------------------------------------- hypothesis: one fixed budget for CI (issue #13)
try:
    from hypothesis import HealthCheck, settings

    # "ci": the same examples on every run (derandomized, no example database), so CI is reproducible and its
    # time bounded; HYPOTHESIS_PROFILE=dev explores new examples each run. benchmarks/fuzz.py runs long campaigns.
    settings.register_profile("ci", derandomize=True, database=None, deadline=None, print_blob=True,
                              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    settings.register_profile("dev", deadline=None, suppress_health_check=[HealthCheck.too_slow])
    import os as _os

    settings.load_profile(_os.environ.get("HYPOTHESIS_PROFILE", "ci"))
except ImportError:  # pragma: no cover - hypothesis is in the test extra
    pass
