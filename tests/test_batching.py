"""Continuous batching with a request mix (issue 4): classes of prompt/output lengths, shares of arrivals.

Expected numbers come from independent arithmetic on the model's own equations (Little 1961:
N = Σ λ_i·T_i; Orca-style prefill stretching T_i = t_p,i + (O_i − 1)·t_d/(1 − u), u = Σ λ_i·t_p,i),
solved here by bisection rather than by the module's quadratic + interpolation.
"""

import json
import math

import pytest
from conftest import one_line_error
from typer.testing import CliRunner

from llmcalc.cli import app
from llmcalc.core.catalogue import load_hardware, load_model
from llmcalc.core.errors import LlmcalcError
from llmcalc.inference.batching import continuous_batching, curve, kv_cap
from llmcalc.inference.kv import fit, kv_bytes_per_request_per_gpu
from llmcalc.inference.latency import Deployment, step

runner = CliRunner()
MIX = dict(prompt=[512, 2048], output=[128, 512], weights=[0.7, 0.3])


def dep8b():
    return Deployment(load_model("llama-3.1-8b"), load_hardware("h100-sxm"))


def figures(r):
    return {f.key: f.value for f in r.figures}


@pytest.mark.parametrize("qps", [0.5, 5.0, 1000.0])
def test_one_class_is_the_single_class_model(qps):
    dep = dep8b()
    one = continuous_batching(dep, qps, 1000, 200)
    listed = continuous_batching(dep, qps, [1000], [200], weights=[1.0])
    # a one-element mix is the same computation: every figure and total identical
    assert figures(listed) == figures(one)
    for k in ("concurrency", "request_s", "tpot_s", "ttft_s", "qps_max", "kv_cap", "tokens_per_s", "overloaded"):
        assert listed.data[k] == one.data[k]
    # and it agrees with the per-replica curve serving.py uses (T(N), t_p, t_d at N) and its KV cap
    d = one.data
    assert d["kv_cap"] == kv_cap(dep, 1000, 200)
    c = curve(dep, 1000, 200, d["concurrency"])
    assert figures(one)["t_prefill_s"] == c["t_prefill_s"] and figures(one)["t_decode_s"] == c["t_decode_s"]
    assert d["request_s"] == pytest.approx(float(c["request_s"]), rel=1e-3)
    assert d["classes"][0]["request_s"] == pytest.approx(d["request_s"], rel=1e-12)


def test_identical_classes_equal_the_single_class():
    dep = dep8b()
    one = continuous_batching(dep, 3.0, 1000, 200).data
    twin = continuous_batching(dep, 3.0, [1000, 1000], [200, 200], weights=[0.3, 0.7]).data
    for k in ("concurrency", "request_s", "tpot_s", "ttft_s", "qps_max", "tokens_per_s", "prefill_share"):
        assert twin[k] == pytest.approx(one[k], rel=1e-12), k
    assert twin["kv_cap"] == one["kv_cap"]
    # N_i = λ_i·T_i at the given rate vs N from inverting λ(N) on a grid: equal up to the interpolation
    assert [c["concurrency"] for c in twin["classes"]] == pytest.approx([0.3 * one["concurrency"],
                                                                        0.7 * one["concurrency"]], rel=1e-4)


def _bisect_concurrency(dep, qps, prompts, outputs, shares):
    """Independent solve of N = Σ λ_i·T_i(N) (bisection; N − Σ λ_i·T_i(N) rises with N below saturation)."""
    lam = [qps * w for w in shares]
    t_p = [float(step(dep, 1, p, p, prefill=True)["step_s"]) for p in prompts]
    u = sum(li * t for li, t in zip(lam, t_p, strict=True))
    wo = [w * o for w, o in zip(shares, outputs, strict=True)]
    context = sum(x * (p + o / 2) for x, p, o in zip(wo, prompts, outputs, strict=True)) / sum(wo)

    def times(n):
        t_d = float(step(dep, max(n, 1.0), 1, context, prefill=False)["step_s"])
        return [tp + (o - 1) * t_d / (1 - u) for tp, o in zip(t_p, outputs, strict=True)]

    lo, hi = 1e-6, 1e4
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if sum(li * t for li, t in zip(lam, times(mid), strict=True)) > mid else (lo, mid)
    return lo, lam, t_p, u, times(lo)


