"""The serving planner: places models that need more than one node, meets its targets, names why families fail,
and reproduces `serve` on the family `serve` searches (TP within a node, one precision).

Hand-derived figures: Llama-3.1-405B has 405.85e9 parameters (Meta model card; our exact count), so bf16
weights on TP8 are 405.85e9·2/8 = 101.5 GB per GPU, more than 0.9 × 79.6 GiB = 77.0 GB usable on an
H100 (nvidia-smi 81,559 MiB). Llama-3.1-8B's KV cache is 2 (K, V) × 8 KV heads × 128 × 2 B × 32 layers
= 131,072 B per token (config.json: num_key_value_heads 8, head_dim 128, 32 layers).
"""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from llmcalc.cli import app
from llmcalc.core.catalogue import load_hardware, load_model
from llmcalc.core.efficiency import DEFAULT_EFFICIENCY
from llmcalc.core.errors import LlmcalcError
from llmcalc.inference.plan_serve import Replica, evaluate, plan_serve
from llmcalc.inference.serving import serve

H100 = load_hardware("h100-sxm")


@pytest.mark.parametrize("name, weights, tpot", [("deepseek-v3", "fp8", 0.05), ("llama-3.1-405b", "bf16", 0.1)])
def test_places_big_models_across_nodes_on_h100(name, weights, tpot):
    r = plan_serve(load_model(name), H100, prompt=1000, output=300, ttft_s=2, tpot_s=tpot, users=10000,
                   weights=[weights])
    best = r.data["ranked"][0]
    assert best["ttft_s"] <= 2 and best["tpot_s"] <= tpot
    # neither fits one 8-GPU node (671 GB fp8 / 810 GB bf16 of weights > 8 × 77 GB): every replica or pool
    # spans nodes
    for row in r.data["ranked"]:
        sizes = [int(s.split(" GPUs")[0].split("(")[-1]) for s in row["config"].split(" + ")]
        assert min(sizes) > 8
    for row in r.data["ranked"]:
        assert row["ttft_p99_s"] >= row["ttft_s"] - 1e-12 and row["tpot_p99_s"] >= row["tpot_s"] - 1e-12


def test_rejected_family_names_the_failing_constraint():
    r = plan_serve(load_model("llama-3.1-405b"), H100, prompt=1000, output=300, ttft_s=2, tpot_s=0.1, qps=10,
                   weights=["bf16"], kv_dtypes=["bf16"])
    why = r.data["rejected"]["tp, weights bf16, KV bf16"]
    assert "TP8: weights 101.5 GB per GPU > 77.0 GB usable" in why


def test_reproduces_serve_on_its_family():
    m = load_model("llama-3.1-70b")
    s = serve(m, H100, prompt=1000, output=300, ttft_s=2, tpot_s=0.05, users=10000)
    p = plan_serve(m, H100, prompt=1000, output=300, ttft_s=2, tpot_s=0.05, users=10000, weights=["bf16"],
                   kv_dtypes=["bf16"], disaggregate=False)
    tp_only = next(x for x in p.data["ranked"] if x["family"].startswith("tp,"))
    assert tp_only["gpus"] == s.data["gpus"]
    assert tp_only["concurrency_per_replica"] == s.data["capacity"]["concurrency"]
    assert tp_only["tpot_s"] == pytest.approx(s.data["capacity"]["tpot_s"], rel=1e-12)


def test_disaggregation_moves_the_prompt_kv_over_the_network():
    m = load_model("llama-3.1-8b")
    r = plan_serve(m, H100, prompt=1000, output=300, ttft_s=2, tpot_s=0.05, qps=50, weights=["bf16"],
                   kv_dtypes=["bf16"])
    row = next(x for x in r.data["ranked"] if x["family"].startswith("disaggregated"))
    g_p = int(row["config"].split("(")[1].split(" GPUs")[0])
    bw = 400e9 / 8 * DEFAULT_EFFICIENCY.link  # NDR 400 Gb/s per GPU, per direction
    assert row["kv_transfer_s"] == pytest.approx(10e-6 + 1000 * 131072 / (g_p * bw), rel=1e-9)
    assert row["tpot_p99_s"] == row["tpot_s"]  # no prefill stalls in a decode-only pool


