"""RL post-training step (llmcalc.rl): lengths and order statistics, the drain, the regimes' limits, the CLI.

Published cases live in tests/test_rl_cases.py. Expected numbers here come from hand derivations or from
independent Monte-Carlo draws, never from llmcalc's own output.
"""

import json
import math
import subprocess
import sys
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmcalc import load_hardware, load_model
from llmcalc.core.errors import LlmcalcError
from llmcalc.rl.lengths import from_percentiles, lognormal, parse_response_len, table
from llmcalc.rl.phases import RLSettings
from llmcalc.rl.rollout import DecodeCost, Pool, drain_time
from llmcalc.rl.step import rl_step

M7 = load_model("qwen2.5-7b")
H100 = load_hardware("h100-sxm")


# ---------------------------------------------------------------- lengths


def test_lognormal_moments_match_monte_carlo():
    d = lognormal(4000, 0.8)
    x = np.random.default_rng(0).lognormal(d.mu, d.sigma, 400_000)
    assert x.mean() == pytest.approx(4000, rel=0.01)
    assert x.std() / x.mean() == pytest.approx(0.8, rel=0.03)
    # capped mean: closed form vs the clipped draws
    c = lognormal(4000, 0.8, cap=6000)
    assert c.mean() == pytest.approx(np.minimum(x, 6000).mean(), rel=0.01)


@pytest.mark.parametrize("n", [16, 512, 8192])
@pytest.mark.parametrize("cv", [0.6, 1.0])
def test_expected_max_vs_monte_carlo(n, cv):
    """E[max] by quadrature of the order-statistic density against independent draws (4 standard errors).
    Blom's position through exp() ran 3-11% low here (exp(E[log max]) <= E[max], Jensen); see
    tests/test_rl_reference.py for N 1..10⁵ and cv 0..3."""
    d = lognormal(1000, cv)
    rng = np.random.default_rng(1)
    draws = rng.lognormal(d.mu, d.sigma, (4000 if n < 8192 else 400, n)).max(axis=1)
    se = draws.std() / math.sqrt(len(draws))
    assert abs(d.expected_max(n) - draws.mean()) < 4 * se


def test_percentile_fit_recovers_a_lognormal():
    d = lognormal(3000, 1.2)
    p50, p90, p99 = (float(d.quantile(p)) for p in (0.5, 0.9, 0.99))
    f = from_percentiles(p50, p90, p99)
    assert f.mu == pytest.approx(d.mu, rel=1e-9)
    assert f.sigma == pytest.approx(d.sigma, rel=1e-9)


def test_cohorts_keep_counts_mean_and_the_longest():
    d = lognormal(2000, 1.0, cap=30000)
    lengths, counts = d.cohorts(8192)
    assert counts.sum() == 8192
    assert counts[0] == counts[1] == 1  # the tail is resolved sample by sample
    assert lengths[0] == pytest.approx(d.expected_max(8192))
    assert np.dot(lengths, counts) / 8192 == pytest.approx(d.mean(), rel=0.01)


def test_parse_response_len_forms_and_errors():
    assert parse_response_len("4000,0.5").mean() == pytest.approx(4000)
    assert parse_response_len("table:100,200,300").mean() == pytest.approx(200)
    assert parse_response_len("1000,3000,9000").kind == "lognormal"
    for bad in ("x", "1,2,3,4", "3000,-1", "9000,3000,1000"):
        with pytest.raises(Exception) as e:
            parse_response_len(bad)
        assert "--response-len" in str(e.value)


# ---------------------------------------------------------------- the drain (continuous batching)


def test_drain_of_equal_lengths_is_steps_times_step_time():
    """All N sequences fit at once and run ℓ steps together at batch N/R: time = Σ_k t(N/R, P + k)."""
    from llmcalc.inference.latency import Deployment, step

    dep = Deployment(M7, H100)
    cost = DecodeCost(dep, 64, 0.004, 512)
    pool = Pool(cost, engines=4, group=1)
    t = drain_time(pool, np.array([1000.0]), np.array([256.0]))
    k = np.arange(1000) + 0.5
    hand = float(np.sum(step(dep, 64, 1, 512 + k, prefill=False)["step_s"] + 0.004))
    prefill = 256 * float(step(dep, 1, 512, 512, prefill=True)["step_s"]) / 4
    assert t["time_s"] == pytest.approx(hand + prefill, rel=1e-3)


