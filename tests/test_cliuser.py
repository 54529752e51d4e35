"""A new user's review (issue #13's promise): contradicting options get one message and exit 2; an output's lines
agree with each other. Expected values come from textbook formulas, not from our own output."""

import json
import math

import pytest
from conftest import cli_one_error, cli_run

run, one_error = cli_run, cli_one_error


GPT3 = ("train", "gpt-3-175b", "--tokens", "300B", "-H", "a100-sxm-80gb", "--gpus", "1024")


def test_train_mfu_and_achieved_rate_contradict():
    # --achieved-tflops silently replaced an explicit --mfu: two rates per GPU, one ignored
    one_error(run(*GPT3, "--mfu", "0.4", "--achieved-tflops", "140"), "--mfu", "--achieved-tflops")
    assert run(*GPT3, "--achieved-tflops", "140").exit_code == 0
    assert run(*GPT3, "--mfu", "0.4").exit_code == 0


@pytest.mark.parametrize("factor, recompute", [("6", "full"), ("8", "selective")])
def test_train_factor_contradicts_recompute(factor, recompute):
    # Narayanan et al. 2021 §5.1: full recompute executes 8·N per token; without it 6·N. Factor 6 with --recompute full
    # printed "hardware FLOPs per token (6·N)" under a full-recompute job.
    one_error(run(*GPT3, "--flops-per-token-factor", factor, "--recompute", recompute),
              "--flops-per-token-factor", "--recompute")


def test_train_factor_8_alone_still_means_full_recompute():
    r = run(*GPT3, "--flops-per-token-factor", "8", "--json")
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    assert d["hardware_flops"] == pytest.approx(8 * 174.6e9 * 300e9, rel=0.01)  # 8·N·T, GPT-3's N = 175B


def test_train_params_override_reaches_the_memory_floor():
    # --params 7B overrides the model's N: 18 B/param (Megatron bf16 Adam) × 7e9 / 8 GPUs = 15.75 GB, which fits an
    # 80 GB H100; the floor used GPT-3's 175B instead and printed DOES NOT FIT beside N = 7B.
    r = run("train", "gpt-3-175b", "--params", "7B", "--tokens", "300B", "--gpus", "8", "-H", "h100-sxm", "--json")
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    assert d["memory_floor_bytes"] == pytest.approx(18 * 7e9 / 8)
    assert d["fits"] is True
    assert "--params" in d["title"]


def test_train_exact_with_params_is_refused():
    one_error(run("train", "llama-3.1-8b", "--params", "7B", "--tokens", "300B", "--gpus", "8", "-H", "h100-sxm",
                  "--exact"), "--exact", "--params")


# Llama-3.1-8B's config.json: max_position_embeddings 131072. kv, infer and plan-serve said so past it; fit, serve and
# batching printed a batch or a GPU count at 200,000 tokens silently (fit beside "longest context at batch 1: 131,072").
PAST = "exceeds the model's 131,072 positions"


@pytest.mark.parametrize("args", [
    ("fit", "llama-3.1-8b", "-H", "h100-sxm", "--context", "200000"),
    ("serve", "llama-3.1-8b", "-H", "h100-sxm", "--users", "10", "--prompt", "200000", "--ttft", "30s"),
    ("serve", "llama-3.1-8b", "-H", "h100-sxm", "--users", "10", "--prompt", "131000", "--output", "73", "--ttft",
     "30s"),
    ("batching", "llama-3.1-8b", "-H", "h100-sxm", "--qps", "0.01", "--prompt", "200000,100", "--output", "10,10"),
])
def test_past_the_models_positions_is_said(args):
    r = run(*args)
    assert r.exit_code == 0, r.output
    assert PAST in r.output


@pytest.mark.parametrize("args", [
    ("fit", "llama-3.1-8b", "-H", "h100-sxm", "--context", "131072"),
    ("serve", "llama-3.1-8b", "-H", "h100-sxm", "--users", "10", "--prompt", "131000", "--output", "72", "--ttft",
     "30s"),
])
def test_within_the_models_positions_no_warning(args):
    r = run(*args)
    assert r.exit_code == 0, r.output
    assert PAST not in r.output


@pytest.mark.parametrize("alpha, c, pays", [(0.8, 2, False), (0.0, 0.05, False), (0.05, 0.05, False),
                                            (0.06, 0.05, True), (0.8, 0.05, True)])