@pytest.mark.parametrize("qps", [1.0, 5.0, 15.0])
def test_two_class_mix_obeys_littles_law(qps):
    dep = dep8b()
    r = continuous_batching(dep, qps, **MIX)
    d = r.data
    assert not d["overloaded"] and not d["kv_binds"]
    n, lam, t_p, u, t = _bisect_concurrency(dep, qps, MIX["prompt"], MIX["output"], MIX["weights"])
    # Little's law: N = Σ λ_i·T_i, with the per-class times the module reports
    little = sum(li * c["request_s"] for li, c in zip(lam, d["classes"], strict=True))
    assert d["concurrency"] == pytest.approx(little, rel=1e-3)
    assert d["concurrency"] == pytest.approx(n, rel=1e-3)
    assert d["prefill_share"] == pytest.approx(u, rel=1e-12)
    for c, tp_i, t_i, o, li in zip(d["classes"], t_p, t, MIX["output"], lam, strict=True):
        assert c["t_prefill_s"] == pytest.approx(tp_i, rel=1e-12)
        assert c["request_s"] == pytest.approx(t_i, rel=1e-3)
        assert c["concurrency"] == pytest.approx(li * t_i, rel=1e-3)
        assert c["tokens_per_s"] == pytest.approx(li * o, rel=1e-12)
        assert c["tpot_s"] == pytest.approx(d["tpot_s"], rel=1e-12)  # one engine: every class sees the same step
    assert d["tokens_per_s"] == pytest.approx(qps * (0.7 * 128 + 0.3 * 512), rel=1e-12)
    assert d["throughput_qps"] == qps
    # the mean over arrivals of the class latencies is the total
    mean = sum(w * c["request_s"] for w, c in zip(MIX["weights"], d["classes"], strict=True))
    assert d["request_s"] == pytest.approx(mean, rel=1e-9)


def test_mix_kv_cap_charges_each_class_its_final_length():
    dep = dep8b()
    d = continuous_batching(dep, 1000.0, **MIX).data
    free = fit(dep.model, dep.hw, context=2560).data["free_bytes_per_gpu"]
    share = [0.7 * 128, 0.3 * 512]  # in flight ∝ λ_i·O_i
    per_seq = sum(s / sum(share) * float(kv_bytes_per_request_per_gpu(dep.model, p + o))
                  for s, p, o in zip(share, MIX["prompt"], MIX["output"], strict=True))
    assert d["kv_cap"] == math.floor(free / per_seq)
    assert kv_cap(dep, 2048, 512) <= d["kv_cap"] <= kv_cap(dep, 512, 128)
    # 1000 req/s overloads one H100: the KV cap binds and the figures are at the cap
    assert d["overloaded"] and d["kv_binds"] and d["concurrency"] == d["kv_cap"]
    assert d["tokens_per_s"] == pytest.approx(d["qps_max"] * (0.7 * 128 + 0.3 * 512), rel=1e-12)


def test_mix_validation_names_the_option():
    dep = dep8b()
    with pytest.raises(LlmcalcError, match="must sum to 1"):
        continuous_batching(dep, 1.0, [100, 200], [10, 20], weights=[0.5, 0.6])
    with pytest.raises(LlmcalcError, match="--output has 1"):
        continuous_batching(dep, 1.0, [100, 200], 10)
    with pytest.raises(LlmcalcError, match="--mix needs one share per request class"):
        continuous_batching(dep, 1.0, [100, 200], [10, 20], weights=[1.0])
    # within 1e-9 of 1 is accepted (thirds)
    assert len(continuous_batching(dep, 1.0, [100, 200, 300], [10, 20, 30], weights=[1 / 3] * 3).data["classes"]) == 3


