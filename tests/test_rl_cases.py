"""Published RL post-training measurements (shared/reference/rl-and-planner-cases.yaml) against llmcalc.rl,
with ONE set of defaults (llmcalc.rl.phases.RLSettings).

Calibration vs test:
- CALIBRATION: NeMo-RL v0.6 H100 rows and AReaL's Sync.AReaL/AReaL ratio (the rollout engine's host time per
  decode step, 5 ms + 75 µs per sequence, and the MoE trainer's 0.3 of the pre-training efficiency, fitted
  together on those three numbers; dense trainers keep their pre-training efficiency) and checkpoint-engine's
  Qwen3-235B row (reload_bw = 150 GB/s).
- TEST: everything else. Cases outside their stated tolerance are ``xfail(strict=True)`` with the numbers in
  the reason, so a fix that brings them inside fails loudly and gets the marker removed.

Inputs a source does not publish (response-length distributions, prompt lengths) are chosen once per source
below, said where, and never tuned per assertion.
"""

from pathlib import Path

import pytest

from llmcalc import load_hardware, load_model
from llmcalc.rl.lengths import lognormal
from llmcalc.rl.phases import RLSettings, weight_sync
from llmcalc.rl.step import rl_step

D = "tests/data/"
H800 = load_hardware(D + "hardware/h800-sxm.yaml")
H20 = load_hardware(D + "hardware/h20.yaml")
H100 = load_hardware("h100-sxm")
GB200 = load_hardware("gb200")
R1_1P5B = load_model(D + "models/deepseek-r1-distill-qwen-1.5b.yaml")
QWEN3_30B = load_model(D + "models/qwen3-30b-a3b.yaml")
QWEN_7B = load_model("qwen2.5-7b")  # Qwen2.5-Math-7B shares Qwen2.5-7B's architecture (positions differ)


# ---------------------------------------------------------------- AReaL (Fu et al. 2025, arXiv 2505.24298)
# Table 1 + App. B Table 3: DeepSeek-R1-Distill-Qwen-1.5B, 512 prompts x 16, max generation 27,648, 16 nodes of
# 8 H800; async: 96 inference + 32 training GPUs, η = 8, interruptible rollouts, 4 PPO mini-batches, no critic,
# no reference. Sync.AReaL is "AReaL with η = 0" on the same system. NOT published: the response-length
# distribution. We take mean 9,000 tokens (Fig 5c's 128.7k tokens/s × the 590 s sync step / 8,192 ≈ 9.3k
# tokens per trajectory) with cv 0.8 (a heavy tail; AReaL §3 motivates the system by it), prompt 256.
AREAL = dict(gpus=128, prompts=512, samples=16, prompt_len=256, response=lognormal(9000, 0.8, 27648),
             rollout_gpus=96, minibatches=4)


def _areal(eta):
    return rl_step(R1_1P5B, H800, staleness=eta, regime="all", **AREAL).data["regimes"]


def test_areal_async_over_sync_ratio():
    """rl-areal-1p5b-math: Sync.AReaL 41.0 h vs AReaL 14.8 h = 2.77x; tolerance ±30% on the ratio (the case's)."""
    sync = _areal(0)["fully_async"]["step_s"]  # η = 0: AReaL's own synchronous mode
    asy = _areal(8)["fully_async"]["step_s"]
    assert sync / asy == pytest.approx(2.77, rel=0.30)


# A CALIBRATION row of RLSettings' host time per decode step (with the NeMo-RL H100 rows), so held to ±10%: the
# wave-8 refit (benchmarks/report_rl.py --refit, after the trainer got its own clock in llmcalc/rl/loop.py) left it
# at -3.2%.
def test_areal_async_over_sync_ratio_held_to_calibration():
    sync = _areal(0)["fully_async"]["step_s"]
    asy = _areal(8)["fully_async"]["step_s"]
    assert sync / asy == pytest.approx(2.77, rel=0.10)


def test_areal_async_step_absolute_within_50pct():
    """AReaL 14.8 h / 250 steps = 213 s per step; absolute hours only ±50% (length distribution unpublished)."""
    assert _areal(8)["fully_async"]["step_s"] == pytest.approx(213, rel=0.5)


