"""`llmcalc validate`: every published case shipped in llmcalc/validation/cases, at the tolerance its source
states. Cases known to fall outside are xfail(strict=True) with their reason, so one that starts to pass must
be promoted (and one expected inside that falls outside fails here and in CI)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from llmcalc.cli import app
from llmcalc.core.errors import LlmcalcError
from llmcalc.validation.evaluators import CASES_DIR, EVALUATORS
from llmcalc.validation.run import load_cases, run, run_case

runner = CliRunner()
CASES = load_cases()


def _param(c):
    marks = [pytest.mark.xfail(strict=True, reason=c["reason"])] if c["expect"] == "outside" else []
    return pytest.param(c, id=c["id"], marks=marks)


@pytest.mark.parametrize("case", [_param(c) for c in CASES])
def test_published_case(case):
    """Source, published value and tolerance are in the case (cases/*.yaml, each citing its paper)."""
    o = run_case(case)
    assert not o.problem, o.problem
    assert o.inside, f"{o.id}: ours {o.ours:.4g} vs published {o.published:.4g} ({o.error:+.2%}), {o.tolerance}"


def test_every_case_is_computed_by_a_calculator_and_cites_its_source():
    for c in CASES:
        assert c["evaluator"] in EVALUATORS, c["id"]
        src = c["source"]
        assert isinstance(src, dict) and src.get("title") and src.get("url"), c["id"]
        assert c["tolerance_source"].strip(), c["id"]


def test_shipped_inside_the_package():
    """The cases live in the package (the wheel ships llmcalc/ whole), not in the shared reference folder."""
    assert CASES_DIR.parent.name == "validation" and CASES_DIR.parent.parent.name == "llmcalc"
    assert len(list(CASES_DIR.glob("*.yaml"))) >= 5 and len(CASES) >= 40


def test_categories_cover_the_reference_sheets():
    cats = {c["category"] for c in CASES}
    assert {"params", "flops", "chinchilla", "memory", "activations", "kv_cache", "inference_latency",
            "training_step", "mfu", "train_time", "serving", "rl"} <= cats


def _write(tmp_path, body: str):
    (tmp_path / "x.yaml").write_text(body)
    return tmp_path


CASE = """- id: t
  category: params
  quantity: GPT-2 total
  source: {title: test, url: none}
  evaluator: params
  inputs: {model: gpt2, part: total}
  published: PUB
  tolerance: {rel: 0}
  tolerance_source: exact
  expect: EXPECT
"""


def test_verdicts_and_exit_code(tmp_path, monkeypatch):
    import llmcalc.validation.run as run_mod

    # expected inside and inside: exit 0
    d = _write(tmp_path, CASE.replace("PUB", "124439808").replace("EXPECT", "inside"))
    monkeypatch.setattr(run_mod, "CASES_DIR", d)
    res = runner.invoke(app, ["validate"])
    assert res.exit_code == 0 and "1 inside" in res.output, res.output
    # expected inside but off by one parameter with an exact tolerance: exit 1, named
    _write(tmp_path, CASE.replace("PUB", "124439809").replace("EXPECT", "inside"))
    res = runner.invoke(app, ["validate"])
    assert res.exit_code == 1 and "OUTSIDE" in res.output and "1 unexpected failure" in res.output
    # known outside with a reason: visible, exit 0
    _write(tmp_path, CASE.replace("PUB", "124439809").replace("EXPECT", "outside\n  reason: a test reason"))
    res = runner.invoke(app, ["validate", "--json"])
    assert res.exit_code == 0
    d_ = json.loads(res.output)
    assert d_["cases"][0]["verdict"] == "outside (known)" and d_["cases"][0]["reason"] == "a test reason"


def test_malformed_cases_are_rejected(tmp_path):
    for body, msg in ((CASE.replace("  tolerance_source: exact\n", ""), "tolerance_source"),
                      (CASE.replace("EXPECT", "outside"), "with a reason"),
                      (CASE + CASE, "duplicate")):
        (tmp_path / "x.yaml").write_text(body.replace("PUB", "1").replace("EXPECT", "inside"))
        with pytest.raises(LlmcalcError, match=msg):
            load_cases(directory=tmp_path)


def test_category_filter_and_unknown_category():
    r = run("params")
    assert {o.category for o in r["outcomes"]} == {"params"}
    res = runner.invoke(app, ["validate", "--category", "nope"])
    assert res.exit_code == 2 and "categories:" in res.output


def test_exponent_without_sign_is_a_number(tmp_path):
    """YAML 1.1 reads 5.76e23 as a string; the loader makes it a float so cases can be written naturally."""
    (tmp_path / "x.yaml").write_text(CASE.replace("PUB", "1.24439808e8").replace("EXPECT", "inside"))
    assert load_cases(directory=tmp_path)[0]["published"] == 124439808.0