def test_decode_pool_has_no_prefill_share_and_pipeline_keeps_token_time():
    m = load_model("llama-3.1-8b")
    kw = dict(prompt=1000, output=300, ttft_s=2, tpot_s=0.05, ttft_p99_s=None, tpot_p99_s=None,
              eff=DEFAULT_EFFICIENCY, reserve=0.1)
    dec = evaluate(m, H100, Replica("tp", 1), **kw, role="decode")
    assert dec["ok"] and dec["prefill_share"] == 0
    both = evaluate(m, H100, Replica("tp", 1), **kw)
    assert both["qps"] < dec["qps"]  # prefills take engine time away from decoding


def test_input_checks():
    m = load_model("llama-3.1-8b")
    with pytest.raises(LlmcalcError, match="exactly one of"):
        plan_serve(m, H100, prompt=10, output=10, ttft_s=1, tpot_s=0.05)
    with pytest.raises(LlmcalcError, match="--tpot"):
        plan_serve(m, H100, prompt=10, output=10, ttft_s=1, tpot_s=-1, qps=1)


def test_cli_users_states_assumptions_first():
    res = CliRunner().invoke(app, ["plan-serve", "llama-3.1-70b", "-H", "h100-sxm", "--users", "10000",
                                   "--prompt", "1000", "--output", "300"])
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    assert "10000 users × 1 request per user per minute = 166.7 req/s" in lines[1]
    assert "targets" in lines[2]
    assert "cheapest deployments" in res.output
    res = CliRunner().invoke(app, ["plan-serve", "llama-3.1-8b", "--qps", "5", "--json"])
    assert res.exit_code == 0 and json.loads(res.output)["ranked"]
    for args, word in ((["--prompt", "abc", "--qps", "1"], "--prompt"), (["--qps", "1", "--mix", "0.5,0.6"], "--mix"),
                       ([], "exactly one"), (["--qps", "1", "--tpot", "fast"], "--tpot")):
        res = CliRunner().invoke(app, ["plan-serve", "llama-3.1-8b", *args])
        assert res.exit_code == 2 and word in res.output and "Traceback" not in res.output, res.output


def test_one_output_token_has_no_decode_pool_to_disaggregate():
    # With one output token the first (and only) token comes from the prefill: a separate decode pool has no work
    # (its Little's-law cycle time would be 0); the family is rejected with a reason, never divided by zero.
    from llmcalc.core.catalogue import load_hardware, load_model
    from llmcalc.inference.plan_serve import plan_serve

    r = plan_serve(load_model("llama-3.1-8b"), load_hardware("h100-sxm"), prompt=64, output=1, ttft_s=2.0,
                   tpot_s=0.05, qps=1.0)
    assert r.data["ranked"] and all("decode" not in row["family"] or "disagg" not in row["family"]
                                    for row in r.data["ranked"])


# ---------------------------------------------------------------- serve is the planner's search on its family


def test_serve_is_the_planner_on_tp_within_a_node():
    """serve's answer is plan-serve's search over tp_family (TP 1, 2, 4, 8 on an 8-GPU NVLink node, one precision):
    the same TP, GPUs and capacity concurrency; its per-TP notes are the planner's outcomes."""
    from llmcalc.inference.plan_serve import Workload, search, tp_family

    m = load_model("llama-3.1-70b")
    fam = tp_family(m, H100)
    assert [r.tp for r in fam] == [1, 2, 4, 8] and {r.kind for r in fam} == {"tp"}
    s = serve(m, H100, prompt=1000, output=300, ttft_s=2, tpot_s=0.05, users=10000).data
    out, pooled, _ = search(m, H100, fam, Workload.of(1000, 300), load=10000 / 60, concurrent=None, price=None,
                            disaggregate=False, ttft_s=2, tpot_s=0.05, ttft_p99_s=None, tpot_p99_s=None,
                            eff=DEFAULT_EFFICIENCY, reserve=0.1)
    assert pooled == []
    best = min((row["gpus"], r.tp, e) for r, e, row in out if row)
    assert (best[0], best[1]) == (s["gpus"], s["tp"])
    assert best[2]["concurrency"] == s["capacity"]["concurrency"]
    assert not out[0][1]["ok"] and "141.1 GB per GPU > 77.0 GB usable" in out[0][1]["why"]  # 70.6e9 x 2 B on TP1