def test_drain_tail_runs_alone_at_batch_one():
    """One long sample among short ones: after the short ones finish, the long one decodes alone."""
    from llmcalc.inference.latency import Deployment, step

    dep = Deployment(M7, H100)
    cost = DecodeCost(dep, 64, 0.0, 512)
    pool = Pool(cost, engines=1, group=1)
    t = drain_time(pool, np.array([4000.0, 100.0]), np.array([1.0, 63.0]))
    k1, k2 = np.arange(100) + 0.5, np.arange(100, 4000) + 0.5
    hand = float(np.sum(step(dep, 64, 1, 512 + k1, prefill=False)["step_s"])
                 + np.sum(step(dep, 1, 1, 512 + k2, prefill=False)["step_s"]))
    assert t["decode_s"] == pytest.approx(hand, rel=2e-3)


# ---------------------------------------------------------------- regimes: limits (properties)

FAST = dict(gpus=16, prompts=64, samples=8, prompt_len=256, minibatches=1)


@settings(max_examples=6, deadline=None)
@given(cv=st.sampled_from([0.0, 0.5, 1.0, 1.5]), k=st.sampled_from([4, 8, 12]))
def test_eta_zero_equals_synchronous_disaggregated(cv, k):
    """AReaL's bound with η = 0 admits batch i+1 only after update i: the sync disaggregated loop."""
    r = rl_step(M7, H100, response=lognormal(1500, cv, 8192), staleness=0, rollout_gpus=k, regime="all", **FAST)
    reg = r.data["regimes"]
    assert reg["fully_async"]["step_s"] == pytest.approx(reg["sync_disaggregated"]["step_s"], rel=2e-3)
    assert reg["fully_async"]["staleness_max"] == 0


@settings(max_examples=5, deadline=None)
@given(cv=st.sampled_from([0.0, 0.3, 0.6, 0.9]), bump=st.sampled_from([0.2, 0.5]))
def test_async_speedup_grows_with_tail_weight(cv, bump):
    """A heavier tail (same mean) lengthens the synchronous drain but not the saturated async pool."""
    def speedup(c):
        r = rl_step(M7, H100, response=lognormal(1500, c), staleness=4, rollout_gpus=8, **FAST)
        return r.data["speedup"]["fully_async"]

    assert speedup(cv + bump) > speedup(cv)


def test_no_tail_free_sync_async_at_best_split_differs_from_sync_by_named_idle():
    """Equal lengths, free weight sync. Sync colocated keeps all N GPUs busy (no drain, no idle):
    N·T_sync = W_sync. Async at the best split: N·T_async = W_async + idle_async. So
    T_async − T_sync = (idle_async + W_async − W_sync)/N: the idle the model reports, plus the GPU-seconds
    the split saves (decode at a fuller per-engine batch reads the weights for more tokens per step)."""
    s = RLSettings(weight_sync=False)
    r = rl_step(M7, H100, gpus=32, prompts=256, samples=16, prompt_len=256, response=table([2000]),
                staleness=4, settings=s)
    d = r.data["regimes"]
    sync, asy = d["sync_colocated"], d["fully_async"]
    n = 32
    assert sync["idle_gpu_s"] == pytest.approx(0, abs=1e-9 * n * sync["step_s"])
    w_sync = sync["rollout_gpu_s"] + sync["trainer_gpu_s"]
    w_async = asy["rollout_gpu_s"] + asy["trainer_gpu_s"]
    assert w_sync == pytest.approx(n * sync["step_s"], rel=1e-9)
    predicted = sync["step_s"] + (asy["idle_gpu_s"] + w_async - w_sync) / n
    assert asy["step_s"] == pytest.approx(predicted, rel=1e-6)
    # and the split's saving is generation only: the trainer does the same GPU-seconds of work (within its
    # communication, which grows with the trainer group) while the rollout pool does less
    assert asy["rollout_gpu_s"] < sync["rollout_gpu_s"]
    assert asy["trainer_gpu_s"] == pytest.approx(sync["trainer_gpu_s"], rel=0.15)


