"""A new user's review of ``llmcalc rl`` (is async faster than sync, by how much, how to split the GPUs): each test
fails on the code before its fix. Expected values come from hand derivations written here, not from our output."""

import json

import numpy as np
import pytest
from conftest import cli_one_error, cli_run

from llmcalc import load_hardware, load_model
from llmcalc.core.errors import LlmcalcError
from llmcalc.rl.lengths import lognormal
from llmcalc.rl.rollout import DecodeCost, Generator, Pool
from llmcalc.rl.step import rl_step

M7, H100 = load_model("qwen2.5-7b"), load_hardware("h100-sxm")
SMALL = ("rl", "qwen2.5-7b", "--gpus", "16", "--prompts", "32", "--samples", "8", "--response-len", "2000,1")


run, one_error = cli_run, cli_one_error


def step(**kw):
    args = dict(gpus=16, prompts=32, samples=8, prompt_len=512, response=lognormal(2000, 1.0))
    return rl_step(M7, H100, **(args | kw))


# ---------------------------------------------------------------- the re-prefill of interruptible rollouts


def test_reprefill_of_a_short_prompt_is_compute_bound():
    """After a weight sync every running sequence's KV is recomputed: active x context tokens in batched forwards,
    ~2·N FLOPs a token (Kaplan et al. 2020), at 0.8 of H100's 989 TFLOP/s bf16 (the engines' stated efficiency).
    The old code scaled one 1-token prompt's prefill (a 15 GB weight read, ~5 ms) by the context: 2,000 tokens of
    re-prefill cost 10 s a sequence, and fully async came out 19x slower than sync at --prompt-len 1."""
    from llmcalc.inference.latency import Deployment
    from llmcalc.model.params import count_params

    gen = Generator(Pool(DecodeCost(Deployment(M7, H100), 64, 0.0, 1), engines=1, group=1))
    gen.admit(10.0, 5000.0)  # 10 sequences of a 1-token prompt, decoded to a context of ~2,000 tokens
    while gen.mean_context() < 2000:
        gen.advance()
    hand = 10 * gen.mean_context() * 2 * count_params(M7) / (989.4e12 * 0.8)
    assert gen.reprefill() == pytest.approx(hand, rel=0.25)


def test_async_at_a_one_token_prompt_is_not_slower_than_sync_disaggregated():
    """At prompt 1 the fully async loop re-prefilled each sequence at ctx x a weight read: 3,490 s a step vs 180 s
    sync. Its step on the same split can be no slower than generating one batch then training it (η = 0 is
    exactly sync disaggregated; a larger η only adds overlap) beyond the re-prefill of one pool's KV (~14 s here)."""
    r = rl_step(M7, H100, gpus=64, prompts=512, samples=16, prompt_len=1,
                response=lognormal(3000, 1.0, cap=8192), rollout_gpus=32, regime="all").data["regimes"]
    assert r["fully_async"]["step_s"] < r["sync_disaggregated"]["step_s"]


# ---------------------------------------------------------------- what the CLI prints


def test_explain_prints_the_title_and_assumptions_once():
    r = run(*SMALL, "--explain")
    assert r.exit_code == 0, r.output
    assert r.output.count("RL step: Qwen2.5-7B") == 1, r.output
    assert r.output.count("responses: lognormal, mean 2000, cv 1") == 1, r.output


def test_vs_sync_cell_is_never_nan():
    """--train-pp 5 does not divide 32 GPUs, so sync colocated is left out: the speed-up column printed 'nanx'."""
    r = run("rl", "qwen2.5-7b", "--gpus", "32", "--prompts", "64", "--samples", "8", "--response-len", "2000,1",
            "--train-pp", "5")
    assert r.exit_code == 0, r.output
    assert "nan" not in r.output.lower(), r.output
    # and the warning says why (a layout that does not divide the GPUs), not "does not fit"
    warn = [ln for ln in r.output.splitlines() if "WARNING" in ln]
    assert warn and "not divisible" in warn[0] and "does not fit" not in warn[0], warn


def test_json_idle_gpu_seconds_never_negative():
    d = json.loads(run("rl", "qwen2.5-7b", "--gpus", "64", "--prompts", "512", "--samples", "16",
                       "--response-len", "3000,1.0", "--max-response", "8192", "--json").output)
    for name, x in d["regimes"].items():
        assert x["idle_gpu_s"] >= 0, (name, x["idle_gpu_s"])
    # colocated: every GPU generates, then trains, then syncs: idle 0 by construction
    assert d["regimes"]["sync_colocated"]["idle_gpu_s"] == pytest.approx(0, abs=1e-6)


def test_split_search_says_which_splits_it_tried():
    """64 GPUs of 1-GPU engines: the search scores rollout 2, 4, …, 60 (even only, at most 48 splits); the
    assumption said 'over every split'."""
    d = json.loads(run(*SMALL[:3], "64", *SMALL[4:], "--json").output)
    ks = list(d["split"]["candidates"])
    assert ks == list(range(2, 2 + 2 * len(ks), 2))
    line = next(a for a in d["assumptions"] if a.startswith("split:"))
    assert "every split" not in line and f"the {len(ks)} splits of rollout GPUs 2, 4, …, {ks[-1]}" in line, line