def test_areal_sync_step_absolute_within_50pct():
    """Sync.AReaL 41.0 h / 250 steps = 590 s (±50%): a TEST (was +54% with a 20 ms constant per decode step that
    drained the 27,648-token tail of a 1.5B model at an MoE's pace; now host time is per sequence)."""
    assert _areal(0)["fully_async"]["step_s"] == pytest.approx(590, rel=0.5)


def test_areal_staleness_sweep_rises_then_saturates():
    """rl-areal-staleness-throughput-sweep (Fig 5c): 128.7k tokens/s at η = 0, 356.6k at η = 2, 396.8k at η = ∞:
    a steep rise (>2x by η = 1-2), within 10% of η = ∞ by η = 4-8, and η≥2 / η=0 = 2.77 ± 30%."""
    thr = {eta: _areal(eta)["fully_async"]["trained_tokens_per_s"] for eta in (0, 1, 2, 4, 8, None)}
    assert thr[2] / thr[0] > 2
    assert thr[2] / thr[0] == pytest.approx(356.6 / 128.7, rel=0.30)
    assert thr[4] >= 0.9 * thr[None] and thr[8] >= 0.9 * thr[None]
    assert thr[0] < thr[1] <= thr[2] * 1.001


# ---------------------------------------------------------------- verl recipes (H20)
# Qwen2.5-Math-7B, DAPO (no KL, no critic, no reference), rollout.n 16, ppo_mini_batch 32 prompts, gradient
# checkpointing on, dynamic batch size. Inputs from the runs' own scripts (volcengine/verl; the YAML cases cite
# file and commit): one-step-off (docs/advance/one_step_off.md, "FSDP2: 20,480 tokens") = PR #2231's branch head
# 4685463f3, recipe/one_step_off_policy/dapo_7b_math_fsdp2_colocate.sh (512 prompts, vLLM TP4) and
# dapo_7b_math_fsdp2_4_12.sh (516 prompts, vLLM TP2 on 4 GPUs); fully async (docs/advance/fully_async.md) = PR
# #2981 b25bb7d4f, 512 prompts, 28K max response, gen_tp 4. NOT published: the length distribution. The MEAN is
# inferred from each doc's own colocated old_log_prob (one forward over every token at the default H20
# efficiency; cv 1.0 and prompt 256 assumed), so old_log_prob itself is no test; the rest of the step is.
VERL = dict(samples=16, prompt_len=256, zero=3)


def test_verl_one_step_off_mean_length_reproduces_its_old_log_prob():
    """The inference the cases rest on: mean 717 (colocated, 16 GPUs) and 635 (4 + 12 split) give the doc's
    old_log_prob, 88 s and 108 s (to the ±2% of rounding the mean to a whole token)."""
    r = rl_step(QWEN_7B, H20, gpus=16, prompts=512, rollout_tp=4, minibatches=16, rollout_gpus=4,
                response=lognormal(717, 1.0, 20480), **VERL).data["regimes"]
    assert r["sync_colocated"]["breakdown_s"]["logprob_s"] == pytest.approx(88, rel=0.02)
    r = rl_step(QWEN_7B, H20, gpus=16, prompts=516, rollout_tp=2, minibatches=17, rollout_gpus=4,
                response=lognormal(635, 1.0, 20480), **VERL).data["regimes"]
    assert r["one_step_off"]["breakdown_s"]["logprob_s"] == pytest.approx(108, rel=0.02)


def test_verl_one_step_off_7b_16_h20():
    """rl-verl-one-step-off-7b-16gpu-*: colocate sync 749 s, one-step overlap 520 s (4 gen + 12 train), ±20%.
    What is tested is the step composition around the inferred old_log_prob: generation (doc generate_sequences
    247 s colocated, 458 s on 4 GPUs) and update_actor (286 s, 337 s)."""
    c = rl_step(QWEN_7B, H20, gpus=16, prompts=512, rollout_tp=4, minibatches=16, rollout_gpus=4,
                response=lognormal(717, 1.0, 20480), **VERL).data["regimes"]["sync_colocated"]
    assert c["step_s"] == pytest.approx(749, rel=0.20)
    assert c["breakdown_s"]["generate_s"] == pytest.approx(247, rel=0.20)
    o = rl_step(QWEN_7B, H20, gpus=16, prompts=516, rollout_tp=2, minibatches=17, rollout_gpus=4,
                response=lognormal(635, 1.0, 20480), **VERL).data["regimes"]["one_step_off"]
    assert o["step_s"] == pytest.approx(520, rel=0.20)
    assert o["breakdown_s"]["generate_s"] == pytest.approx(458, rel=0.20)


