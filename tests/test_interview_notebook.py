"""examples/interview_questions.ipynb (issue #14): every code cell runs (each asserts the gap between the
hand estimate and the engine), and the notebook and its Markdown render hold the outputs of this engine."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _builder():
    spec = importlib.util.spec_from_file_location("build_interview_questions",
                                                  EXAMPLES / "build_interview_questions.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _without_outputs(md: str) -> str:
    return re.sub(r"```text\n.*?```\n", "", md, flags=re.S)


def test_cells_run_and_the_committed_renders_hold_these_cells():
    """The cells run against this engine (each asserts the gap between hand and engine), and the committed
    notebook and Markdown hold exactly these cells AND their outputs: a number in them cannot drift from the
    engine (`python examples/build_interview_questions.py` rebuilds both after an engine change)."""
    b = _builder()
    cells = b.execute()  # runs every code cell; each ends in an assert on engine / hand
    assert sum(k == "code" for k, _, _ in cells) >= 11
    stale = "stale: run `python examples/build_interview_questions.py` and commit the result"
    md = (EXAMPLES / "interview_questions.md").read_text()
    assert _without_outputs(md) == _without_outputs(b.markdown(cells)), stale
    assert md == b.markdown(cells), stale + " (printed outputs differ)"
    nb = json.loads((EXAMPLES / "interview_questions.ipynb").read_text())
    assert nb == json.loads(b.notebook(cells)), stale


def test_every_canonical_question_has_a_section():
    md = (EXAMPLES / "interview_questions.md").read_text()
    for words in ("tokens", "H100s and days", "one transformer block", "64 H100s", "ZeRO-3", "Prefill vs decode",
                  "10,000 users", "RL post-training", "Speculative decoding", "GQA vs MLA"):
        assert words in md, words
    assert md.count("**By hand.**") + md.count("**By hand** (") == 10