def test_cli_mix_json_and_explain():
    args = ["batching", "llama-3.1-8b", "--qps", "5", "--prompt", "512,2048", "--output", "128,512", "--mix", "0.7,0.3"]
    res = runner.invoke(app, [*args, "--json"])
    assert res.exit_code == 0, res.output
    d = json.loads(res.output)
    assert d["prompt"] == [512, 2048] and d["output"] == [128, 512] and d["mix"] == [0.7, 0.3]
    assert [c["share"] for c in d["classes"]] == [0.7, 0.3]
    assert {"ttft_s", "tpot_s", "request_s", "tokens_per_s", "concurrency", "qps"} <= set(d["classes"][0])
    assert {"concurrency", "throughput_qps", "tokens_per_s", "prefill_share", "kv_cap", "kv_binds"} <= set(d)
    res = runner.invoke(app, [*args, "--explain"])
    assert res.exit_code == 0 and "w_1·t_p_1+w_2·t_p_2" in res.output and "0.7·128+0.3·512" in res.output
    # default shares are equal; a single value keeps the scalar keys of the one-class command
    d = json.loads(runner.invoke(app, ["batching", "llama-3.1-8b", "--qps", "5", "--prompt", "512,2048",
                                       "--output", "128,512", "--json"]).output)
    assert d["mix"] == [0.5, 0.5]
    d = json.loads(runner.invoke(app, ["batching", "llama-3.1-8b", "--qps", "5", "--json"]).output)
    assert d["prompt"] == 1024 and d["output"] == 256 and len(d["classes"]) == 1


@pytest.mark.parametrize("args,needles", [
    (["--prompt", "512,2048", "--output", "128"], ["--prompt has 2 values", "--output has 1"]),
    (["--prompt", "512,2048", "--output", "128,512", "--mix", "0.5,0.6"], ["--mix", "sum to 1", "1.1"]),
    (["--prompt", "512,2048", "--output", "128,512", "--mix", "1"], ["--mix", "2 classes", "1 share"]),
    (["--prompt", "512,2048", "--output", "128,512", "--mix", "nan,0.5"], ["--mix", "got nan"]),
    (["--prompt", "512,2048", "--output", "128,512", "--mix", "1,0"], ["--mix", "got 0"]),
    (["--prompt", "512,2048", "--output", "128,512", "--mix", "0.7,x"], ["--mix", "'0.7,x'"]),
    (["--prompt", "512,0", "--output", "128,512"], ["--prompt", "got 0"]),
    (["--prompt", "512,inf", "--output", "128,512"], ["--prompt", "got inf"]),
    (["--prompt", "512,2048", "--output", "128,-5"], ["--output", "got -5"]),
    (["--prompt", "512,"], ["--prompt", "'512,'"]),
])
def test_cli_mix_errors_in_one_line(args, needles):
    one_line_error(["batching", "llama-3.1-8b", "--qps", "5", *args], *needles)