def _verl_fully_async_mean_response() -> float:
    """The mean response the doc's colocate rows imply (docs/advance/fully_async.md, volcengine/verl b178a3cd5, 7B
    table): old_log_prob 107.71 s on 32 H20 and 70.26 s on 64 is a fixed part plus W GPU·s of forward work / N;
    W/64 s is one forward over every token on 64 GPUs. The mean is the one at which our forward takes that long."""
    w = (107.71 - 70.26) * 64  # GPU·s: 107.71 = a + W/32, 70.26 = a + W/64
    assert 70.26 - w / 64 + w / 128 == pytest.approx(53.92, rel=0.05)  # the 128-GPU row (53.92 s), held out

    def logprob_s(mean):
        return rl_step(QWEN_7B, H20, gpus=64, prompts=512, rollout_tp=4, minibatches=16, regime="sync",
                       response=lognormal(mean, 1.0, 28 * 1024), **VERL).data["regimes"]["sync_colocated"][
                           "breakdown_s"]["logprob_s"]

    lo, hi = 300.0, 3000.0
    for _ in range(25):
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if logprob_s(mid) > w / 64 else (mid, hi)
    return mid


def test_verl_fully_async_7b_64_h20_sync():
    """rl-verl-fully-async-7b-64gpu-sync: colocate sync 365.28 s on 64 H20, ±25%, at the mean response the doc's own
    old_log_prob rows imply (derived here; the case file must hold the same input)."""
    import yaml

    import llmcalc.validation

    mean = round(_verl_fully_async_mean_response())
    cases = yaml.safe_load((Path(llmcalc.validation.__file__).parent / "cases" / "rl.yaml").read_text())
    case = next(c for c in cases if c["id"] == "rl-verl-fully-async-7b-64gpu-sync")
    assert case["inputs"]["rl"]["response"][0] == mean  # the case file's input is this derivation, not a fit
    r = rl_step(QWEN_7B, H20, gpus=64, prompts=512, rollout_tp=4, minibatches=16,
                response=lognormal(mean, 1.0, 28 * 1024), rollout_gpus=32, staleness=1, **VERL).data
    assert r["regimes"]["sync_colocated"]["step_s"] == pytest.approx(365.28, rel=0.25)


@pytest.mark.xfail(strict=True, reason="fully async 322 s vs 189 s: the doc's async trainer does 0.59x the colocated "
                   "update work per step (156.98 s x 32 = 5,023 vs 133.41 s x 64 = 8,538 GPU·s for the same 512 x 16 "
                   "samples); ours gives the same tokens the same update. Step scope, dropped samples, recompute, "
                   "rollout log-probs and offload checked in verl's code and ruled out (rl.yaml reason); the lengths "
                   "that remain are unpublished")
def test_verl_fully_async_7b_64_h20_async():
    a = rl_step(QWEN_7B, H20, gpus=64, prompts=512, rollout_tp=4, minibatches=16, rollout_logprobs=True,
                response=lognormal(1371, 1.0, 28 * 1024), rollout_gpus=32, staleness=1, **VERL).data
    assert a["regimes"]["fully_async"]["step_s"] == pytest.approx(189.26, rel=0.25)


def test_verl_one_step_off_composition_formulas():
    """The README's composition formulas hold by construction in our step: colocated step = gen + old_log_prob +
    update_actor (+ sync); one-step-off step = max(gen, trainer) + sync, wait_prev_gen = the unhidden part."""
    r = rl_step(QWEN_7B, H20, gpus=16, prompts=512, rollout_tp=4, minibatches=16, rollout_gpus=4,
                response=lognormal(717, 1.0, 20480), **VERL).data
    c, o = r["regimes"]["sync_colocated"], r["regimes"]["one_step_off"]
    b = c["breakdown_s"]
    assert c["step_s"] == pytest.approx(b["generate_s"] + b["logprob_s"] + b["train_s"] + b["sync_s"], rel=1e-9)
    b = o["breakdown_s"]
    assert o["step_s"] == pytest.approx(b["wait_generate_s"] + b["logprob_s"] + b["train_s"] + b["sync_s"], rel=1e-9)
    # generation on 4 of 16 GPUs is slower than colocated on 16 (the README: 247 -> 458 s) but hidden
    assert o["breakdown_s"]["generate_s"] > c["breakdown_s"]["generate_s"]