def test_speculative_says_when_no_gamma_pays(alpha, c, pays):
    # Leviathan et al. 2023 Corollary 3.9: γ = 1 gives (1 + α)/(1 + c) > 1 iff α > c, and no γ does better than 1
    # when α <= c (each extra draft token adds α^k <= α tokens for c more cost). "best γ 1" read as advice to speculate.
    r = run("speculative", "--alpha", alpha, "--cost-ratio", c, "--json")
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    assert d["speculation_pays"] is pays
    assert (d["speedup_at_optimal_gamma"] > 1) is pays  # the flag agrees with the figure
    assert ("no γ beats plain decoding" in run("speculative", "--alpha", alpha, "--cost-ratio", c).output) is not pays


def test_rl_trainer_advice_only_names_train_tp_where_it_can_be_followed():
    # Qwen2.5-7B's trainer needs ~133 GiB on one H100 (Megatron 18 B/param × 7.6B params alone is 137 GB): the message
    # said "raise --train-tp", and --train-tp 2 on 1 GPU is "trainer GPUs 1 not divisible by --train-tp·--train-pp"
    rl = ("rl", "qwen2.5-7b", "-H", "h100-sxm", "--prompts", "512", "--samples", "16", "--response-len", "3000,1.0")
    r = run(*rl, "--gpus", "1")
    one_error(r, "the trainer does not fit")
    assert "--train-tp" not in r.output
    # a given ZeRO-1 layout on 2 GPUs (the planner's own pick there fits: it is told the trainer's recompute and pinned
    # to what the RL trainer runs)
    r = run(*rl, "--gpus", "2", "--train-tp", "1", "--zero", "1")
    one_error(r, "raise --train-tp (e.g. to 2)")
    assert run(*rl, "--gpus", "2", "--train-tp", "2", "--zero", "1").exit_code == 0  # the advice, followed, works
    r = run(*rl, "--gpus", "2", "--train-tp", "2")
    assert "add GPUs or raise --train-tp" not in r.output  # 2 GPUs hold no split with a trainer of 4


def test_import_refuses_a_json_output_it_could_not_read_back(tmp_path):
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps({"model_type": "llama", "hidden_size": 64, "num_hidden_layers": 2,
                               "num_attention_heads": 4, "num_key_value_heads": 2, "intermediate_size": 128,
                               "vocab_size": 100, "max_position_embeddings": 512}))
    out = tmp_path / "mine.JSON"
    one_error(run("import", cfg, "-o", out), "mine.yaml")
    assert not out.exists()
    good = tmp_path / "mine.yaml"
    assert run("import", cfg, "-o", good).exit_code == 0
    # 2 layers × (4·16·64 q + 2·16·64 k + 2·16·64 v + 64·4·16 o + 3·64·128 MLP + 2·64 norms) + 100·64·2 + 64
    per_layer = 64 * 64 + 2 * 64 * 32 + 64 * 64 + 3 * 64 * 128 + 2 * 64
    r = run("params", good, "--json")
    assert json.loads(r.output)["total"] == 2 * per_layer + 2 * 100 * 64 + 64


def test_fit_says_first_when_the_weights_do_not_fit():
    # Llama-3.1-405B in bf16: ~405.9e9 params × 2 B = 812 GB on one 80 GB H100. The page opened "What fits:" and listed
    # "left for the KV cache -735 GB" with the only verdict in a note at the bottom.
    r = run("fit", "llama-3.1-405b", "-H", "h100-sxm")
    assert r.exit_code == 0, r.output
    first = r.output.splitlines()[0]
    assert first.startswith("DOES NOT FIT: weights need 812 GB"), first
    d = json.loads(run("fit", "llama-3.1-405b", "-H", "h100-sxm", "--json").output)
    assert d["fits"] is False and d["free_bytes_per_gpu"] == 0 and d["max_batch"] == 0
    assert run("fit", "llama-3.1-405b", "-H", "h100-sxm", "--tp", "8", "--pp", "2").output.startswith("What fits")


def test_serve_advice_when_no_tp_degree_holds_the_weights():
    # DeepSeek-V3: 671e9 params × 2 B / 8 = 168 GB per H100 at TP 8, > 77 GB usable: no TTFT/TPOT target can change
    # that, yet the message advised "relax the targets". Each piece of the new advice, followed, serves the load.
    r = run("serve", "deepseek-v3", "-H", "h100-sxm", "--users", "100")
    one_error(r, "weights fit at no TP degree", "plan-serve")
    assert "relax the targets" not in r.output
    assert run("serve", "deepseek-v3", "-H", "h100-sxm", "--users", "100", "--weights", "int4").exit_code == 0
    assert run("serve", "deepseek-v3", "-H", "h200-sxm", "--users", "100", "--weights", "fp8").exit_code == 0
    assert run("plan-serve", "deepseek-v3", "-H", "h100-sxm", "--users", "100").exit_code == 0
    # where a target is what fails, relaxing it stays the advice
    one_error(run("serve", "llama-3.1-70b", "-H", "h100-sxm", "--users", "10", "--ttft", "1ms"), "relax the targets")


