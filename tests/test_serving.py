"""Continuous batching (Little's law) and serving capacity."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from llmcalc.batching import continuous_batching, request_time
from llmcalc.catalogue import load_hardware, load_model
from llmcalc.cli import app
from llmcalc.errors import LlmcalcError
from llmcalc.inference import Deployment
from llmcalc.serving import serve

runner = CliRunner()


def dep8b():
    return Deployment(load_model("llama-3.1-8b"), load_hardware("h100-sxm"))


@pytest.mark.parametrize("qps", [0.5, 3.0, 10.0])
def test_littles_law_holds_in_steady_state(qps):
    # Little 1961: mean number in system = arrival rate x mean time in system
    r = continuous_batching(dep8b(), qps, 1000, 200)
    assert not r.data["overloaded"]
    assert r.data["concurrency"] == pytest.approx(qps * r.data["request_s"], rel=1e-3)
    assert r.data["tokens_per_s"] == pytest.approx(qps * 200)


def test_request_time_solves_the_prefill_stretched_model():
    # T = t_p + (O-1) t_d / (1 - u) with u = N t_p / T, checked by substitution (independent of the closed form)
    t_p, t_d, o = 0.05, 0.01, 300
    for n in (0.5, 4.0, 40.0):
        t = request_time(t_p, t_d, o, n)
        assert t == pytest.approx(t_p + (o - 1) * t_d / (1 - n * t_p / t), rel=1e-9)
    assert request_time(t_p, t_d, 1, 1.0) == pytest.approx(t_p)  # one token: just the prefill
    assert np.all(np.diff(request_time(t_p, t_d, o, np.array([1.0, 2.0, 8.0]))) > 0)


def test_overload_is_reported_at_the_kv_cap():
    r = continuous_batching(dep8b(), 1000.0, 1000, 200)
    assert r.data["overloaded"] and r.data["concurrency"] == r.data["kv_cap"]
    assert r.data["tokens_per_s"] == pytest.approx(r.data["qps_max"] * 200)


def test_serve_10k_users_on_h100():
    m, h = load_model("llama-3.1-70b"), load_hardware("h100-sxm")
    r = serve(m, h, users=10_000, prompt=1000, output=300, ttft_s=2.0, tpot_s=0.05)
    d = r.data
    assert d["qps"] == pytest.approx(10_000 / 60)
    assert d["ttft_s"] <= 2.0 and d["tpot_s"] <= 0.05
    assert d["replicas"] * d["qps_per_replica"] >= d["qps"]
    assert (d["replicas"] - 1) * d["qps_per_replica"] < d["qps"]
    assert d["gpus"] == d["replicas"] * d["tp"]
    # cost = GPUs x $/h / (3600 s x tokens/s) x 1e6, price from the catalogue (Google Cloud list, Feb 2025)
    assert d["usd_per_million_output_tokens"] == pytest.approx(d["gpus"] * 10.8 / (3600 * d["qps"] * 300) * 1e6)
    assert d["tp"] >= 2  # 141 GB of bf16 weights cannot fit one 80 GB GPU
    assert any("tp 1" in a for a in r.assumptions)


def test_serve_errors():
    m, h = load_model("llama-3.1-70b"), load_hardware("h100-sxm")
    with pytest.raises(LlmcalcError, match="exactly one of --users"):
        serve(m, h, prompt=100, output=100)
    with pytest.raises(LlmcalcError, match="no TP degree"):
        serve(m, h, qps=1, prompt=1000, output=100, tpot_s=1e-4)


def test_cli_serve_prints_assumptions():
    res = runner.invoke(app, ["serve", "llama-3.1-70b", "-H", "h100-sxm", "--users", "10k", "--prompt", "1000",
                              "--output", "300", "--ttft", "2s", "--tpot", "50ms"])
    assert res.exit_code == 0, res.output
    assert "GPUs in total" in res.output and "targets: TTFT <= 2 s, TPOT <= 50 ms" in res.output
    res = runner.invoke(app, ["serve", "llama-3.1-8b", "--qps", "5", "--price", "2.49", "--json"])
    assert json.loads(res.output)["price_usd_per_hour"] == 2.49
    res = runner.invoke(app, ["batching", "llama-3.1-8b", "--qps", "5", "--json"])
    assert res.exit_code == 0 and json.loads(res.output)["kv_cap"] > 0