@pytest.mark.parametrize("extra", [("--regime", "SYNC"), ("--regime", "Async"), ("--algo", "PPO")])
def test_regime_and_algo_are_case_insensitive(extra):
    """README: 'Names are case-insensitive'. --regime SYNC passed the CLI's own check and failed in the engine."""
    r = run(*SMALL, *extra)
    assert r.exit_code == 0, r.output
    assert r.output == run(*SMALL, extra[0], extra[1].lower()).output


def test_rollout_tp_that_does_not_divide_the_heads_names_rollout_tp():
    one_error(run(*SMALL, "--rollout-tp", "8"), "--rollout-tp 8", "28 attention heads")


# ---------------------------------------------------------------- the Python API


@pytest.mark.parametrize("kw, opt", [
    (dict(gpus=np.array([16, 32])), "--gpus"),
    (dict(prompt_len=np.array([256, 512])), "--prompt-len"),
    (dict(rollout_gpus=np.array([4, 8])), "--rollout-gpus"),
    (dict(gpus="16"), "--gpus"),
    (dict(staleness="2"), "--staleness"),
    (dict(response=3000), "--response-len"),
])
def test_api_one_configuration_per_call_one_line(kw, opt):
    """Arrays (DESIGN: numeric arguments may be arrays) and numeric strings (numpy reads '16' as 16.0) died in a
    ValueError/TypeError traceback deep inside; rl_step times one configuration, so it says so."""
    with pytest.raises(LlmcalcError, match=opt):
        step(**kw)


def test_api_staleness_inf_is_unbounded_and_text_response_is_parsed():
    a = step(staleness=float("inf"), response="2000,1").data
    b = step(staleness=None).data
    assert a["staleness_eta"] is None
    assert a["regimes"]["fully_async"]["step_s"] == b["regimes"]["fully_async"]["step_s"]


# ---------------------------------------------------------------- the async loop's trainer and the pool's prefills


# fixed by the RL review (llmcalc.rl.loop: the trainer keeps its own clock)
@pytest.mark.parametrize("eta", [None, 2])
def test_trainer_bound_async_period_is_train_plus_sync(eta):
    """When the pool produces a batch much faster than the trainer trains one, the trainer never waits in steady
    state, so the period is t_train + t_sync exactly (AReaL §5: generation and training on separate GPUs). The loop
    kept one clock for both, and the pool's re-prefill after each sync (and admission prefills) held the trainer:
    η = inf ran at t_train + t_sync + re-prefill with 20+ batches waiting in the buffer, its staleness growing with
    the steps simulated (2.3 at 12 steps, 14.7 at 240), and η = 4 came out slower than η = 2."""
    from llmcalc.inference.latency import Deployment
    from llmcalc.rl.loop import simulate_async

    pool = Pool(DecodeCost(Deployment(M7, H100), 64, 0.005, 512), engines=4, group=1)
    lengths, counts = lognormal(2000, 1.0, cap=8192).cohorts(256)
    t_train, t_sync = 400.0, 1.0  # generating 256 samples on 4 engines takes ~70 s
    sim = simulate_async(pool, lengths, counts, t_train, t_sync, eta, True, steps=16)
    assert sim["period_s"] == pytest.approx(t_train + t_sync, rel=1e-9)
    assert sim["trainer_idle_s"] == pytest.approx(0, abs=1e-6)


def test_table_shows_generated_tokens_per_s_as_the_readme_says():
    """README: 'Output: … trained and generated tokens/s'; the table had only the trained. Generated tokens/s =
    samples × mean response / step (hand: 256 × 2,000 / step; equal lengths, so the batch holds exactly that)."""
    args = (*SMALL[:-1], "2000")
    out = run(*args).output
    d = json.loads(run(*args, "--json").output)
    head = next(ln for ln in out.splitlines() if ln.startswith("regime"))
    assert "tok/s generated" in head
    for name, x in d["regimes"].items():
        hand = 32 * 8 * 2000 / x["step_s"]
        assert x["generated_tokens_per_s"] == pytest.approx(hand, rel=1e-3)
        row = next(ln for ln in out.splitlines() if ln.startswith(name.replace("_", " ")))
        assert f"{hand / 1e3:,.1f}k" in row.split()


def test_example_answer_states_the_staleness_as_the_sweep_prints_it():
    """The tutorial printed 'staleness mean 1.75' for η = 2 and then answered '1.7 policy versions'."""
    import pathlib
    import re

    src = pathlib.Path(__file__).resolve().parents[1].joinpath("examples", "rl_sync_vs_async.py").read_text()
    fmts = re.findall(r"staleness[^\n]*?\{[^}]*staleness_mean'?\]?:(\.\d+f)\}", src)
    assert len(fmts) == 2 and len(set(fmts)) == 1, fmts