def test_outputs_finite_and_consistent():
    r = rl_step(M7, H100, response=lognormal(2000, 1.0, 8192), staleness=2, **FAST)
    for name, x in r.data["regimes"].items():
        assert math.isfinite(x["step_s"]) and x["step_s"] > 0, name
        assert 0 <= x["rollout_utilisation"] <= 1 + 1e-9 and 0 <= x["trainer_utilisation"] <= 1 + 1e-9, name
        assert x["generated_tokens_per_s"] < x["trained_tokens_per_s"]  # trained tokens include the prompts
    assert r.data["split"]["rollout_gpus"] + r.data["split"]["trainer_gpus"] == 16


# ---------------------------------------------------------------- per-run trainer inputs (recipes)
RECIPE = dict(gpus=8, prompts=32, samples=8, prompt_len=256, response=table([1792]), regime="sync", train_tp=1,
              train_pp=1, train_ep=1, zero=1)


def test_old_logprob_pass_is_one_forward_by_hand_and_rollout_logprobs_drop_it():
    """Old-policy log-probs = one forward over every token (verl old_log_prob). Qwen2.5-7B (config.json: D 3584,
    28 layers, 28 heads x 128, 4 KV heads, F 18944, V 152064), 256 sequences of 2,048 tokens on 8 H100:
    per token per layer 2·D·(H·K + 2·G·K + H·K) (q, k, v, o) + 3·2·D·F (SwiGLU) + causal attention
    2·2·H·K·(L+1)/2 (QKᵀ and AV over the (L+1)/2 keys a token sees on average), plus the LM head 2·D·V; time =
    FLOPs / (8 · 989 TFLOP/s · the hardware's calibrated efficiency). With ``rollout_logprobs`` (verl fully async,
    use_rollout_log_probs) the pass is gone and nothing else changes."""
    from llmcalc.training.step import compute_efficiency_default

    d, n_layers, h, k, g, f, v, seq = 3584, 28, 28, 128, 4, 18944, 152064, 2048
    per_tok = n_layers * (2 * d * (2 * h * k + 2 * g * k) + 6 * d * f + 2 * h * k * (seq + 1)) + 2 * d * v
    t = 256 * seq * per_tok / (8 * H100.peak("bf16") * compute_efficiency_default(H100, M7, 1))
    on = rl_step(M7, H100, **RECIPE).data["regimes"]["sync_colocated"]["breakdown_s"]
    off = rl_step(M7, H100, rollout_logprobs=True, **RECIPE).data["regimes"]["sync_colocated"]["breakdown_s"]
    assert on["logprob_s"] == pytest.approx(t, rel=0.02)  # biases and norms are the 2% left out
    assert off["logprob_s"] == 0 and off["train_s"] == on["train_s"] and off["generate_s"] == on["generate_s"]


def test_recompute_input_adds_at_most_one_forward_of_the_layers():
    """``recompute`` as a recipe sets it (NeMo-RL activation_checkpointing false, verl gradient checkpointing on):
    full recomputation re-runs each layer's forward in the backward, 3 -> 4 forwards of the layers, the LM head
    never (Korthikanti et al. 2022, §5): the update grows by more than 1 and at most 4/3; the default is full."""
    full = rl_step(M7, H100, **RECIPE).data["regimes"]["sync_colocated"]["breakdown_s"]["train_s"]
    none = rl_step(M7, H100, recompute="none", **RECIPE).data["regimes"]["sync_colocated"]["breakdown_s"]["train_s"]
    assert rl_step(M7, H100, recompute="FULL", **RECIPE).data["regimes"]["sync_colocated"]["breakdown_s"][
        "train_s"] == full
    assert 1.2 < full / none <= 4 / 3
    with pytest.raises(LlmcalcError, match="--recompute expects"):
        rl_step(M7, H100, recompute="some", **RECIPE)


# ---------------------------------------------------------------- CLI

CLI = [sys.executable, "-m", "llmcalc", "rl", "qwen2.5-7b", "--gpus", "16", "--prompts", "64", "--samples", "8",
       "--prompt-len", "256", "--response-len", "1500,1", "--max-response", "8192"]


