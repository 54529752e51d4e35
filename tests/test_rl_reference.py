"""Independent references for the RL wing (llmcalc.rl), written here without the code under test for the quantity
checked: Monte-Carlo draws of response lengths, a discrete-event simulation of continuous batching, and an event
simulation of AReaL's staleness-bounded loop. Only inputs (a distribution's μ and σ, the engine's step-time law
``DecodeCost.step_s`` taken as a given function) come from llmcalc; every expected number is computed here.
"""

import math

import numpy as np
import pytest

from llmcalc.rl.lengths import lognormal

# ---------------------------------------------------------------- 1. lengths: the longest of N, order statistics

NS = [1, 2, 10, 100, 1000, 10_000, 100_000]
CVS = [0.0, 0.5, 1.0, 2.0, 3.0]


def _normal_maxima(n: int, rng) -> np.ndarray:
    """Maxima of n standard normals, drawn directly (as many batches as ~2·10⁷ draws allow, at least 400)."""
    reps = int(min(200_000, max(400, 2e7 // n)))
    out = np.empty(reps)
    chunk = max(1, int(4e6 // n))
    for a in range(0, reps, chunk):
        b = min(reps, a + chunk)
        out[a:b] = rng.standard_normal((b - a, n)).max(axis=1)
    return out


@pytest.fixture(scope="module")
def maxima():
    rng = np.random.default_rng(20261130)
    return {n: _normal_maxima(n, rng) for n in NS}


@pytest.mark.parametrize("n", NS)
@pytest.mark.parametrize("cv", CVS)
def test_expected_longest_of_n_matches_monte_carlo(maxima, n, cv):
    """max of n lognormals = e^{μ + σ·max of n normals} (e^x rises), so one set of normal maxima serves every cv.
    Tolerance: 4 standard errors of the Monte-Carlo mean, and 0.2% for the quadrature.
    The old Blom formula F⁻¹((n − 0.375)/(n + 0.25)) failed this at every cv > 0: at n = 1 it returned the median
    e^μ = mean/√(1 + cv²) (0.71 × the mean at cv 1, 0.32 × at cv 3) and at n = 10⁵, cv 3, 0.885 × E[max]."""
    d = lognormal(1000, cv)
    x = np.exp(d.mu + d.sigma * maxima[n])
    x = np.maximum(x, 1.0)  # a response has at least one token (as LengthDist draws)
    se = x.std() / math.sqrt(len(x))
    assert abs(d.expected_max(n) - x.mean()) <= 4 * se + 2e-3 * x.mean(), (d.expected_max(n), x.mean(), se)


@pytest.mark.parametrize("n", [1, 10, 1000, 100_000])
@pytest.mark.parametrize("cv, cap", [(1.0, 3000.0), (3.0, 3000.0), (3.0, 20000.0), (0.5, 1500.0)])
def test_expected_longest_clipped_at_max_response(maxima, n, cv, cap):
    """--max-response clips each response at the cap: max of min(X_i, cap) = min(max X_i, cap)."""
    d = lognormal(1000, cv, cap=cap)
    x = np.minimum(np.maximum(np.exp(d.mu + d.sigma * maxima[n]), 1.0), cap)
    se = x.std() / math.sqrt(len(x))
    assert abs(d.expected_max(n) - x.mean()) <= 4 * se + 2e-3 * x.mean()
    assert d.expected_max(n) <= cap


@pytest.mark.parametrize("n, cv, cap", [(1, 1.0, None), (8, 2.0, None), (16, 1.0, 4000.0), (100, 3.0, None),
                                        (300, 1.0, 30000.0)])
def test_cohorts_are_the_batch_order_statistics(n, cv, cap):
    """The cohorts stand for one batch sorted: each cohort's length is the mean over its ranks of the expected
    order statistics. Reference: sort many drawn batches, average each rank, group the ranks as the cohorts'
    counts say (longest first). And the batch's tokens are n·E[X]: the old Blom cohorts gave n·e^μ at n = 1."""
    d = lognormal(1000, cv, cap=cap)
    lengths, counts = d.cohorts(n)
    rng = np.random.default_rng(7)
    reps = int(min(100_000, 2e7 // n))
    x = np.exp(d.mu + d.sigma * rng.standard_normal((reps, n)))
    x = np.maximum(x, 1.0)
    if cap:
        x = np.minimum(x, cap)
    desc = -np.sort(-x, axis=1)  # longest first, as the cohorts
    edges = np.concatenate([[0], np.cumsum(counts).astype(int)])
    for j in range(len(counts)):
        block = desc[:, edges[j]:edges[j + 1]].mean(axis=1)
        se = block.std() / math.sqrt(reps)
        assert abs(lengths[j] - block.mean()) <= 4 * se + 2e-3 * block.mean(), (j, lengths[j], block.mean(), se)
    tokens = x.sum(axis=1)
    assert abs(np.dot(lengths, counts) - tokens.mean()) <= 4 * tokens.std() / math.sqrt(reps) + 1e-3 * tokens.mean()


@pytest.mark.parametrize("n", [4096, 1 << 20])
def test_large_batch_cohorts_keep_the_mean_and_the_longest(n):
    """Large n: the bulk's cohorts (quantile bands) and the tail's (exact order statistics) together keep n·E[X] to
    0.1%, E[X] from the lognormal's closed form e^{μ+σ²/2} (cap far out); the longest is the expected maximum."""
    d = lognormal(2000, 1.0, cap=1e7)
    lengths, counts = d.cohorts(n)
    assert counts.sum() == n
    assert np.dot(lengths, counts) / n == pytest.approx(2000, rel=1e-3)
    assert lengths[0] == pytest.approx(d.expected_max(n), rel=1e-12)
    assert np.all(np.diff(lengths) <= 1e-9 * lengths[0])  # longest first


# ---------------------------------------------------------------- 2. the drain: continuous batching, event by event

def _engine():
    from llmcalc import load_hardware, load_model
    from llmcalc.inference.latency import Deployment

    return Deployment(load_model("qwen2.5-7b"), load_hardware("h100-sxm"))


def _cost(slots: int, prompt: float = 256.0):
    from llmcalc.rl.phases import DEFAULT_SETTINGS as S
    from llmcalc.rl.rollout import DecodeCost

    # the step-time law, a given function step_s(b, ctx), with the host times rl_step uses
    return DecodeCost(_engine(), slots, S.decode_step_overhead_s, prompt, S.decode_overhead_per_seq_s)


def _golden(n: int) -> list[int]:
    """The admission order llmcalc.rl.rollout.interleave states (cohort j at position frac(j·φ)): an input here."""
    phi = (math.sqrt(5) - 1) / 2
    return sorted(range(n), key=lambda j: (j * phi) % 1.0)


def des_makespan(step_s, prefill_s: float, slots: int, engines: int, prompt: float, order) -> float:
    """Continuous batching, one decode step at a time (Orca §3: every running sequence gains one token a step; a
    finished one frees its slot at once and the next waiting one is prefilled into it). Each engine has its own
    clock; a waiting sequence goes to the engine whose slot frees first. ``order``: lengths in admission order.
    A step at batch b with running sequences of mean context c takes step_s(b, c + ½) (context grows within it)."""
    import heapq

    queue = [float(x) for x in order][::-1]
    clock, run = [0.0] * engines, [[] for _ in range(engines)]  # run[e]: [tokens left, tokens generated]
    e = 0
    while queue and any(len(r) < slots for r in run):  # the first fill, round-robin
        if len(run[e]) < slots:
            run[e].append([queue.pop(), 0])
            clock[e] += prefill_s
        e = (e + 1) % engines
    events = [(clock[i], i) for i in range(engines) if run[i]]
    heapq.heapify(events)
    end = 0.0
    while events:
        t, i = heapq.heappop(events)
        r = run[i]
        dk, b = int(min(x[0] for x in r)), len(r)
        ctx = prompt + sum(x[1] for x in r) / b
        for k in range(dk):
            t += step_s(b, ctx + k + 0.5)
        for x in r:
            x[0] -= dk
            x[1] += dk
        r = run[i] = [x for x in r if x[0] > 0]
        while queue and len(r) < slots:
            r.append([queue.pop(), 0])
            t += prefill_s
        if r:
            heapq.heappush(events, (t, i))
        end = max(end, t)
    return end


def _batch(rng, n, cv, cap, mean=1000.0):
    s = math.sqrt(math.log(1 + cv * cv))
    x = np.maximum(np.rint(np.exp(math.log(mean) - s * s / 2 + s * rng.standard_normal(n))), 1.0)
    return np.minimum(x, cap) if cap else x


@pytest.mark.parametrize("slots, engines, lengths", [
    (64, 1, [1000.0] * 512),  # no tail: 8 full waves
    (64, 1, [1500.0] * 256 + [500.0] * 256),  # two classes, more sequences than slots
    (32, 1, list(np.random.default_rng(1).integers(700, 1300, 512).astype(float))),
    (64, 4, [1000.0] * 512),
    (64, 1, [6000.0] + [300.0] * 40),  # one long sample: it drains alone at batch 1
])
def test_drain_equals_event_simulation_on_one_batch(slots, engines, lengths):
    """The same batch, in the admission order the code states, through the event-by-event reference: the closed
    form (cohort stretches of at most 256 steps timed at their midpoint context, engines balanced fluidly) agrees
    within 0.5% where the fluid balance is exact (one engine, or equal lengths on several)."""
    from llmcalc.rl.rollout import Pool, drain_time

    cost = _cost(slots)
    n = len(lengths)
    got = drain_time(Pool(cost, engines, 1), np.asarray(lengths), np.ones(n))["time_s"]
    ref = des_makespan(cost.step_s, cost.prefill_s, slots, engines, 256.0, [lengths[j] for j in _golden(n)])
    assert got == pytest.approx(ref, rel=5e-3)


@pytest.mark.parametrize("cv, cap, n, slots", [(1.0, 8000.0, 64, 64), (3.0, 16000.0, 100, 128), (0.3, None, 48, 64)])
def test_drain_of_a_batch_that_fits_matches_the_expected_makespan(cv, cap, n, slots):
    """Every sample admitted at once (n ≤ slots, one engine): the order cannot matter, and the drain over the
    distribution's cohorts (expected order statistics) must give the expected makespan of random batches (event
    reference, 400 batches; 4 standard errors + 2%: E[f(X_(1)..X_(n))] vs f(E[X_(1)], …) for a step time that
    is affine in the batch and the context, with max() between compute and memory)."""
    from llmcalc.rl.lengths import lognormal
    from llmcalc.rl.rollout import Pool, drain_time

    cost = _cost(slots)
    d = lognormal(1000, cv, cap)
    got = drain_time(Pool(cost, 1, 1), *d.cohorts(n))["time_s"]
    rng = np.random.default_rng(11)
    ms = np.array([des_makespan(cost.step_s, cost.prefill_s, slots, 1, 256.0, _batch(rng, n, cv, cap))
                   for _ in range(400)])
    assert abs(got - ms.mean()) <= 4 * ms.std() / math.sqrt(len(ms)) + 0.02 * ms.mean(), (got, ms.mean())


@pytest.mark.xfail(strict=True, reason="the admission order interleave() states as 'a stand-in for random order' "
                   "puts the longest cohort first (frac(0·φ) = 0), the most favourable order for the makespan (the "
                   "longest-processing-time-first rule, Graham 1969): with more samples than slots the drain runs "
                   "3-12% below the expected makespan of random orders (one engine; cv 0.3-3). Not changed here: the "
                   "host-time constants were calibrated with this drain (RLSettings), so fixing it needs a refit")
@pytest.mark.parametrize("cv, cap", [(1.5, 16000.0)])
def test_drain_of_many_waves_matches_random_order(cv, cap):
    from llmcalc.rl.lengths import lognormal
    from llmcalc.rl.rollout import Pool, drain_time

    n, slots = 512, 32
    cost = _cost(slots)
    d = lognormal(1000, cv, cap)
    got = drain_time(Pool(cost, 1, 1), *d.cohorts(n))["time_s"]
    rng = np.random.default_rng(5)
    ms = np.array([des_makespan(cost.step_s, cost.prefill_s, slots, 1, 256.0, rng.permutation(_batch(rng, n, cv, cap)))
                   for _ in range(60)])
    assert abs(got - ms.mean()) <= 4 * ms.std() / math.sqrt(len(ms)) + 0.02 * ms.mean(), (got, ms.mean())


# ---------------------------------------------------------------- 3. AReaL's staleness bound, as an event system

def areal_reference(step_s, prefill_s: float, slots: int, prompt: float, template, batch: int, t_train: float,
                    t_sync: float, eta, partial: bool, steps: int, reprefill_s: float | None = None,
                    measured: int | None = None) -> dict:
    """One engine of ``slots`` sequences and a trainer on other GPUs, event by event, in whole decode steps.

    - admission (AReaL's StalenessManager.get_capacity, inclusionAI/AReaL areal/core/staleness_manager.py: capacity
      = (η + version + 1)·B − (accepted + running); the paper's ⌊(N_r − 1)/B⌋ ≤ i + η): start the next rollout of
      the cyclic ``template`` while a slot is free and started < B·(version + η + 1); each costs one prefill;
    - the trainer takes the first B completed rollouts as soon as it is free and they are there, trains t_train,
      then version + 1 and the weights are synced for t_sync, which pauses the engine; with ``partial`` the running
      rollouts then recompute their KV (``reprefill_s``, default ``prefill_s``, × context / prompt each, the
      prompt not shared); without it the sync waits for the engine to
      drain, and nothing is admitted meanwhile;
    - lag of a trained rollout = version when trained − version when started.
    Period over the last ``measured`` trainer steps (default: the second half of ``steps``; the first half is
    warm-up), lags over the second half."""
    import heapq
    from collections import deque

    reprefill_s = prefill_s if reprefill_s is None else reprefill_s
    t, k = 0.0, 0  # engine clock (s) and token-step clock (every running sequence gains one token a step)
    run: list = []  # heap of (token step it ends, serial, token step it started, version at start)
    serial = cursor = started = version = 0
    buffer: deque = deque()  # (completion time, version at start), in completion order
    ready, training_until, pending = 0.0, None, False
    ends, lags = [], []  # lags: (trainer step index, lag)
    while len(ends) < steps:
        if training_until is not None and training_until <= t:  # the trainer's step ended (while the engine ran)
            end, training_until = training_until, None
            version += 1
            ends.append(end)
            if partial or not run:
                ready = end + t_sync
                t = max(t, ready)  # generation paused for the sync
                if partial:
                    t += sum(reprefill_s * (prompt + k - k0) / prompt for _, _, k0, _ in run)
            else:
                pending = True
            continue
        if not pending:
            while len(run) < slots and (eta is None or started < batch * (version + eta + 1)):
                heapq.heappush(run, (k + template[cursor], serial, k, version))
                serial, cursor, started = serial + 1, (cursor + 1) % len(template), started + 1
                t += prefill_s
        if training_until is None and not pending and len(buffer) >= batch:
            start = max(ready, buffer[batch - 1][0])
            for _ in range(batch):
                lags.append((len(ends), version - buffer.popleft()[1]))
            training_until = start + t_train
            continue
        if run:  # decode steps until the next finish, or past the trainer's end (a step is not interrupted)
            b, ctx = len(run), prompt + k - sum(x[2] for x in run) / len(run)
            todo = run[0][0] - k
            while todo > 0:
                t += step_s(b, ctx + 0.5)
                ctx, k, todo = ctx + 1, k + 1, todo - 1
                if training_until is not None and t >= training_until:
                    break
            while run and run[0][0] <= k:
                buffer.append((t, heapq.heappop(run)[3]))
            continue
        if pending:  # drained: sync now
            pending, ready = False, t + t_sync
            t = ready
            continue
        assert training_until is not None, "stalled"
        t = training_until  # the engine idles until the trainer ends
    half = steps // 2
    n = steps - half if measured is None else measured
    late = [lag for i, lag in lags if i >= half]
    return {"period_s": (ends[-1] - ends[-1 - n]) / n, "staleness_mean": float(np.mean(late)), "ends": ends,
            "staleness_max": int(max(late))}


SPLITS = [(32, 5.0), (32, 30.0), (128, 5.0), (128, 30.0)]  # (rollout slots, trainer step s): pools of other sizes


def _areal_case(slots, t_train, cv, eta, partial, steps):
    from llmcalc.rl.loop import simulate_async
    from llmcalc.rl.rollout import Pool

    cost = _cost(slots)
    lengths = np.sort(_batch(np.random.default_rng(3), 64, cv, 8000.0, mean=800.0))[::-1]
    template = [float(lengths[j]) for j in _golden(len(lengths))]  # the code's admission order, as an input
    ref = areal_reference(cost.step_s, cost.prefill_s, slots, 256.0, template, 64, t_train, 1.0, eta, partial, 60,
                          reprefill_s=cost.reprefill_s)  # the code's re-prefill cost, a given as step_s
    got = simulate_async(Pool(cost, 1, 1), lengths, np.ones(len(lengths)), t_train, 1.0, eta, partial, steps=steps)
    return got, ref


@pytest.mark.parametrize("eta", [0, 1, 2, 4, 8])
@pytest.mark.parametrize("slots, t_train", SPLITS)
@pytest.mark.parametrize("cv", [0.3, 1.5])
def test_async_loop_matches_event_reference(eta, slots, t_train, cv):
    """Interruptible rollouts. Period (so throughput B/period) within 0.5%, mean lag within 0.02, max lag within 1
    (a decode step straddling a trainer end falls on either side of it). Before the trainer had its own clock it
    started only when the pool's clock, carried on by the prefills after a sync, reached it: trainer-bound periods
    came out t_train + t_sync + those prefills (+0.5% to +2.3% here); and the lag was averaged over the warm-up
    too (η = 8: 5.3 where every sample of the steady state lags 8)."""
    got, ref = _areal_case(slots, t_train, cv, eta, True, 60)
    assert got["period_s"] == pytest.approx(ref["period_s"], rel=5e-3)
    assert got["staleness_mean"] == pytest.approx(ref["staleness_mean"], abs=0.02)
    assert abs(got["staleness_max"] - ref["staleness_max"]) <= 1


@pytest.mark.parametrize("eta", [1, 4])
@pytest.mark.parametrize("slots, t_train", [(32, 30.0), (128, 5.0)])
def test_async_loop_without_partial_rollouts_matches_event_reference(eta, slots, t_train):
    """Without interruptible rollouts each sync waits for the pool to drain; lags stay ≤ η."""
    got, ref = _areal_case(slots, t_train, 1.5, eta, False, 60)
    assert got["period_s"] == pytest.approx(ref["period_s"], rel=5e-3)
    assert got["staleness_mean"] == pytest.approx(ref["staleness_mean"], abs=0.02)
    assert got["staleness_max"] == ref["staleness_max"] <= eta


@pytest.mark.parametrize("slots, t_train", SPLITS)
def test_eta_zero_is_the_synchronous_loop(slots, t_train):
    """η = 0: generate B from empty (the drain of the reference in §2), train, sync, repeat: period =
    makespan + t_train + t_sync, and no lag."""
    cost = _cost(slots)
    lengths = np.sort(_batch(np.random.default_rng(3), 64, 1.5, 8000.0, mean=800.0))[::-1]
    template = [float(lengths[j]) for j in _golden(len(lengths))]
    sync = des_makespan(cost.step_s, cost.prefill_s, slots, 1, 256.0, template) + t_train + 1.0
    got, ref = _areal_case(slots, t_train, 1.5, 0, True, 60)
    assert ref["period_s"] == pytest.approx(sync, rel=1e-3)
    assert got["period_s"] == pytest.approx(sync, rel=5e-3)
    assert got["staleness_max"] == ref["staleness_max"] == 0


@pytest.mark.parametrize("eta", [1, 2, 4])
@pytest.mark.parametrize("slots, t_train, cv", [(128, 5.0, 1.5), (32, 30.0, 1.5), (128, 30.0, 0.3)])
def test_default_steps_reach_the_steady_state(eta, slots, t_train, cv):
    """The simulation's own number of steps (what rl_step runs) must get past the warm-up: its period within 1% of
    the 60-step reference's."""
    got, ref = _areal_case(slots, t_train, cv, eta, True, None)
    assert got["period_s"] == pytest.approx(ref["period_s"], rel=1e-2)


# ---------------------------------------------------------------- 4. the limits, as properties

from hypothesis import assume, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


def _rl(**kw):
    from llmcalc import load_hardware, load_model
    from llmcalc.rl.step import rl_step

    return rl_step(load_model("qwen2.5-7b"), load_hardware("h100-sxm"), prompt_len=256, minibatches=1, **kw).data


def _trainer_s(reg: dict) -> float:
    b = reg["breakdown_s"]
    return b["score_s"] + b["logprob_s"] + b["critic_s"] + b["train_s"]


@settings(max_examples=8, deadline=None)
@given(gpus=st.sampled_from([8, 16]), prompts=st.sampled_from([32, 64]), samples=st.sampled_from([4, 8]),
       length=st.sampled_from([500, 2000]), eta=st.sampled_from([1, 2, 4]))
def test_no_tail_free_sync_regimes_equal_the_event_references(gpus, prompts, samples, length, eta):
    """Equal lengths, free weight sync, the searched split. Every engine then holds the same sequences, so one
    engine with B/engines of them stands for the pool (exact, no fluid assumption) and the references of §2 and
    §3 apply: sync colocated = the drain on all GPUs + the trainer on all, with no idle; async at split K = the
    AReaL reference's period with the trainer the code gives N − K GPUs (its time an input here). The two then
    differ by the idle the model names plus the work the split saves: T_async − T_sync = (idle_async + W_async −
    W_sync)/N, W the pools' busy GPU-seconds (the test in tests/test_rl.py, at one size; here over sizes and η).
    Without interruptible rollouts: with them, a batch finishing a few ms before or after a trainer step ends
    (whole decode steps here, fractional in the code) skips or pays a whole re-prefill, and the period jumps by up
    to 6% either way (equal lengths make every sample of a batch finish together)."""
    from llmcalc.rl.lengths import table
    from llmcalc.rl.phases import RLSettings

    d = _rl(gpus=gpus, prompts=prompts, samples=samples, response=table([length]), staleness=eta,
            settings=RLSettings(weight_sync=False), partial=False)
    batch, k = prompts * samples, d["split"]["rollout_gpus"]
    assume(batch % gpus == 0 and batch % k == 0)
    cost = _cost(d["slots_per_engine"])
    prefill = cost.prefill_s / samples  # the G samples of a prompt share its prefill (prefix caching)
    sync, asy = d["regimes"]["sync_colocated"], d["regimes"]["fully_async"]
    gen = des_makespan(cost.step_s, prefill, cost.slots, 1, 256.0, [float(length)] * (batch // gpus))
    assert sync["step_s"] == pytest.approx(gen + _trainer_s(sync), rel=5e-3)
    assert sync["idle_gpu_s"] == pytest.approx(0.0, abs=1e-9 * gpus * sync["step_s"])
    ref = areal_reference(cost.step_s, prefill, cost.slots, 256.0, [float(length)], batch // k, _trainer_s(asy),
                          0.0, eta, False, 120, measured=60)  # 60: whole cycles of 2-6
    assert asy["step_s"] == pytest.approx(ref["period_s"], rel=5e-3)
    w_sync = sync["rollout_gpu_s"] + sync["trainer_gpu_s"]
    w_async = asy["rollout_gpu_s"] + asy["trainer_gpu_s"]
    assert asy["step_s"] - sync["step_s"] == pytest.approx((asy["idle_gpu_s"] + w_async - w_sync) / gpus,
                                                           rel=1e-6, abs=1e-9 * sync["step_s"])


@settings(max_examples=6, deadline=None)
@given(gpus=st.sampled_from([8, 16]), prompts=st.sampled_from([32, 64]), samples=st.sampled_from([4, 8]),
       eta=st.sampled_from([1, 2, 4, 8]), cvs=st.lists(st.sampled_from([0.0, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0]),
                                                       min_size=2, max_size=2, unique=True))
def test_speedup_at_the_best_split_rises_with_the_tail(gpus, prompts, samples, eta, cvs):
    """Same mean, heavier tail (higher cv): the synchronous step waits for a longer longest sample, the async pool
    keeps its slots full, so async's speedup over sync colocated, each at its own searched split, does not fall
    (tests/test_rl.py checks pairs at one fixed split)."""
    lo, hi = sorted(cvs)
    s = [_rl(gpus=gpus, prompts=prompts, samples=samples, response=lognormal(1500, cv), staleness=eta)["speedup"][
        "fully_async"] for cv in (lo, hi)]
    assert s[1] >= s[0] * (1 - 1e-9)


@pytest.mark.parametrize("cv", [1e100, 1e200, 1.7e308])
def test_huge_cv_is_finite_figures_not_a_traceback(cv):
    """cv² overflows past 1.3e154: σ² = ln(1 + cv²) is taken as 2·ln cv + ln(1 + cv⁻²) (the same number). The step
    then reports finite figures: nearly every response is one token, a few hit the cap (σ² = 2·ln(1e200) = 921)."""
    d = lognormal(3000, cv)
    assert d.sigma == pytest.approx(math.sqrt(2 * math.log(cv)), rel=1e-12)
    assert d.mu == pytest.approx(math.log(3000) - math.log(cv), rel=1e-12)
    r = _rl(gpus=8, prompts=8, samples=4, response=lognormal(3000, cv, cap=8192), staleness=1)
    assert all(math.isfinite(x["step_s"]) and x["step_s"] > 0 for x in r["regimes"].values())
    assert 1 <= r["response_mean"] <= r["response_expected_max"] <= 8192


@pytest.mark.parametrize("values, cap", [([1000, 2000, 4000, 16000], None), ([1000, 2000, 4000, 16000], 3000.0),
                                         ([1, 100000], 8192.0), ([300, 100, 200], None), ([5000], 4000.0)])
def test_table_mean_is_the_mean_of_what_is_drawn(values, cap):
    """A table's lengths are drawn as LengthDist.quantile states (linear between the sorted values, clipped at the
    cap): its mean must be theirs, as the cohorts' tokens are. Reference: the mean of 10⁶ draws F⁻¹(U) computed
    here with numpy's own interpolation. (The arithmetic mean said 5,750 for the first table, whose draws average
    (500 + 2000 + 4000 + 8000)/3 = 4,833.)"""
    from llmcalc.rl.lengths import table

    d = table(values, cap)
    u = np.random.default_rng(2).random(1_000_000)
    x = np.interp(u * (len(values) - 1), np.arange(len(values)), np.sort(np.asarray(values, float)))
    x = np.minimum(x, cap) if cap else x
    assert d.mean() == pytest.approx(x.mean(), rel=3e-3)
    lengths, counts = d.cohorts(16)
    assert np.dot(lengths, counts) / 16 == pytest.approx(d.mean(), rel=2e-3)
    if values == [1000, 2000, 4000, 16000] and cap is None:
        assert d.mean() == pytest.approx((500 + 2000 + 4000 + 8000) / 3, rel=1e-12)


def test_log_phi_matches_math_erfc():
    """llmcalc.rl.lengths.log_phi (a cubic Hermite table, the order statistics' integrand) against the definition
    ln Φ(z) = ln(½·erfc(−z/√2)) by math.erfc, point by point; past the table's ends against the values the
    definition tends to (Φ(−z) underflows to 0 past z ≈ 38.5; ln Φ(z) ~ −z²/2 − ln(−z) − ½ ln 2π as z → −∞)."""
    from llmcalc.rl.lengths import log_phi

    z = np.concatenate([np.linspace(-37.4, 37.4, 20001), np.random.default_rng(5).uniform(-8, 8, 20000)])
    ref = np.array([math.log(0.5 * math.erfc(-x / math.sqrt(2))) for x in z.tolist()])
    assert np.max(np.abs(log_phi(z) - ref)) < 1e-9
    far = np.array([-60.0, -200.0])
    lead = -far * far / 2 - np.log(-far) - 0.5 * math.log(2 * math.pi)
    assert np.allclose(log_phi(far), lead, rtol=0, atol=1e-3)
    assert np.all(log_phi(np.array([40.0, 1e3])) == 0.0)
