"""The one-page summary re-uses the calculators' figures (and their derivations) unchanged."""

import json

import pytest
from typer.testing import CliRunner

from llmcalc.cli import app
from llmcalc.core.catalogue import load_hardware, load_model
from llmcalc.inference.serving import serve
from llmcalc.report import summary


def test_summary_figures_are_the_calculators_figures():
    m, h = load_model("llama-3.1-70b"), load_hardware("h100-sxm")
    r = summary(m, h, users=1000, price_usd_per_hour=2.0)
    assert r.value("params/total") == 70_553_706_496  # fact sheet row M8 (= HF implementation count)
    # 20 tokens per parameter (Hoffmann et al. 2022, Table 3)
    assert r.value("chinchilla/size/rule20/tokens") == 20 * 70_553_706_496
    sv = serve(m, h, prompt=1000, output=300, users=1000, price_usd_per_hour=2.0)
    assert r.value("serve/gpus") == sv.value("gpus") and r.value("serve/tp") == sv.value("tp")
    # C = 6·N·D (Kaplan et al. 2020 §2.1), with D the 20x tokens above
    assert r.value("train/model_flops") == pytest.approx(6 * 70_553_706_496 * 20 * 70_553_706_496, rel=1e-12)


def test_summary_cli_json_and_explain():
    runner = CliRunner()
    out = runner.invoke(app, ["summary", "llama-3.1-8b", "--json", "--users", "100"])
    assert out.exit_code == 0, out.output
    d = json.loads(out.output)
    assert d["params/total"] == 8_030_261_248  # Llama-3.1-8B, keras-hub llama3_8b_en
    out = runner.invoke(app, ["summary", "llama-3.1-8b", "--explain", "--users", "100"])
    assert out.exit_code == 0 and "formula:" in out.output and "source:" in out.output


def test_summary_of_a_model_no_single_node_can_hold_falls_back_to_the_serving_planner():
    # DeepSeek-V3 in bf16 is 1.34 TB of weights: no TP degree inside one 8 x 80 GB H100 node holds it, so the
    # summary's serving section comes from plan-serve across nodes instead of failing the whole page.
    from llmcalc.core.catalogue import load_hardware, load_model
    from llmcalc.inference.plan_serve import plan_serve
    from llmcalc.report import summary

    m, hw = load_model("deepseek-v3"), load_hardware("h100-sxm")
    r = summary(m, hw)
    want = plan_serve(m, hw, prompt=1000, output=300, ttft_s=2.0, tpot_s=0.05, users=10_000).data["ranked"][0]
    assert r.value("serve/gpus") == want["gpus"] and want["gpus"] > 8
    assert any("one node cannot hold a replica" in a for a in r.assumptions)
    assert "train/days" in r.keys()  # the other sections are still there