def test_serve_advice_when_the_weights_fit_but_no_sequence_does():
    # Llama 3.1 70B on 8 L4: the weights fit at TP 8 (141 GB / 8 = 17.6 GB < 21.7 GB usable), but one 128k-token
    # sequence's bf16 KV, 80 layers × 2 × 8 KV heads × 128 × 2 B × 128,000 / 8 GPUs = 5.2 GB, exceeds the ~4.1 GB
    # left. The advice said "relax the targets", which cannot help; a lower-bit KV cache does, then targets decide.
    cmd = ("serve", "llama-3.1-70b", "-H", "l4", "--qps", "1", "--prompt", "120000", "--output", "8000")
    r = run(*cmd)
    one_error(r, "memory holds no sequence at any TP degree", "--kv-dtype")
    assert "relax the targets" not in r.output
    one_error(run(*cmd, "--kv-dtype", "int8"), "TTFT at batch 1", "relax the targets")
    assert run(*cmd, "--kv-dtype", "int8", "--ttft", "1000s", "--tpot", "1s").exit_code == 0


def test_train_time_follows_a_measured_step_time():
    # 15.6T tokens in steps of 4M tokens, 2 h each: 15.6e12/4e6 = 3.9e6 steps × 2 h = 7.8e6 h = 325,000 days, on 8
    # GPUs 62.4e6 GPU-hours. The page printed 2,749 days (the default MFU 0.4) beside "achieved MFU 0.3%".
    r = run("train", "llama-3.1-8b", "--tokens", "15.6T", "-H", "h100-sxm", "--gpus", "8", "--price", "2.5",
            "--step-time", "2 h", "--batch-tokens", "4M", "--json")
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    assert d["days"] == pytest.approx(15.6e12 / 4e6 * 2 / 24, rel=1e-9)
    assert d["gpu_hours"] == pytest.approx(8 * 15.6e12 / 4e6 * 2, rel=1e-9)
    assert d["cost_usd"] == pytest.approx(2.5 * 8 * 15.6e12 / 4e6 * 2, rel=1e-9)
    mfu = {f["key"]: f["value"] for f in d["figures"]}
    assert mfu["mfu"] == pytest.approx(d["achieved_mfu"], rel=1e-9)  # one MFU on the page, not 40% and 0.3%


@pytest.mark.parametrize("extra", [("--mfu", "0.4"), ("--achieved-tflops", "100")])
def test_train_step_time_and_another_rate_contradict(extra):
    one_error(run("train", "llama-3.1-8b", "--tokens", "1T", "-H", "h100-sxm", "--gpus", "8", "--step-time", "10 s",
                  "--batch-tokens", "4M", *extra), "--step-time")


SWEEP = ("sweep", "llama-3.1-8b", "-H", "h100-sxm")


@pytest.mark.parametrize("extra, words", [(("--batch", "1,2"), ("--batch", "one batch")),
                                          (("--prompt", "500"), ("--prompt", "--context"))])
def test_sweep_context_refuses_options_it_would_drop(extra, words):
    # --context swept at the first --batch only and replaced --prompt, both silently
    one_error(run(*SWEEP, "--context", "100,200", *extra), *words)


def test_sweep_context_at_one_batch_agrees_with_infer():
    s = json.loads(run(*SWEEP, "--batch", "4", "--context", "100,200", "--json").output)
    i = json.loads(run("infer", "llama-3.1-8b", "-H", "h100-sxm", "--batch", "4", "--prompt", "200", "--json").output)
    assert s["columns"]["ttft_s"][1] == pytest.approx(i["ttft_s"], rel=1e-12)
    assert s["columns"]["tpot_mean_s"][1] == pytest.approx(i["tpot_mean_s"], rel=1e-12)


@pytest.mark.parametrize("value", ["1e30", "inf", "1.5", "1000.9", "9007199254740993"])
@pytest.mark.parametrize("option", ["--prompt", "--output"])
def test_plan_serve_token_counts_are_whole_and_bounded(option, value):
    # 1e30 and inf were tracebacks (np.isfinite on a Python int past float64; int(inf)); 1.5 became 1, 1000.9 1000
    one_error(run("plan-serve", "llama-3.1-8b", "-H", "h100-sxm", "--qps", "1", option, value), option)