def test_cli_json_keys_stable():
    out = subprocess.run(CLI + ["--json"], capture_output=True, text=True, check=True).stdout
    d = json.loads(out)
    assert set(d["regimes"]) == {"sync_colocated", "sync_disaggregated", "one_step_off", "fully_async"}
    for x in d["regimes"].values():
        assert {"step_s", "breakdown_s", "trained_tokens_per_s", "generated_tokens_per_s", "rollout_utilisation",
                "trainer_utilisation", "rollout_idle_s", "trainer_idle_s", "staleness_mean",
                "staleness_max"} <= set(x)
    assert {"speedup", "best_regime", "split", "response_expected_max", "assumptions", "figures"} <= set(d)


def test_cli_table_puts_assumptions_first_and_explains():
    out = subprocess.run(CLI, capture_output=True, text=True, check=True).stdout
    assert out.index("assumptions:") < out.index("regime")
    ex = subprocess.run(CLI + ["--explain"], capture_output=True, text=True, check=True).stdout
    assert "Order Statistics" in ex and "formula:" in ex


@pytest.mark.parametrize("extra, msg", [
    (["--staleness", "1.5"], "--staleness"),
    (["--rollout-gpus", "16"], "--rollout-gpus"),
    (["--algo", "dpo"], "--algo"),
    (["--rollout-tp", "3"], "--rollout-tp"),
    (["--zero", "5"], "--zero expects a ZeRO stage"),
    (["--train-pp", "0"], "--train-pp"),
])
def test_cli_bad_input_one_line_exit_2(extra, msg):
    p = subprocess.run(CLI + extra, capture_output=True, text=True)
    assert p.returncode == 2, p.stderr
    assert msg in p.stderr and "Traceback" not in p.stderr and len(p.stderr.strip().splitlines()) == 1


# ---------------------------------------------------------------- dashboard page


def test_dashboard_rl_page_shows_what_rl_step_says():
    """The RL page draws rl_step's numbers (the page computes nothing): same inputs, same step times."""
    pytest.importorskip("streamlit")
    from pathlib import Path

    from streamlit.testing.v1 import AppTest

    app = str(Path(__file__).resolve().parent.parent / "app.py")
    at = AppTest.from_file(app, default_timeout=60)
    at.query_params["page"] = "rl"
    at.query_params["model"] = "qwen2.5-7b"
    at.run()
    assert not at.exception and not at.error, [e.value for e in list(at.exception) + list(at.error)]
    table = at.dataframe[0].value
    r = rl_step(M7, H100, gpus=64, prompts=512, samples=16, prompt_len=512, response=lognormal(3000, 1.0, 8192),
                staleness=2)
    from llmcalc.dashboard.panels import human

    # the table reads as people write it (panels.human, 3 significant digits): the same text from rl_step's value
    want = {k.replace("_", " "): human(v["step_s"], "s") for k, v in r.data["regimes"].items()}
    got = dict(zip(table["regime"], table["step"], strict=True))
    assert got == want