# ---------------------------------------------------------------- NeMo-RL v0.6 (docs/about/performance-summary.md)
# Qwen3-30B-A3B GRPO, 64 prompts x 32, max total sequence 4,096, avg generation 3,203 tokens; 512 sequences per
# optimizer step (4 steps; sequence packing), megatron activation_checkpointing false (examples/configs/
# grpo_math_1B.yaml). H100 recipes (examples/configs/recipes/llm/performance/grpo-qwen3-30ba3b-4n8g*.yaml): vLLM
# TP2, training EP8, the 1-off trainer PP2; GB200 (4n4g*.yaml): vLLM TP1, EP16 (on-policy) and EP8 (1-off trainer
# on 8 GPUs). Every step also runs the reference policy's log-probs (grpo_math_1B.yaml reference_policy_kl_penalty
# 0.01; nemo_rl/algorithms/grpo.py at v0.6.0 computes get_reference_policy_logprobs in both the sync and the async
# loop unless skip_reference_policy_logprobs_calculation, which no recipe sets): ref=True. We take prompt 300 and
# lengths lognormal(3203, cv 0.3) capped at 4096 - 300.
NEMO = dict(prompts=64, samples=32, prompt_len=300, response=lognormal(3203, 0.3, 4096 - 300), staleness=1,
            minibatches=4, recompute="none", ref=True)


def test_nemo_h100_rows_reproduce_the_calibration():
    """CALIBRATION rows (not a test of accuracy): on-policy 192 s, 1-off 152 s on 32 H100."""
    on = rl_step(QWEN3_30B, H100, gpus=32, rollout_gpus=16, rollout_tp=2, train_ep=8, **NEMO).data["regimes"]
    off = rl_step(QWEN3_30B, H100, gpus=32, rollout_gpus=16, rollout_tp=2, train_ep=8, train_pp=2,
                  **NEMO).data["regimes"]
    assert on["sync_colocated"]["step_s"] == pytest.approx(192, rel=0.15)
    assert off["one_step_off"]["step_s"] == pytest.approx(152, rel=0.15)  # 3 rows, 3 parameters: a fit, not exact


def _gb200():
    on = rl_step(QWEN3_30B, GB200, gpus=16, rollout_gpus=8, rollout_tp=1, train_ep=16, **NEMO).data["regimes"]
    off = rl_step(QWEN3_30B, GB200, gpus=16, rollout_gpus=8, rollout_tp=1, train_ep=8, **NEMO).data["regimes"]
    return on["sync_colocated"]["step_s"], off["one_step_off"]["step_s"]


@pytest.mark.xfail(strict=True, reason="ours 1-off 146 s < on-policy 153 s, NeMo-RL 301 > 221 s: our GB200 MoE "
                   "trainer (log-probs + update 57 s on 16 GPUs) is below the >= 96 s NeMo-RL's v0.5 GB200 rows imply "
                   "(1-off on 16 + 16 = 136 s, on-policy 232 s); a trainer 2.3x ours would give 253 > 221 s, but no "
                   "source gives the factor (rl.yaml reason: Grace host time refuted by the Llama-3.1-8B GB200 rows)")
def test_nemo_gb200_small_pool_async_is_slower():
    """The NEGATIVE anchor (TEST rows): on 16 GB200 split 8 + 8, 1-off (301 s) is slower than on-policy (221 s)."""
    on, off = _gb200()
    assert off > on


@pytest.mark.xfail(strict=True, reason="on-policy 153.3 s vs 221 s (-31%), 1-off 146.1 s vs 301 s (-51%), ±25%: "
                   "the MoE trainer on GB200 (ours 57 s on 16 GPUs, at the H100-calibrated efficiency) would have to "
                   "take 127-138 s to fit NeMo-RL's v0.5 and v0.6 GB200 rows; the dense Llama-3.1-8B GB200 rows fit as "
                   "they are")
def test_nemo_gb200_within_25pct():
    on, off = _gb200()
    assert on == pytest.approx(221, rel=0.25)
    assert off == pytest.approx(301, rel=0.25)