def test_concurrency_is_searched_past_4096_up_to_the_kv_cap():
    """GPT-2 (124M) on an H100 holds tens of thousands of short sequences: the planner's N* is the last N of a scan
    of every N up to the KV cap (batching's curve), not 4096."""
    from llmcalc.inference.batching import curve, kv_cap
    from llmcalc.inference.latency import Deployment

    m = load_model("gpt2")
    dep = Deployment(m, H100)
    cap = kv_cap(dep, 64, 32)
    n = np.arange(1, cap + 1, dtype=float)
    c = curve(dep, 64, 32, n)
    ok = (c["ttft_s"] <= 2) & (c["tpot_s"] <= 0.05) & (c["prefill_share"] < 1)
    e = evaluate(m, H100, Replica("tp", 1), prompt=64, output=32, ttft_s=2, tpot_s=0.05, ttft_p99_s=None,
                 tpot_p99_s=None, eff=DEFAULT_EFFICIENCY, reserve=0.1)
    assert e["concurrency"] == int(np.flatnonzero(ok)[-1]) + 1 > 4096


def test_p99_ttft_is_the_md1_wait_of_serve():
    """One class: TTFT p99 = t_p + t_d + the M/D/1 p99 wait, W̄ = ρ·t_p/(2(1 − ρ)) (Pollaczek-Khinchine with
    E[S²] = t_p²) and p99 = W̄/ρ·ln(ρ/0.01) (Kingman's tail), ρ = λ·t_p: the wait `serve` reports."""
    m = load_model("llama-3.1-8b")
    e = evaluate(m, H100, Replica("tp", 1), prompt=1000, output=300, ttft_s=2, tpot_s=0.05, ttft_p99_s=None,
                 tpot_p99_s=None, eff=DEFAULT_EFFICIENCY, reserve=0.1)
    rho, t_p = e["prefill_share"], e["t_prefill_s"]
    assert rho == pytest.approx(e["qps"] * t_p, rel=1e-12) and 0.01 < rho < 1
    w = rho * t_p / (2 * (1 - rho))
    assert e["ttft_p99_s"] == pytest.approx(t_p + e["t_decode_s"] + w / rho * np.log(rho / 0.01), rel=1e-12)


# ---------------------------------------------------------------- a request mix, class by class


def test_ttft_quantile_over_classes_by_hand():
    from llmcalc.inference.plan_serve import ttft_quantile

    # no queueing: the lower weighted quantile of the classes' TTFTs; p99 is the long class's once it is > 1%
    assert ttft_quantile([0.9, 0.1], [0.03, 0.5], 0.0, 0.0, 0.99) == 0.5
    assert ttft_quantile([0.9, 0.1], [0.03, 0.5], 0.0, 0.0, 0.5) == 0.03
    assert ttft_quantile([0.995, 0.005], [0.03, 0.5], 0.0, 0.0, 0.99) == 0.03
    # with a wait (ρ = 0.5, W̄ = 0.1 s, so P(W > t) = 0.5·e^(−t/0.2)), classes at 0 and 1 s, half each:
    # above 1 s, P(TTFT > x) = 0.25·e^(−x/0.2) + 0.25·e^(−(x−1)/0.2) = 0.01 -> x = 1 + 0.2·ln(25·(1 + e^−5));
    # the median is 1 s: just below it the long class (0.5) plus the waiting short ones exceed one half
    x99 = 1 + 0.2 * np.log(25 * (1 + np.exp(-5)))
    assert ttft_quantile([0.5, 0.5], [0.0, 1.0], 0.1, 0.5, 0.99) == pytest.approx(x99, rel=1e-12)
    assert ttft_quantile([0.5, 0.5], [0.0, 1.0], 0.1, 0.5, 0.5) == 1.0
    # one class: b + the wait's own quantile W̄/ρ·ln(ρ/0.01)
    assert ttft_quantile([1.0], [0.2], 0.1, 0.5, 0.99) == pytest.approx(0.2 + 0.2 * np.log(50), rel=1e-12)