# fixed by the RL review (llmcalc.rl.lengths: order statistics by quadrature, band means for the bulk)
@pytest.mark.parametrize("cv, n", [(1.0, 256), (2.0, 16)])
def test_the_simulated_batch_holds_n_times_the_mean_response(cv, n):
    """Σ E[X_(i:N)] = N·E[X] (linearity of expectation): the batch's cohorts should hold N × mean tokens."""
    d = lognormal(2000, cv)
    lengths, counts = d.cohorts(n)
    assert float(np.dot(lengths, counts)) == pytest.approx(n * 2000, rel=1e-3)


@pytest.mark.parametrize("recompute, label", [(None, "full-rc"), ("full", "full-rc"), ("none", "no-rc")])
def test_planner_layout_uses_the_trainers_recompute(recompute, label):
    """The assumptions read 'the planner's best (… ZeRO-1 no-rc) …; recompute full': the planner chose a layout
    without recomputation that the trainer then ran with full recomputation (RLSettings.recompute, verl's gradient
    checkpointing). The planner is now asked the trainer's own question."""
    d = step(gpus=64, prompts=512, samples=16, response=lognormal(3000, 1.0, cap=8192), recompute=recompute).data
    assert d["trainer_layout"]["planner_layout"].endswith(label), d["trainer_layout"]


def test_response_len_reads_k_like_every_other_token_option():
    """--gpus 2k, --prompt-len 2k and --max-response 8k were read; --response-len 2k,1 was refused."""
    from llmcalc.rl.lengths import from_percentiles, parse_response_len

    assert parse_response_len("2k,1") == parse_response_len("2000,1")
    assert parse_response_len("2k,6k,8k") == from_percentiles(2000, 6000, 8000)
    assert parse_response_len("table:1k,2k").mean() == 1500  # (1,000 + 2,000) / 2
    r = run(*SMALL[:-1], "2k,1")
    assert r.exit_code == 0 and "mean 2,000 tokens" in r.output, r.output
    one_error(run(*SMALL[:-1], "2x,1"), "--response-len")


def test_explain_derives_the_tokens_per_s_columns():
    """The table's tok/s columns had no line in --explain (DESIGN: every number answers where it comes from), and
    nothing said 'trained' counts the prompt too. Hand: 256 samples × (512 + 2,000) / step and × 2,000 / step."""
    args = (*SMALL[:-1], "2000")  # equal lengths: the batch's mean is exactly 2,000
    d = json.loads(run(*args, "--json").output)
    f = {x["key"]: x for x in d["figures"]}
    for r, x in d["regimes"].items():
        assert f[f"{r}/trained_tokens_per_s"]["value"] == x["trained_tokens_per_s"]
        assert x["trained_tokens_per_s"] == pytest.approx(256 * (512 + 2000) / x["step_s"], rel=1e-9)
        assert f[f"{r}/generated_tokens_per_s"]["value"] == x["generated_tokens_per_s"]
    assert "trained tokens/s" in run(*args, "--explain").output


def test_summary_line_names_what_each_count_counts():
    """'expected longest of 8,192 8,192 (Blom)' put two bare counts side by side (samples, then tokens). Hand: a
    lognormal with mean 3,000 and cv 1 has a Blom top quantile (z = 3.79) of ~49,600 tokens, past the 8,192 cap."""
    out = run("rl", "qwen2.5-7b", "--gpus", "64", "--prompts", "512", "--response-len", "3000,1",
              "--max-response", "8192").output
    assert "expected longest of the 8,192 samples 8,192 tokens" in out, out


def test_example_tutorial_statements_match_its_own_numbers(capsys):
    """examples/rl_sync_vs_async.py read as a tutorial: η = 0 is the synchronous disaggregated step, the answer's
    times, speed-up and staleness are the ones the rows above print (it said 1.7 after printing 1.75)."""
    import pathlib
    import re
    import runpy

    runpy.run_path(str(pathlib.Path(__file__).resolve().parents[1] / "examples" / "rl_sync_vs_async.py"))
    out = capsys.readouterr().out
    step = {m[1]: float(m[2]) for m in re.finditer(r"^(\w+)\s+step\s+([\d.]+) s", out, re.M)}
    eta = {m[1]: (float(m[2]), m[3]) for m in re.finditer(r"η = (\w+): step\s+([\d.]+) s,.*mean ([\d.]+)", out)}
    assert eta["0"][0] == step["sync_disaggregated"]
    assert eta["2"][0] == step["fully_async"]
    ans = re.search(r"from (\d+) s to (\d+) s \(([\d.]+)x\), at a mean staleness of ([\d.]+)", out)
    assert (int(ans[1]), int(ans[2])) == (round(step["sync_colocated"]), round(step["fully_async"]))
    assert float(ans[3]) == pytest.approx(step["sync_colocated"] / step["fully_async"], abs=0.01)
    assert ans[4] == eta["2"][1]