def test_plan_serve_counts_read_like_every_count_option():
    r = run("plan-serve", "llama-3.1-8b", "-H", "h100-sxm", "--qps", "1", "--prompt", "2k", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["prompt"] == 2000


@pytest.mark.parametrize("cmd", ["serve", "plan-serve"])
@pytest.mark.parametrize("load", [("--qps", "10"), ("--concurrent", "10")])
def test_requests_per_user_only_with_users(cmd, load):
    # it scales --users only; beside --qps or --concurrent it was dropped silently
    one_error(run(cmd, "llama-3.1-8b", "-H", "h100-sxm", *load, "--requests-per-user-per-min", "5"),
              "--requests-per-user-per-min", "--users")


def test_requests_per_user_scales_users():
    d = json.loads(run("serve", "llama-3.1-8b", "-H", "h100-sxm", "--users", "600", "--requests-per-user-per-min",
                       "5", "--json").output)
    assert d["qps"] == pytest.approx(600 * 5 / 60)


def test_rl_response_mean_never_below_one_token():
    # quantile() clips lengths to >= 1 token but mean() did not: cv 1e30 printed "mean 0 tokens" beside "longest 1".
    # Lognormal partial expectations: E[max(X, 1)] = E[X] + Φ(−μ/σ) − e^{μ+σ²/2}·Φ((−μ−σ²)/σ).
    from statistics import NormalDist

    from llmcalc.rl.lengths import lognormal

    nd = NormalDist()
    for mean, cv in [(3000, 1e30), (0.5, 0.1), (3000, 1.0)]:
        d = lognormal(mean, cv)
        s2 = math.log(1 + cv * cv)
        mu, s = math.log(mean) - s2 / 2, math.sqrt(s2)
        expected = mean + nd.cdf(-mu / s) - mean * nd.cdf((-mu - s * s) / s)
        assert d.mean() == pytest.approx(expected, rel=1e-9)
        assert d.mean() >= 1
    assert lognormal(0.5, 0.1).mean() == pytest.approx(1.0, abs=1e-9)  # all mass below one token: every draw is 1


def test_rl_warns_when_the_cap_takes_the_mean():
    rl = ("rl", "qwen2.5-7b", "-H", "h100-sxm", "--gpus", "64", "--prompts", "512", "--response-len")
    r = run(*rl, "3000,1e30")
    assert r.exit_code == 0, r.output
    assert "cuts the mean response from 3,001 to 1 tokens" in r.output
    assert "cuts the mean" not in run(*rl, "3000,1.0").output


@pytest.mark.parametrize("load, words", [(("--concurrent", "0.5"), ("--concurrent",)),
                                         (("--concurrent", "1e30"), ("--concurrent", "2**53")),
                                         (("--users", "1e30"), ("--users", "2**53")),
                                         (("--users", "1.5"), ("--users", "whole"))])
def test_plan_serve_counts_loads_as_serve_does(load, words):
    # serve refused half a stream and 1e30 users; plan-serve planned them (1.3e27 GPUs for 1e30 streams)
    one_error(run("plan-serve", "llama-3.1-8b", "-H", "h100-sxm", *load), *words)
    assert run("serve", "llama-3.1-8b", "-H", "h100-sxm", *load).exit_code == 2


def test_serve_names_plan_serve_only_where_a_replica_can_span_nodes():
    # NVIDIA L4's entry records no scale-out link: plan-serve searches one 8-GPU domain there, no more memory than
    # serve's TP 8 (405B in bf16: 101 GB per GPU at TP 8 > 21.7 GB usable)
    r = run("serve", "llama-3.1-405b", "-H", "l4", "--users", "10")
    one_error(r, "weights fit at no TP degree")
    assert "plan-serve" not in r.output


def test_why_speculative_advice_when_no_gamma_pays():
    # c = t_draft/t_target > α: Leviathan Corollary 3.9, no γ (and no α <= 1 < c) pays; "a smaller γ" was advised
    r = run("why", "speculative", "llama-3.1-8b", "-H", "h100-sxm", "--draft", "llama-3.1-70b")
    assert r.exit_code == 0, r.output
    assert "a smaller γ" not in r.output and "cheaper than α" in r.output
    r = run("why", "speculative", "llama-3.1-70b", "-H", "h100-sxm", "--draft", "llama-3.1-8b", "--gamma", "30")
    assert "a smaller γ" in r.output  # here γ = 30 is too many and a smaller one pays (best γ 4)


@pytest.mark.parametrize("layout", [("--gpus", "8", "--global-batch", "8"),
                                    ("--gpus", "8", "--tp", "2", "--global-batch", "8")])
def test_step_tp_comm_overlap_needs_sequence_parallel(layout):
    # Megatron-LM arguments.py: "Tensor parallel communication/GEMM overlap can happen only when sequence parallelism
    # is enabled" (and SP is switched off at TP 1); the step hid TP all-reduces no such run could overlap
    one_error(run("step", "llama-3.1-8b", "-H", "h100-sxm", *layout, "--tp-comm-overlap"), "--tp-comm-overlap", "--sp")
    assert run("step", "llama-3.1-8b", "-H", "h100-sxm", "--gpus", "8", "--tp", "2", "--sp", "--global-batch", "8",
               "--tp-comm-overlap").exit_code == 0


def test_summary_price_reads_as_train_and_serve_do():
    # '$2.5/h' was "Invalid value for '--price': Input should be a valid number" in summary only
    a = json.loads(run("summary", "llama-3.1-8b", "-H", "h100-sxm", "--price", "$2.5/h", "--json").output)
    b = json.loads(run("summary", "llama-3.1-8b", "-H", "h100-sxm", "--price", "2.5", "--json").output)
    assert a["train/cost"] == pytest.approx(b["train/cost"]) == pytest.approx(2.5 * b["train/gpu_hours"])
    one_error(run("summary", "llama-3.1-8b", "-H", "h100-sxm", "--price", "3 GB"), "--price")


@pytest.mark.parametrize("text", ["320 KiB per token", "320 KiB/token", "320KiB / Token", "320 KiB"])
def test_drill_reads_the_questions_own_denominator(text):
    # Llama-3.1-70B: 2·80 layers·8 KV heads·128·2 B = 327,680 B = 320 KiB per token; "320 KiB per token" was WRONG
    # ("unknown unit 'KiB per token'") and recorded as a miss
    from llmcalc.study.drill import grade

    g = grade(text, 2 * 80 * 8 * 128 * 2, "B")
    assert g.verdict == "right" and g.given == 320 * 1024


def test_tp_comm_overlap_hides_only_sequence_parallel_collectives():
    # the engine (as `plan` calls it over SP on and off): a TP 8 layout without SP keeps every TP all-reduce exposed
    from llmcalc import Layout, load_hardware, load_model, training_step

    m, h = load_model("llama-3.1-70b"), load_hardware("h100-sxm")
    kw = dict(global_batch=64, seq=4096, gpus=64)
    plain = training_step(m, h, Layout(tp=8, pp=2, dp=4), **kw)
    over = training_step(m, h, Layout(tp=8, pp=2, dp=4), tp_comm_overlap=True, **kw)
    assert over.data["step_time_s"] == pytest.approx(plain.data["step_time_s"], rel=1e-12)
    sp = training_step(m, h, Layout(tp=8, pp=2, dp=4, sp=True), **kw)
    sp_over = training_step(m, h, Layout(tp=8, pp=2, dp=4, sp=True), tp_comm_overlap=True, **kw)
    assert sp_over.data["step_time_s"] < sp.data["step_time_s"]
    one_error(run("plan", "llama-3.1-8b", "-H", "h100-sxm", "--gpus", "8", "--global-batch", "8", "--no-sp",
                  "--tp-comm-overlap"), "--tp-comm-overlap", "--no-sp")


@pytest.mark.parametrize("extra", [("--staleness", "3"), ("--no-partial",), ("--partial",)])
def test_rl_async_options_with_regime_sync(extra):
    # η and interruptible rollouts shape only the async regimes: --regime sync dropped them silently
    rl = ("rl", "qwen2.5-7b", "-H", "h100-sxm", "--gpus", "64", "--prompts", "512", "--response-len", "3000,1.0")
    one_error(run(*rl, "--regime", "sync", *extra), extra[0], "--regime sync")
    assert run(*rl, "--regime", "async", *extra).exit_code == 0


@pytest.mark.parametrize("block, extra", [("attention", ("--dp", "3")), ("attention", ("--f", "256")),
                                          ("mlp", ("--heads", "7")), ("mlp", ("--kv-heads", "1"))])
def test_shard_refuses_the_other_blocks_options(block, extra):
    # shard attention --dp 3 (batch 4 is not even divisible by 3) and shard mlp --heads 7 printed as if applied
    one_error(run("shard", block, "--d", "64", "--batch", "4", "--seq", "8", "--tp", "2", *extra), extra[0], block)


def test_why_speculative_batch_32_is_batch_32():
    # "speculative uses 1 unless given" was `1 if batch == 32 else batch`: a given --batch 32 became batch 1
    r = run("why", "speculative", "llama-3.1-70b", "-H", "h100-sxm", "--batch", "32")
    assert r.exit_code == 0 and "at batch 32 " in r.output, r.output
    assert "at batch 1 " in run("why", "speculative", "llama-3.1-70b", "-H", "h100-sxm").output
    assert "at batch 8 " in run("why", "speculative", "llama-3.1-70b", "-H", "h100-sxm", "--batch", "8").output


@pytest.mark.parametrize("topic, extra", [("gqa", ("--alpha", "0.5")), ("zero3", ("--context", "100")),
                                          ("tp-within-node", ("--gpus", "16")), ("speculative", ("--seq", "128"))])
def test_why_says_which_options_it_ignored(topic, extra):
    r = run("why", topic, "llama-3.1-70b", "-H", "h100-sxm", *extra)
    assert r.exit_code == 0, r.output
    assert f"ignored: {extra[0]} does not apply to why {topic}" in r.output


def test_batching_reads_token_counts_as_infer_does():
    # `infer --prompt 2k` worked while `batching --prompt 2k` was refused: a list entry is a count like any other
    # (k = 10³ tokens), so 2k,512 is the same request mix as 2000,512
    base = ("batching", "llama-3.1-8b", "-H", "h100-sxm", "--qps", "5", "--output", "128,64", "--json")
    a, b = run(*base, "--prompt", "2k,512"), run(*base, "--prompt", "2000,512")
    assert a.exit_code == 0 and b.exit_code == 0, a.output
    assert json.loads(a.output) == json.loads(b.output)
    one_error(run(*base, "--prompt", "1.5k,512.5"), "--prompt", "whole")


@pytest.mark.parametrize("targets, option", [(("--ttft", "2s", "--ttft-p99", "1s"), "--ttft-p99"),
                                             (("--tpot", "50ms", "--tpot-p99", "40ms"), "--tpot-p99")])
def test_plan_serve_p99_target_below_its_p50_is_refused(targets, option):
    # a 99th percentile is never below the median (order statistics), so a p99 target under the p50 one is a slip;
    # it was accepted and the p50 target silently did nothing
    one_error(run("plan-serve", "llama-3.1-8b", "-H", "h100-sxm", "--qps", "1", *targets), option, "p50")
    equal = [t if t not in ("1s", "40ms") else {"1s": "2s", "40ms": "50ms"}[t] for t in targets]
    assert run("plan-serve", "llama-3.1-8b", "-H", "h100-sxm", "--qps", "1", *equal).exit_code == 0


def test_plan_serve_api_refuses_every_non_number_class_in_one_line():
    """plan_serve from Python: an int past float64 (10**30 users, 10**400 req/s) reached np.isfinite and raised a
    TypeError, a traceback; a numeric string ('5' tokens) was read as a number. Each class now gets one
    LlmcalcError from core.checks, the same rule every other calculator applies."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from llmcalc import load_hardware, load_model
    from llmcalc.core.errors import LlmcalcError
    from llmcalc.inference.plan_serve import plan_serve

    m, h = load_model("llama-3.1-8b"), load_hardware("h100-sxm")
    other = st.one_of(st.text(min_size=1, max_size=6), st.just(float("nan")), st.just(float("inf")),
                      st.booleans(), st.just(-1), st.just(0))
    count = st.one_of(st.integers(min_value=2**53 + 1, max_value=10**400), other)  # counts end at 2**53
    rate = st.one_of(st.integers(min_value=10**309, max_value=10**400), other)  # a rate ends past float64

    @settings(max_examples=60, deadline=None, derandomize=True)
    @given(option=st.sampled_from(["users", "concurrent", "qps", "prompt", "output"]), data=st.data())
    def one(option, data):
        value = data.draw(rate if option == "qps" else count)
        kw = dict(prompt=1000, output=200, ttft_s=2.0, tpot_s=0.05)
        kw[option] = value
        if option in ("prompt", "output"):
            kw["qps"] = 1.0  # one load given, as the function asks
        with pytest.raises(LlmcalcError) as e:
            plan_serve(m, h, **kw)
        assert "\n" not in str(e.value)

    one()
