"""Continuous batching (Little's law) and serving capacity."""

import json

import numpy as np
import pytest
from conftest import one_line_error
from typer.testing import CliRunner

from llmcalc.cli import app
from llmcalc.core.catalogue import load_hardware, load_model
from llmcalc.core.errors import LlmcalcError
from llmcalc.inference.batching import continuous_batching, request_time
from llmcalc.inference.latency import Deployment
from llmcalc.inference.serving import serve

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


@pytest.mark.parametrize("args,needles", [
    (["--qps", "0"], ["--qps", "got 0"]),
    (["--users", "0"], ["--users", "got 0"]),
    (["--users", "10", "--requests-per-user-per-min", "0"], ["--requests-per-user-per-min", "got 0"]),
    (["--qps", "nan"], ["--qps", "got nan"]),
    (["--qps", "inf"], ["--qps", "got inf"]),
    (["--users", "-5"], ["--users", "got -5"]),
    (["--qps", "-1"], ["--qps", "got -1"]),
    (["--qps", "1", "--price", "-3"], ["--price", "got -3"]),
    (["--qps", "1", "--ttft", "0"], ["--ttft", "got 0"]),
    (["--qps", "1", "--prompt", "0"], ["--prompt", "got 0"]),
    (["--users", "nan"], ["--users", "nan"]),
])
def test_serve_rejects_bad_numbers_in_one_line(args, needles):
    one_line_error(["serve", "llama-3.1-8b", *args], *needles)


@pytest.mark.parametrize("args,needles", [
    (["--qps", "nan"], ["--qps", "got nan"]),
    (["--qps", "0"], ["--qps", "got 0"]),
    (["--qps", "1", "--prompt", "0"], ["--prompt", "got 0"]),  # was reported as --seq
    (["--qps", "1", "--output", "0"], ["--output", "got 0"]),
])
def test_batching_rejects_bad_numbers_in_one_line(args, needles):
    out = one_line_error(["batching", "llama-3.1-8b", *args], *needles)
    assert "--seq" not in out


def test_serve_reports_the_steady_state_at_the_load_not_the_capacity():
    # 100 users x 1 request/min = 1.667 req/s, far below one H100's capacity: one replica, and that replica runs
    # at 1.667 req/s, i.e. the continuous-batching steady state at that rate (a few sequences in flight, TPOT
    # well below the 50 ms target), not the largest concurrency meeting the target.
    m, h = load_model("llama-3.1-8b"), load_hardware("h100-sxm")
    d = serve(m, h, users=100, prompt=1024, output=256).data
    assert d["replicas"] == 1 and d["tp"] == 1
    cb = continuous_batching(Deployment(m, h), 100 / 60, 1024, 256).data
    assert d["concurrency_per_replica"] == pytest.approx(cb["concurrency"], rel=1e-3)
    assert d["tpot_s"] == pytest.approx(cb["tpot_s"], rel=1e-3)
    assert d["concurrency_per_replica"] < 10 < d["capacity"]["concurrency"]
    assert d["tpot_s"] < d["capacity"]["tpot_s"] <= 0.05


def test_serve_spreads_the_load_over_the_replicas():
    # Little's law per replica: N = (qps / replicas) x T, with T = TTFT - t_decode + (O - 1) x TPOT is not
    # exposed, so check the even split and that each replica stays within the targets.
    r = serve(load_model("llama-3.1-70b"), load_hardware("h100-sxm"), users=10_000, prompt=1000, output=300)
    d = r.data
    assert d["qps_per_replica_at_load"] == pytest.approx(d["qps"] / d["replicas"])
    assert d["qps_per_replica_at_load"] <= d["capacity"]["qps"]
    assert d["ttft_s"] <= 2.0 and d["tpot_s"] <= 0.05


def test_serve_names_the_failing_constraint():
    # Gemma-2-27B int4 g128 on one L4 (22.5 GiB, 300 GB/s): 26,047,480,320 block params x 4.156 bits + the tied
    # 1,179,648,000-param embedding at 16 bit = 15.9 GB fit, but a decode step reads them all (the tied LM head
    # too): 15.9e9 / 300e9 = 53 ms > 50 ms even on a pure roofline, so TPOT fails at batch 1.
    # L4s reach each other over PCIe (8 per server), so tp 2-8 are tried too; a 10 ms target fails at every tp
    # (tp 8 still reads 15.9 GB / 8 at 300 GB/s = 6.6 ms plus the PCIe all-reduces and launches).
    out = one_line_error(["serve", "gemma-2-27b", "-H", "l4", "--weights", "int4", "--group-size", "128",
                           "--users", "100", "--tpot", "10ms"], "tp 1: TPOT at batch 1 =", "> 10 ms target")
    assert "weights" not in out.split("tp 1:")[1].split(";")[0]
    # 70B bf16 (141 GB) on L4s (8 per PCIe server): the weights do not fit tp 1
    with pytest.raises(LlmcalcError, match=r"tp 1: weights 141\.1 GB per GPU > 21\.7 GB usable"):
        serve(load_model("llama-3.1-70b"), load_hardware("l4"), qps=1.0, prompt=100, output=10)