# ---------------------------------------------------------------- checkpoint-engine (MoonshotAI, README benchmark)
# Broadcast times (gather-metas excluded) of whole checkpoints to every GPU of the inference instances. Bytes from
# the case notes: 235B BF16 = 470 GB, Kimi-K2 ~1T FP8 = 1.04 TB; GLM-4.5-Air 106B BF16 = 212 GB. DeepSeek-V3.1:
# examples/update.py (split_tensors) broadcasts every tensor of the HF index, and a DeepSeek-V3-architecture HF
# checkpoint holds 685B parameters including the 14B MTP module (DeepSeek-V3 README; fact sheet row M17), >= 1 byte
# each in FP8: 685 GB, a lower bound (was 671 GB, the main model alone). Every rank owns 1/world_size of the tensors
# (split_tensors) and a bucket never spans two owner ranks (checkpoint_engine/ps.py _gen_h2d_buckets, 7185b555):
# owners = GPUs. The Qwen3-235B row CALIBRATES reload_bw; the other five are tests (±40%).
CKPT = [  # id, hardware, GPUs, bytes, bucket GiB, measured broadcast s
    ("glm-4.5-air-8xh800", H800, 8, 212e9, 3.02, 3.47),
    ("qwen3-235b-8xh800 (calibration)", H800, 8, 470e9, 2.67, 6.22),
    ("deepseek-v3.1-16xh20", H20, 16, 685e9, 5.39, 10.19),
    ("kimi-k2-16xh20", H20, 16, 1.04e12, 5.89, 14.36),
    ("deepseek-v3.1-256xh20", H20, 256, 685e9, 8.0, 11.33),  # -38.5%: inside ±40% by 1.5 points only
    ("kimi-k2-256xh20", H20, 256, 1.04e12, 8.0, 16.04),
]


def _ckpt(hw, gpus, size, bucket_gib, owners="gpus"):
    s = RLSettings(bucket_bytes=bucket_gib * 2 ** 30)
    return weight_sync(QWEN_7B, hw, colocated=False, trainer_gpus=0, rollout_gpus=gpus, settings=s, size_bytes=size,
                       owners=gpus if owners == "gpus" else owners)


@pytest.mark.parametrize("case, hw, gpus, size, bucket_gib, measured", CKPT)
def test_checkpoint_engine_broadcast(case, hw, gpus, size, bucket_gib, measured):
    t = _ckpt(hw, gpus, size, bucket_gib)[-1].value
    assert t == pytest.approx(measured, rel=0.01 if "calibration" in case else 0.40)


@pytest.mark.parametrize("gpus, bucket_gib, buckets", [
    (256, 8.0, 256),  # 685 GB / 256 ranks = 2.68 GB per rank < one 8 GiB bucket: one bucket per rank
    (16, 5.39, 128),  # 685 GB / 16 = 42.8 GB per rank / 5.79 GB = 7.4: 8 buckets per rank
])
def test_checkpoint_engine_buckets_per_owner_rank(gpus, bucket_gib, buckets):
    """ps.py _gen_h2d_buckets starts a new bucket for every owner rank: owners x ceil(share / bucket) buckets
    (DeepSeek-V3.1, 685 GB), each paying RLSettings.bucket_latency_s (1 ms); one stream would pay ceil(S / bucket)."""
    figs = {f.key: f.value for f in _ckpt(H20, gpus, 685e9, bucket_gib)}
    assert figs["sync/buckets_s"] == pytest.approx(buckets * 1e-3)
    one_stream = {f.key: f.value for f in _ckpt(H20, gpus, 685e9, bucket_gib, owners=None)}
    assert one_stream["sync/buckets_s"] == pytest.approx(-(-685e9 // (bucket_gib * 2 ** 30)) * 1e-3)


def test_checkpoint_engine_time_barely_grows_with_fan_out():
    """The README's observation: 16 -> 256 H20 adds little (DeepSeek-V3.1 10.19 -> 11.33 s, +11%); ours grows only
    by the extra buckets of 256 owner ranks (128 -> 256 at 8 GiB), +2%."""
    t16, t256 = (_ckpt(H20, n, 685e9, 8.0)[-1].value for n in (16, 256))
    assert 1.0 < t256 / t16 < 1.25