def test_trainer_layout_is_the_planners_best_unless_given():
    """No layout given: the trainer runs the training planner's best layout (llmcalc.training.plan, objective
    time) for one optimizer step of this batch on all the GPUs, at the trainer's own recomputation (full, the
    default: RLSettings.recompute); any layout option given is used as given."""
    from llmcalc.rl.phases import effective_batch
    from llmcalc.training.plan import plan_training

    resp = lognormal(3000, 1.0, 8192)
    kw = dict(gpus=32, prompts=256, samples=8, prompt_len=512, response=resp, minibatches=2, regime="sync")
    d = rl_step(M7, H100, **kw).data["trainer_layout"]
    _, l_eff, b_eff = effective_batch(*resp.cohorts(256 * 8), 512)
    gb = max(32, -(-int(b_eff / 2) // 32) * 32)
    best = plan_training(M7, H100, gpus=32, global_batch=gb, seq=round(l_eff), top=1,
                         pins={"cp": 1, "v": 1, "sp": 0, "pp": [1, 2, 4, 7, 14, 28], "rc": "full"}).data["best"]
    assert d["source"] == "planner" and d["planner_layout"] == best["layout"]
    assert (d["tp"], d["pp"], d["ep"], d["zero"]) == (best["tp"], best["pp"], best["ep"], best["zero"])
    g = rl_step(M7, H100, train_tp=2, **kw).data["trainer_layout"]
    assert g["source"] == "given" and (g["tp"], g["pp"], g["ep"], g["zero"]) == (2, 1, 1, 3)


RL_LINK = {"page": "rl", "model": "qwen2.5-7b", "rl_gpus": "32", "rl_prompts": "128", "rl_samples": "8",
           "rl_prompt": "256", "rl_mean": "2000", "rl_cv": "0.5", "rl_cap": "4096", "rl_eta": "1", "rl_algo": "ppo",
           "rl_rtp": "2", "rl_split": "16", "rl_partial": "0"}


def _app(params: dict):
    from pathlib import Path

    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(Path(__file__).resolve().parent.parent / "app.py"), default_timeout=60)
    for k, v in params.items():
        at.query_params[k] = v
    return at.run()


def test_dashboard_rl_link_restores_every_input():
    """A copied link carries every RL input: opening it restores each widget and the step it computes, and the
    state it decodes to encodes back to the same link (only what differs from the defaults)."""
    pytest.importorskip("streamlit")
    from llmcalc.dashboard import state

    s, notes = state.decode(RL_LINK)
    assert not notes and state.encode(s) == RL_LINK  # every value differs from its default: all are in the link
    at = _app(RL_LINK)
    assert not at.exception and not at.error, [e.value for e in list(at.exception) + list(at.error)]
    for name in ("rl_gpus", "rl_prompts", "rl_samples", "rl_prompt", "rl_mean", "rl_cv", "rl_cap", "rl_rtp",
                 "rl_split"):
        assert at.number_input(key=f"w_{name}").value == pytest.approx(float(RL_LINK[name])), name
    assert at.selectbox(key="w_rl_eta").value == "1" and at.selectbox(key="w_rl_algo").value == "ppo"
    assert at.toggle(key="w_rl_partial").value is False
    r = rl_step(M7, H100, gpus=32, prompts=128, samples=8, prompt_len=256, response=lognormal(2000, 0.5, 4096),
                algo="ppo", staleness=1, rollout_gpus=16, rollout_tp=2, partial=False)
    from llmcalc.dashboard.panels import human

    got = dict(zip(at.dataframe[0].value["regime"], at.dataframe[0].value["step"], strict=True))
    assert got == {k.replace("_", " "): human(v["step_s"], "s") for k, v in r.data["regimes"].items()}


def test_dashboard_rl_bad_input_probes_without_simulating(monkeypatch):
    """A bad input is one message beside its field with the values that work, found by rl_step's checks alone
    (check_only): no rollout is simulated for any candidate, which kept a bad-input re-render at ~7 s."""
    pytest.importorskip("streamlit")
    import llmcalc.rl.step as step_mod

    sims = []
    real = step_mod.drain_time
    monkeypatch.setattr(step_mod, "drain_time", lambda *a, **k: sims.append(1) or real(*a, **k))
    at = _app({"page": "rl", "model": "qwen2.5-7b", "rl_split": "64"})  # all 64 GPUs to rollout: no trainer
    msgs = " ".join(e.value for e in at.error)
    assert "values that work here" in msgs and "Not computed" in msgs, msgs
    assert sims == []  # neither the failing run nor any probe simulated a rollout
    t0 = time.process_time()  # CPU time: the server-side cost, whatever else loads the machine
    for k in (0, 1, 2, 4, 8, 16, 32, 62):  # what the probe of “rollout GPUs” runs for the values that pass
        assert rl_step(M7, H100, gpus=64, prompts=512, samples=16, prompt_len=512, rollout_gpus=k or None,
                       response=lognormal(3000, 1.0, 8192), check_only=True) is None
    assert time.process_time() - t0 < 1.0  # was ~2.3 s of CPU (~7 s wall under load) with full rl_step calls


@pytest.mark.parametrize("model, gpus, k, regime", [
    ("qwen2.5-7b", 64, None, "all"), ("qwen2.5-7b", 16, 15, "all"), ("qwen2.5-7b", 16, 15, "async"),
    ("qwen2.5-7b", 8, 6, "all"), ("llama-3.1-70b", 8, None, "all"), ("llama-3.1-70b", 16, 8, "async"),
    ("llama-3.1-70b", 32, 8, "all")])
def test_check_only_fails_exactly_when_the_full_call_does(model, gpus, k, regime):
    """rl_step(check_only=True) raises the same error as the full call, or returns None where it succeeds: the
    dashboard's "values that work here" rest on it."""
    kw = dict(gpus=gpus, prompts=64, samples=8, prompt_len=512, response=lognormal(2000, 1.0, 8192),
              rollout_gpus=k, regime=regime, rollout_tp=8 if "70b" in model else 1)
    m = load_model(model)
    try:
        full = rl_step(m, H100, **kw)
    except LlmcalcError as e:
        with pytest.raises(LlmcalcError) as got:
            rl_step(m, H100, check_only=True, **kw)
        assert str(got.value) == str(e)
    else:
        assert full is not None and rl_step(m, H100, check_only=True, **kw) is None


def test_rl_example_runs_and_answers(capsys):
    """examples/rl_sync_vs_async.py end to end: with a heavy 8k-capped tail, the answer is to go async."""
    import runpy
    from pathlib import Path

    runpy.run_path(str(Path(__file__).resolve().parent.parent / "examples" / "rl_sync_vs_async.py"),
                   run_name="__main__")
    out = capsys.readouterr().out
    assert "Answer: go asynchronous" in out
    assert "η = 0:" in out and "η = inf:" in out


@settings(max_examples=15, deadline=None)
@given(gpus=st.integers(1, 24), prompts=st.integers(1, 48), samples=st.integers(1, 8),
       prompt_len=st.integers(1, 3000), mean=st.floats(1, 20000), cv=st.floats(0, 3),
       cap=st.one_of(st.none(), st.integers(1, 30000)), eta=st.sampled_from([0, 1, 3, None]),
       rtp=st.sampled_from([1, 2, 4]), algo=st.sampled_from(["grpo", "ppo"]), partial=st.booleans(),
       name=st.sampled_from(["gpt2", "qwen2.5-7b"]))
def test_any_input_is_one_clear_error_or_finite_figures(gpus, prompts, samples, prompt_len, mean, cv, cap, eta,
                                                        rtp, algo, partial, name):
    from llmcalc.core.errors import LlmcalcError

    try:
        r = rl_step(load_model(name), H100, gpus=gpus, prompts=prompts, samples=samples, prompt_len=prompt_len,
                    response=lognormal(mean, cv, cap), staleness=eta, rollout_tp=rtp, algo=algo, partial=partial)
    except LlmcalcError as e:
        assert str(e) and "\n" not in str(e)
        return
    for name_, x in r.data["regimes"].items():
        assert math.isfinite(x["step_s"]) and x["step_s"] > 0, name_
        assert all(math.isfinite(v) and v >= 0 for v in x["breakdown_s"].values()), name_
        assert -1e-9 <= x["rollout_utilisation"] <= 1 + 1e-9 and -1e-9 <= x["trainer_utilisation"] <= 1 + 1e-9
        assert x["staleness_mean"] >= 0


def test_vectorised_trainer_matches_scalar_calls():
    """The split search times every trainer size in one training-step call; each element equals the scalar call."""
    import numpy as np

    from llmcalc.rl.phases import DEFAULT_SETTINGS, trainer_work

    lengths, counts = lognormal(2000, 1.0, 8192).cohorts(2048)
    kw = dict(algo="grpo", ref=False, reward_model=None, minibatches=4, settings=DEFAULT_SETTINGS)
    sizes = np.array([8, 16, 24, 40])
    vec = trainer_work(M7, H100, sizes, lengths, counts, 512, **kw)
    for i, n in enumerate(sizes):
        one = trainer_work(M7, H100, int(n), lengths, counts, 512, **kw)
        assert vec["total_s"][i] == pytest.approx(one["total_s"], rel=1e-12)