def test_qps_max_explain_is_not_circular():
    r = continuous_batching(dep8b(), 1.0, 1000, 200)
    f = r["qps_max"]
    assert "N_max/T_max" in f.formula.replace("·", "*")
    n, t = (float(x) for x in f.substituted.split("/"))
    assert n == r.data["kv_cap"]  # lambda(N) rises with N, so the highest rate is at the KV cap
    assert n / t == pytest.approx(r.data["qps_max"], rel=1e-3)


# ---------------------------------------------------------------- what the load means, streams, cost split, prices


def test_users_first_line_says_it_is_a_request_rate():
    """`--users` is users x requests/user/min / 60, not simultaneous streams: the first line says so."""
    res = runner.invoke(app, ["serve", "llama-3.1-8b", "--users", "600", "--requests-per-user-per-min", "2"])
    assert res.exit_code == 0, res.output
    first = res.output.splitlines()[0]
    assert "600 users x 2 request/user/min = 20 req/s" in first and "not simultaneous streams" in first
    res = runner.invoke(app, ["serve", "llama-3.1-8b", "--concurrent", "64"])
    assert "64 simultaneous streams" in res.output.splitlines()[0]


def test_concurrent_streams_littles_law_and_replicas():
    """N simultaneous streams, each with one request in flight: replicas = ceil(N / per-replica capacity), each
    runs N/replicas in flight, and the rate obeys Little's law N = qps x T (Little 1961) for the request time T
    of a replica at that concurrency (recomputed with continuous_batching at the resulting per-replica rate)."""
    m, h = load_model("llama-3.1-70b"), load_hardware("h100-sxm")
    n = 1000
    d = serve(m, h, concurrent=n, prompt=1000, output=300).data
    cap = d["capacity"]["concurrency"]
    assert d["replicas"] == -(-n // cap)  # ceil
    assert d["concurrency_per_replica"] == pytest.approx(n / d["replicas"])
    dep = Deployment(m, h, d["tp"])
    cb = continuous_batching(dep, d["qps"] / d["replicas"], 1000, 300).data
    assert cb["concurrency"] == pytest.approx(n / d["replicas"], rel=0.02)  # same steady state, found from the rate
    # a stream count is not a user count: a stream sends its next request when the last ends (T = n/qps, here
    # well under a minute), so 1000 streams send more than 1000 users at 1 request per minute
    assert n / d["qps"] < 60 and d["qps"] > n / 60


def test_load_options_are_exclusive():
    one_line_error(["serve", "llama-3.1-8b", "--users", "10", "--concurrent", "5"], "exactly one of")
    one_line_error(["serve", "llama-3.1-8b", "--concurrent", "-5"], "--concurrent")
    one_line_error(["serve", "llama-3.1-8b", "--concurrent", "many"], "--concurrent")


def test_cost_split_adds_up_to_the_fleet_cost():
    """$ per million input tokens (prefill's share of GPU time) x input tokens + $ per million output tokens
    (decode's share) x output tokens = the fleet's $/s; the all-to-output figure is the fleet's $/s over output
    tokens alone. Prefill's share is qps_replica x t_prefill (the definition stated in the note)."""
    d = serve(load_model("llama-3.1-8b"), load_hardware("h100-sxm"), qps=20.0, prompt=2000, output=200,
              price_usd_per_hour=2.5).data
    fleet_usd_per_s = d["gpus"] * 2.5 / 3600
    split = (d["usd_per_million_input_tokens"] * d["input_tokens_per_s"]
             + d["usd_per_million_output_tokens_decode"] * d["tokens_per_s"]) / 1e6
    assert split == pytest.approx(fleet_usd_per_s, rel=1e-9)
    assert d["usd_per_million_output_tokens"] * d["tokens_per_s"] / 1e6 == pytest.approx(fleet_usd_per_s)
    assert d["input_tokens_per_s"] == pytest.approx(20.0 * 2000)
    assert 0 < d["prefill_share"] < 1


def test_catalogue_price_carries_a_date_and_price_overrides(tmp_path):
    h = load_hardware("h100-sxm")
    assert h.price_date == "2025-02" and "Google Cloud" in h.sources["price_usd_per_hour"]
    r = serve(load_model("llama-3.1-8b"), h, qps=5.0, prompt=1024, output=256)
    assert any("listed 2025-02" in a and "--price overrides" in a for a in r.assumptions)
    d = serve(load_model("llama-3.1-8b"), h, qps=5.0, prompt=1024, output=256, price_usd_per_hour=2.5).data
    assert d["price_usd_per_hour"] == 2.5
    # a date that is not YYYY-MM(-DD) is a user error naming the field
    from pathlib import Path

    src = (Path(__file__).resolve().parents[1] / "hardware" / "h100-sxm.yaml").read_text()
    bad = tmp_path / "h.yaml"
    bad.write_text(src.replace("price_date: 2025-02 ", "price_date: Feb-2025"))
    one_line_error(["show", str(bad)], "price_date")
    ok = tmp_path / "h2.yaml"
    ok.write_text(src.replace("price_date: 2025-02 ", "price_date: 2025-02-01"))  # YAML reads this as a date
    assert load_hardware(str(ok)).price_date == "2025-02-01"


def test_serve_ttft_includes_the_md1_wait_before_prefill():
    """serve reports TTFT mean/p50/p99 with the wait before prefill of llmcalc.inference.batching: an M/D/1 queue at
    each replica, load ρ = λ_replica·t_p. Pollaczek-Khinchine for deterministic service: W = ρ·t_p/(2(1 − ρ));
    quantiles from P(W > t) ≈ ρ·exp(−ρ·t/W): t_q = W/ρ·ln(ρ/(1 − q)) when ρ > 1 − q, else 0."""
    import math

    from llmcalc.inference.serving import serve

    d = serve(load_model("llama-3.1-8b"), load_hardware("h100-sxm"), prompt=1024, output=256, qps=20).data
    from llmcalc.inference.latency import step

    rho = d["prefill_share"]
    assert d["tp"] == 1
    t_p = float(step(Deployment(load_model("llama-3.1-8b"), load_hardware("h100-sxm")), 1, 1024, 1024,
                     prefill=True)["step_s"])
    assert rho == pytest.approx(d["qps_per_replica_at_load"] * t_p, rel=1e-3)  # λ_replica·t_p (λ interpolated)
    w = rho * t_p / (2 * (1 - rho))
    assert 0.01 < rho < 0.5  # this load: p99 from the tail, p50 = 0 (fewer than half the arrivals wait)
    assert d["queue_wait_s"] == pytest.approx(w, rel=1e-9)
    assert d["queue_wait_p99_s"] == pytest.approx(w / rho * math.log(rho / 0.01), rel=1e-9)
    assert d["queue_wait_p50_s"] == 0
    assert d["ttft_mean_s"] == pytest.approx(d["ttft_s"] + w, rel=1e-9)
    assert d["ttft_p99_s"] == pytest.approx(d["ttft_s"] + d["queue_wait_p99_s"], rel=1e-9)
    assert d["ttft_p50_s"] == pytest.approx(d["ttft_s"])
    res = runner.invoke(app, ["serve", "llama-3.1-8b", "-H", "h100-sxm", "--qps", "20"])
    assert res.exit_code == 0, res.output
    assert "TTFT with queueing (p99)" in res.output and "M/D/1" in res.output


def test_md1_wait_textbook_values():
    # M/D/1, service 1 s: ρ = 0.5 -> mean wait 0.5·1/(2·0.5) = 0.5 s; ρ = 0.8 -> 0.8/(2·0.2) = 2 s, whose median from
    # the exponential tail 0.8·exp(-0.8 t/2) = 0.5 is t = 2/0.8·ln(1.6) = 1.175 s
    import math

    from llmcalc.inference.batching import queue_wait, wait_quantile

    assert float(queue_wait(1.0, 0.5)[0]) == pytest.approx(0.5)
    mean = float(queue_wait(1.0, 0.8)[0])
    assert mean == pytest.approx(2.0)
    assert float(wait_quantile(mean, 0.8, 0.5)) == pytest.approx(2 / 0.8 * math.log(1.6))
    assert float(wait_quantile(0.5, 0.5, 0.5)) == 0.0