def test_mg1_wait_by_hand():
    from llmcalc.inference.batching import queue_wait

    # prefill 1 s or 3 s, half each, λ = 0.2/s: E[S] = 2, E[S²] = 5, ρ = 0.4; W̄ = λ·E[S²]/(2(1 − ρ)) = 1/1.2
    assert float(queue_wait(2.0, 0.4, 5.0)[0]) == pytest.approx(0.2 * 5 / (2 * 0.6), rel=1e-12)
    assert float(queue_wait(2.0, 0.4)[0]) == pytest.approx(0.4 * 2 / (2 * 0.6), rel=1e-12)  # deterministic: M/D/1


def test_two_class_mix_by_hand():
    """Llama-3.1-8B on one H100, 90% of arrivals 500 + 200 tokens, 10% 8000 + 500. By hand: in flight
    s = (0.9·200, 0.1·500)/230 = (18/23, 5/23); KV per token 131,072 B (module docstring); each in-flight sequence
    holds its class's final length, on average (180·700 + 50·8500)/230 = 551000/230 = 2395.7 tokens, so the KV cap
    is free // (2395.7 × 131,072 B): the arrival-mean length 0.9·700 + 0.1·8500 = 1480 (the old reduction) would
    overstate it 1.62-fold. Decode runs at the in-flight mean context (180·600 + 50·8250)/230 = 520500/230 tokens.
    TTFT p50 is the short class's t_p + t_d (90% of arrivals); p99 the long class's plus the M/G/1 wait (10% > 1%),
    checked here by bisection on P(TTFT > x) = 0.01."""
    from llmcalc.inference.batching import queue_wait
    from llmcalc.inference.kv import fit
    from llmcalc.inference.plan_serve import Workload, step_s

    m = load_model("llama-3.1-8b")
    wl = Workload.of([500, 8000], [200, 500], [0.9, 0.1])
    assert wl.inflight == pytest.approx((18 / 23, 5 / 23), rel=1e-12)
    assert wl.decode_context == pytest.approx(520500 / 230, rel=1e-12)
    r = Replica("tp", 1)
    kw = dict(ttft_s=2, tpot_s=0.05, ttft_p99_s=None, tpot_p99_s=None, eff=DEFAULT_EFFICIENCY, reserve=0.1)
    e = evaluate(m, H100, r, prompt=[500, 8000], output=[200, 500], shares=[0.9, 0.1], **kw)
    free = fit(m, H100, "bf16", None, "bf16", 1, reserve=0.1, context=8500).data["free_bytes_per_gpu"]
    assert e["kv_cap"] == int(free // (551000 / 230 * 131072))
    assert int(free // (1480 * 131072)) / e["kv_cap"] == pytest.approx(551000 / 230 / 1480, rel=0.01)
    n = e["concurrency"]
    t_d = float(step_s(m, H100, r, DEFAULT_EFFICIENCY, np.array([n]), 1, 520500 / 230, False)[0][0])
    assert e["t_decode_s"] == pytest.approx(t_d, rel=1e-12)
    t1, t2 = (float(step_s(m, H100, r, DEFAULT_EFFICIENCY, 1, p, p, True)[0]) for p in (500, 8000))
    assert e["ttft_s"] == pytest.approx(t1 + t_d, rel=1e-12)
    t_mean = 0.9 * t1 + 0.1 * t2
    rho = e["qps"] * t_mean
    assert e["prefill_share"] == pytest.approx(rho, rel=1e-12)
    w = float(queue_wait(t_mean, rho, 0.9 * t1 ** 2 + 0.1 * t2 ** 2)[0])

    def tail(x):  # P(TTFT > x) over arrivals, P(W > t) = ρ·e^(−ρt/W̄) for t ≥ 0
        return sum(s * (1.0 if x < b else rho * np.exp(-rho * (x - b) / w)) for s, b in ((0.9, t1 + t_d),
                                                                                       (0.1, t2 + t_d)))
    lo, hi = t1 + t_d, t2 + t_d + 100 * w
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if tail(mid) > 0.01 else (lo, mid)
    assert e["ttft_p99_s"] == pytest.approx(hi, rel=1e-9) and e["ttft_p99_s"] >= t2 + t_d
    # TPOT at this N is the mix's decode step stretched by the mean prefill share
    assert e["tpot_s"] == pytest.approx(t_d / (1 - rho), rel=1e-12)
    # one class as a list equals the scalar call
    one = evaluate(m, H100, r, prompt=[1000], output=[300], shares=[1.0], **kw)
    assert one == evaluate(m, H100, r, prompt=1000, output=300, **kw)


def test_cli_mix_is_modelled_per_class():
    res = CliRunner().invoke(app, ["plan-serve", "llama-3.1-8b", "-H", "h100-sxm", "--qps", "20", "--prompt",
                                   "500,8000", "--output", "200,500", "--mix", "0.9,0.1", "--ttft-p99", "3s", "--json"])
    assert res.exit_code == 0, res.output
    d = json.loads(res.output)
    assert d["prompt"] == [500, 8000] and d["mix"] == [0.9, 0.1]
    assert any("request mix, per class" in a and "2263 tokens" in a for a in d["assumptions_first"])
    for row in d["ranked"]:
        assert row["ttft_p99_s"] <= 3 and row["output_tokens_per_s"] == pytest.approx(20 * (0.9 * 200 + 0.1 * 500))


def test_mix_kv_is_per_class_where_kv_is_not_linear_in_length():
    """Gemma-2-9B (config.json: 42 layers alternating global and 4096-token sliding-window attention, 8 KV heads of
    256, bf16: 2·8·256·2 = 8192 B per token per layer). A 500 + 200 / 8000 + 500 mix at 0.9/0.1 keeps in flight
    s = (18/23, 5/23). Per class, a 700-token sequence holds 42·700 positions and an 8500-token one 21·8500 +
    21·4096 = 21·12596; their in-flight mean, 18/23·29400 + 5/23·264516 = 80511.3 positions, is 20% below the KV
    of the in-flight mean length (42 × 551000/230 = 100617.4): the window caps the long class. The cap uses the
    former (linear KV, as Llama's, makes the two equal)."""
    from llmcalc.inference.kv import fit
    from llmcalc.inference.plan_serve import Workload, capacity

    m = load_model("gemma-2-9b")
    wl = Workload.of([500, 8000], [200, 500], [0.9, 0.1])
    cap, why, weights_fit = capacity(m, H100, Replica("tp", 1), wl, 0.1)
    free = fit(m, H100, "bf16", None, "bf16", 1, reserve=0.1, context=8500).data["free_bytes_per_gpu"]
    per_class = (18 / 23 * 42 * 700 + 5 / 23 * 21 * (8500 + 4096)) * 8192
    assert why is None and weights_fit and cap == int(free // per_class)
    assert cap > 1.2 * int(free // (42 * 551000 / 230 * 8192))


def test_serve_and_plan_serve_split_the_cost_of_the_same_deployment_the_same_way():
    # Found by a fresh-eyes review: both chose 76 GPUs (TP4 x 19) for 10,000 users but priced input and output
    # differently (plan-serve split GPU time by the prefill share at capacity, serve at the actual load). The split
    # is prefill's share of GPU time at the load, u = λ_replica · t_prefill, for both.
    from llmcalc.core.catalogue import load_hardware, load_model
    from llmcalc.inference.plan_serve import plan_serve
    from llmcalc.inference.serving import serve as serve_

    m, hw = load_model("llama-3.1-70b"), load_hardware("h100-sxm")
    s = serve_(m, hw, prompt=1000, output=300, ttft_s=2, tpot_s=0.05, users=10000).data
    p = plan_serve(m, hw, prompt=1000, output=300, ttft_s=2, tpot_s=0.05, users=10000, weights=["bf16"],
                   kv_dtypes=["bf16"], disaggregate=False).data["ranked"][0]
    assert (p["gpus"], p["replicas"]) == (s["gpus"], s["replicas"])
    assert p["usd_per_million_input"] == pytest.approx(s["usd_per_million_input_tokens"], rel=1e-3)
    assert p["usd_per_million_output"] == pytest.approx(s["usd_per_million_output_tokens_decode"], rel=1e-3)
