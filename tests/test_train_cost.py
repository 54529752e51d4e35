"""Training FLOPs, time, cost and utilisation against published runs (each with source and tolerance)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from llmcalc.cli import app
from llmcalc.core.catalogue import load_hardware, load_model
from llmcalc.core.errors import LlmcalcError
from llmcalc.training.cost import training_cost

runner = CliRunner()


def test_narayanan_gpt3_34_days():
    """Narayanan et al. 2021 §5.1: P = 175B, T = 300B tokens, n = 1024 A100, X = 140 TFLOP/s per GPU,
    8TP/(nX) -> 34 days (33.9 unrounded)."""
    r = training_cost(params=175e9, tokens=300e9, gpus=1024, achieved_flops_per_s=140e12, flops_per_token_factor=8)
    assert r.data["days"] == pytest.approx(34, abs=0.5)
    assert r.data["days"] == pytest.approx(8 * 175e9 * 300e9 / (1024 * 140e12) / 86400, rel=1e-12)
    # Without recompute (6TP/(nX)) the same X gives 25.4 days: the factor must match how X was measured.
    r6 = training_cost(params=175e9, tokens=300e9, gpus=1024, achieved_flops_per_s=140e12, flops_per_token_factor=6)
    assert r6.data["days"] == pytest.approx(25.4, abs=0.1)


def test_narayanan_1t_84_days():
    """Same paragraph: 1T params, 450B tokens, 3072 GPUs, 163 TFLOP/s -> 84 days (formula 83.2); 1.5%."""
    r = training_cost(params=1e12, tokens=450e9, gpus=3072, achieved_flops_per_s=163e12, recompute="full")
    assert r.data["days"] == pytest.approx(84, rel=0.015)


def test_llama3_405b_training_flops():
    """Llama 3 paper §3.3: 405B params on 15.6T tokens, 3.8e25 FLOPs (6·N·D); within 2%."""
    r = training_cost(load_model("llama-3.1-405b"), tokens=15.6e12)
    assert r.data["model_flops"] == pytest.approx(3.8e25, rel=0.02)


def test_gpt3_table_d1_total():
    """Brown et al. 2020 Table D.1: 3.14e23 FLOPs for GPT-3 175B on 300B tokens; within 0.5%."""
    r = training_cost(load_model("gpt-3-175b"), tokens=300e9)
    assert r.data["model_flops"] == pytest.approx(3.14e23, rel=0.005)


def test_korthikanti_table5_mfu_from_step_time():
    """Korthikanti et al. 2022 Table 5: GPT-3 175B (V = 51200, s = 2048), 64 A100 (312 TFLOP/s), global
    batch 64, 13.75 s per iteration -> MFU 51.4% (eq. 7 model FLOPs). Our exact count; 0.5 points."""
    m = load_model("gpt-3-175b").model_copy(update={"vocab_size": 51200})
    r = training_cost(m, tokens=300e9, hardware=load_hardware("a100-sxm-80gb"), gpus=64, exact_seq=2048,
                      step_time_s=13.75, batch_tokens=64 * 2048, recompute="selective")
    assert r.data["achieved_mfu"] == pytest.approx(0.514, abs=0.005)
    # Full recompute (18.13 s per iteration): MFU 39% (the case's derived check).
    r = training_cost(m, tokens=300e9, hardware=load_hardware("a100-sxm-80gb"), gpus=64, exact_seq=2048,
                      step_time_s=18.13, batch_tokens=64 * 2048, recompute="full")
    assert r.data["achieved_mfu"] == pytest.approx(0.39, abs=0.005)
    assert r.data["achieved_hfu"] > r.data["achieved_mfu"]


def test_palm_540b_mfu():
    """Chowdhery et al. 2022 §4.1: 238.3K tokens/s on 6144 TPU v4 chips (275 TFLOP/s), N = 540.35B ->
    MFU 45.7% without attention FLOPs (6N per token); 0.1 point."""
    r = training_cost(params=540.35e9, tokens=780e9, hardware=load_hardware("tpu-v4"), gpus=6144, step_time_s=1.0,
                      batch_tokens=238.3e3)
    assert r.data["achieved_mfu"] == pytest.approx(0.457, abs=0.001)


def test_time_cost_and_inverse_forms_agree():
    """Definitions: time = 6NT / (n · MFU · peak); GPU-hours = n · time; cost = GPU-hours x price; the GPUs
    needed for the resulting time is n again."""
    h = load_hardware("h100-sxm")
    r = training_cost(params=7e9, tokens=2e12, hardware=h, gpus=512, mfu=0.5, price_usd_per_hour=2.0)
    t = 6 * 7e9 * 2e12 / (512 * 0.5 * h.peak("bf16"))
    assert r.data["time_s"] == pytest.approx(t, rel=1e-12)
    assert r.data["gpu_hours"] == pytest.approx(512 * t / 3600, rel=1e-12)
    assert r.data["cost_usd"] == pytest.approx(2.0 * 512 * t / 3600, rel=1e-12)
    back = training_cost(params=7e9, tokens=2e12, hardware=h, mfu=0.5, days=r.data["days"] * 1.000001)
    assert back.data["gpus_needed"] == 512
    assert r.value("mfu") == pytest.approx(0.5)


def test_sweep_over_gpus():
    r = training_cost(params=7e9, tokens=2e12, hardware=load_hardware("h100-sxm"), gpus=np.array([256, 512, 1024]))
    assert np.allclose(r.data["days"][0] / r.data["days"], [1, 2, 4])


@pytest.mark.parametrize("kwargs, match", [
    ({"params": 7e9, "tokens": 1e12, "flops_per_token_factor": 7}, "--flops-per-token-factor"),
    ({"params": 7e9, "tokens": 1e12, "gpus": 8}, "--hardware"),
    ({"params": 7e9, "tokens": 1e12, "gpus": 8, "hardware": "h100-sxm", "mfu": 1.5}, "--mfu"),
    ({"params": 7e9, "tokens": -1.0}, "--tokens"),
    ({"params": 7e9, "tokens": 1e12, "hardware": "h100-sxm", "gpus": 8, "step_time_s": 2.0}, "--batch-tokens"),
])
def test_user_errors(kwargs, match):
    if "hardware" in kwargs:
        kwargs["hardware"] = load_hardware(kwargs["hardware"])
    with pytest.raises(LlmcalcError, match=match):
        training_cost(**kwargs)


# ---------------------------------------------------------------- CLI


def test_cli_narayanan_and_llama3():
    res = runner.invoke(app, ["train", "gpt-3-175b", "--tokens", "300B", "--gpus", "1024", "--achieved-tflops",
                              "140", "--flops-per-token-factor", "8", "-H", "a100-sxm-80gb", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["days"] == pytest.approx(34, abs=0.5)  # Narayanan et al. 2021 §5.1
    res = runner.invoke(app, ["train", "llama-3.1-405b", "--tokens", "15.6T", "--gpus", "16384", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["model_flops"] == pytest.approx(3.8e25, rel=0.02)  # Llama 3 §3.3


def test_cli_inverse_and_step_time():
    res = runner.invoke(app, ["train", "--params", "70B", "--tokens", "1.4T", "--days", "30", "--mfu", "0.45"])
    assert res.exit_code == 0 and "GPUs needed" in res.output
    res = runner.invoke(app, ["train", "llama-3.1-8b", "--tokens", "1T", "--gpus", "8", "--step-time", "10 s",
                              "--batch-tokens", "1M", "--exact", "--seq", "4096", "--price", "$2.5/h", "--json"])
    assert res.exit_code == 0, res.output
    d = json.loads(res.output)
    assert 0 < d["achieved_mfu"] < 1 and d["price_usd_per_hour"] == pytest.approx(2.5)
    assert "exact" in d["flops_basis"]


def test_cli_errors_exit_2():
    for args in (["train", "--tokens", "1T"], ["train", "gpt2", "--tokens", "lots"],
                 ["train", "--params", "1B", "--tokens", "1T", "--exact"]):
        res = runner.invoke(app, args)
        assert res.exit_code == 2 and "Traceback" not in res.output, args


def test_cli_achieved_tflops_help_reproduces_narayanan():
    """Narayanan et al. 2021 §5.1: GPT-3 175B, 300B tokens, 1024 A100s at X = 140 TFLOP/s counting recompute
    -> 34 days (8TP/(nX)). Following the --achieved-tflops help (add --recompute full) must give 34 days; without
    it the output must say which FLOPs X was compared with (6·N·T gives 25.4 days)."""
    base = ["train", "gpt-3-175b", "--tokens", "300B", "--gpus", "1024", "--achieved-tflops", "140"]
    help_text = "".join(runner.invoke(app, ["train", "--help"]).output.replace("│", "").split())  # unwrap
    assert "--recomputefull(8·N·T)whenXcountsrecompute" in help_text
    res = runner.invoke(app, [*base, "--recompute", "full", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["days"] == pytest.approx(34, abs=0.5)
    res = runner.invoke(app, base)
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())
    assert "X is compared with hardware FLOPs = 6·N per token" in text and "--recompute full" in text


def test_measured_and_assumed_mfu_rows_have_distinct_labels():
    r = training_cost(params=8e9, tokens=1e12, hardware=load_hardware("h100-sxm"), gpus=8, step_time_s=10.0,
                      batch_tokens=1e6)
    labels = [f.name for f in r.figures if f.key.startswith("mfu")]
    assert len(labels) == len(set(labels)) == 2 and any(lb.startswith("achieved MFU") for lb in labels)


@pytest.mark.parametrize("kwargs, match", [
    ({"days": float("nan")}, "--days expects a finite number"),
    ({"gpus": 8, "price_usd_per_hour": -1.0}, "--price"),
    ({"gpus": 8, "mfu": float("nan")}, "--mfu"),
    ({"gpus": 8, "achieved_flops_per_s": float("inf")}, "--achieved-tflops"),
    ({"gpus": np.array([8.0, np.nan])}, "--gpus"),
])
def test_non_finite_and_negative_inputs_are_user_errors(kwargs, match):
    with pytest.raises(LlmcalcError, match=match):
        training_cost(params=7e9, tokens=1e12, hardware=load_hardware("h100-sxm"), **kwargs)


def test_a_zero_price_is_allowed():
    r = training_cost(params=7e9, tokens=1e12, hardware=load_hardware("h100-sxm"), gpus=8, price_usd_per_hour=0.0)
    assert r.data["cost_usd"] == 0


def test_train_beyond_a_scale_up_domain_without_a_scale_out_link_says_so():
    # The MI300X entry records no scale-out link (unverified NICs): `step`/`plan` refuse > 8 GPUs; `train` still
    # answers from FLOPs and an MFU, but must say that it assumed a link the catalogue does not have.
    from llmcalc.core.catalogue import load_hardware, load_model
    from llmcalc.training.cost import training_cost

    m, hw = load_model("llama-3.1-70b"), load_hardware("mi300x")
    assert hw.scale_out is None and hw.scale_up.domain_size == 8
    big = training_cost(m, 1e12, hw, 1024, mfu=0.4)
    small = training_cost(m, 1e12, hw, 8, mfu=0.4)
    assert any("no scale-out link" in a for a in big.assumptions)
    assert not any("no scale-out link" in a for a in small.assumptions)