def test_queue_wait_is_md1_and_matches_a_lindley_simulation():
    """Prefill as an M/D/1 queue: Pollaczek-Khinchine mean wait ρ·t_p/(2(1−ρ)); checked against a Lindley-recursion
    simulation of Poisson arrivals with deterministic service (W_{k+1} = max(0, W_k + t_p − A_k))."""
    import numpy as np

    from llmcalc.inference.batching import continuous_batching, queue_wait

    t_p, rho = 0.02, 0.6
    mean, p99 = queue_wait(t_p, rho)
    assert mean == pytest.approx(0.6 * 0.02 / (2 * 0.4))
    assert p99 == pytest.approx(mean / 0.6 * np.log(60))
    rng = np.random.default_rng(0)
    gaps = rng.exponential(t_p / rho, 400_000)
    w, waits = 0.0, np.empty(gaps.size)
    for k, a in enumerate(gaps):
        waits[k] = w
        w = max(0.0, w + t_p - a)
    assert waits[1000:].mean() == pytest.approx(mean, rel=0.05)
    assert np.quantile(waits[1000:], 0.99) == pytest.approx(p99, rel=0.25)  # the tail is an approximation
    from llmcalc.inference.latency import step

    dep = dep8b()
    r = continuous_batching(dep, 10.0, 1024, 256).data
    t_prefill = float(step(dep, 1, 1024, 1024, prefill=True)["step_s"])
    assert r["prefill_share"] == pytest.approx(10.0 * t_prefill)
    assert r["queue_wait_s"] == pytest.approx(queue_wait(t_prefill, 10.0 * t_prefill)[0])
    assert r["ttft_mean_s"] == pytest.approx(r["ttft_s"] + r["queue_wait_s"])
    assert r["ttft_p99_s"] == pytest.approx(r["ttft_s"] + r["queue_wait_p99_s"])
    assert r["ttft_p50_s"] == pytest.approx(r["ttft_s"] + r["queue_wait_p50_s"])


def _lindley_waits(t_p: float, rho: float, n: int = 400_000):
    """Waits of Poisson arrivals at an M/D/1 queue: W_{k+1} = max(0, W_k + t_p − A_k) (Lindley 1952)."""
    import numpy as np

    gaps = np.random.default_rng(0).exponential(t_p / rho, n)
    w, waits = 0.0, np.empty(n)
    for k, a in enumerate(gaps):
        waits[k] = w
        w = max(0.0, w + t_p - a)
    return waits[1000:]


def test_queue_wait_median_against_a_lindley_simulation():
    """The median wait from the heavy-traffic tail P(W > t) ≈ ρ·exp(−ρ·t/W̄) (wait_quantile; its textbook values are
    in test_serving.py) against a simulated M/D/1 queue: the simulated median is 0 below ρ = 0.5 (exactly ρ of the
    arrivals wait in M/G/1) and within 15% of the heavy-traffic form at ρ ≥ 0.8 (at ρ = 0.6 it is 40% off: the
    approximation is for heavy traffic, which is where a latency chart's p50 matters)."""
    import numpy as np

    from llmcalc.inference.batching import wait_quantile

    assert np.quantile(_lindley_waits(0.02, 0.3), 0.5) == 0.0 == float(wait_quantile(0.3 * 0.02 / 1.4, 0.3, 0.5))
    for rho in (0.8, 0.9):
        mean = rho * 0.02 / (2 * (1 - rho))
        assert np.quantile(_lindley_waits(0.02, rho), 0.5) == pytest.approx(float(wait_quantile(mean, rho, 0.5)),
                                                                            rel=0.15)


def test_latency_vs_load_is_one_steady_state_per_rate():
    """Each point of the load curve is continuous_batching at that rate; p50 <= mean <= p99 (the wait's tail is
    exponential, so its median ln(2ρ)/ρ·W̄ < W̄ < p99), the TTFT rises with load, overload is NaN, not a number."""
    import numpy as np

    from llmcalc.inference.batching import continuous_batching, latency_vs_load

    dep = dep8b()
    q_max = continuous_batching(dep, 1.0, 1024, 256).data["qps_max"]
    rates = np.array([0.1, 0.5, 0.9, 1.5]) * q_max
    c = latency_vs_load(dep, 1024, 256, rates)
    for i in range(3):
        d = continuous_batching(dep, float(rates[i]), 1024, 256).data
        for k in ("ttft_p50_s", "ttft_mean_s", "ttft_p99_s", "tpot_s", "concurrency"):
            assert c[k][i] == d[k]
    assert np.all(c["ttft_p50_s"][:3] <= c["ttft_mean_s"][:3]) and np.all(c["ttft_mean_s"][:3] < c["ttft_p99_s"][:3])
    assert np.all(np.diff(c["ttft_p99_s"][:3]) > 0)
    assert c["overloaded"].tolist() == [False, False, False, True] and np.isnan(c["ttft_p99_s"][3])
