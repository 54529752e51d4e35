"""One RL post-training step, synchronous and asynchronous, side by side (``llmcalc rl``).

A step trains on B = P prompts × G samples (GRPO/RLOO groups; PPO with G = 1). Four regimes:

- ``sync_colocated`` (verl hybrid engine): all GPUs generate, then score, log-prob and train, then reshard:
  ``step = generate(all) + trainer(all) + reshard``. Generation ends with the longest sample (the drain);
- ``sync_disaggregated``: K GPUs generate, N − K train, each idle while the other works:
  ``step = generate(K) + trainer(N − K) + sync``;
- ``one_step_off`` (verl one_step_off_policy): batch i+1 is generated while batch i trains:
  ``step = max(generate(K), trainer(N − K)) + sync`` (verl's docs: step ≈ wait_prev_gen + old_log_prob +
  update_actor, with wait_prev_gen = generation not hidden by training);
- ``fully_async`` (AReaL; verl fully_async_policy): staleness bound η and interruptible rollouts, simulated
  by ``llmcalc.rl.loop.simulate_async``; η = 0 reproduces ``sync_disaggregated``.

The split K is given (``rollout_gpus``) or searched: every multiple of the engine size (of 2, 4, … engines when
that would be more than 48 splits: on 64 one-GPU engines, rollout 2, 4, …, 62) that leaves a trainer
of a multiple of tp·pp·ep GPUs (ep divides dp: Megatron-Core parallel_state.py) that fits, scored by the async
throughput bound max(generate at full slots(K), trainer(N − K) + sync) over the whole candidate array at once,
then the best few are simulated.
"""

from __future__ import annotations

import math

import numpy as np

from ..core.checks import check_count, check_number, check_scalar
from ..core.errors import LayoutError, LlmcalcError
from ..core.results import Figure, Result, derive
from ..core.specs import Hardware, Model
from .lengths import SRC_ORDER, LengthDist
from .loop import simulate_async
from .phases import (
    DEFAULT_SETTINGS,
    RLSettings,
    check_trainer_layout,
    trainer_at,
    trainer_fits,
    trainer_unit,
    trainer_work,
    weight_bytes,
    weight_sync,
)
from .report import (
    _assumptions,
    _async_timeline,
    _gen_figs,
    _parts,
    _regime,
    _rekey,
    _timeline,
    _train_figs,
    token_rates,
)
from .rollout import DecodeCost, Pool, drain_time, slots_per_engine

REGIMES = ("sync_colocated", "sync_disaggregated", "one_step_off", "fully_async")
# samples per step (P × G) the event simulation is run for: its rounds grow with the batch (~1.5 per sample on
# llama-3.1-8b, 64 H100, mean 3000 cv 1) and a step of 2 ** 20 takes ~7 s; 512 × 4096 ran 2,000,000 rounds unfinished
MAX_STEP_SAMPLES = 1 << 20
SRC_AREAL = "AReaL (Fu et al. 2025) §5.1: a rollout may start only while ⌊(N_r − 1)/B⌋ ≤ i + η"
SRC_VERL_1OFF = "verl docs/advance/one_step_off.md: step ≈ wait_prev_gen + old_log_prob + update_actor"
SRC_VERL_SYNC = "verl docs/advance/one_step_off.md: colocated step ≈ gen + old_log_prob + update_actor"


class _Ctx:
    """Everything one configuration needs, cached per GPU count."""

    def __init__(self, m, hw, *, prompts, samples, prompt_len, response, algo, ref, reward_model, minibatches,
                 rollout_tp, train_tp, train_pp, train_ep, zero, settings):
        from ..inference.latency import Deployment

        self.m, self.hw, self.s = m, hw, settings
        self.batch = prompts * samples
        self.prompt = float(prompt_len)
        self.response = response
        self.lengths, self.counts = response.cohorts(self.batch)
        self.algo, self.ref, self.rm, self.mb = algo, ref, reward_model, minibatches
        self.rtp, self.ttp, self.tpp, self.tep, self.zero = rollout_tp, train_tp, train_pp, train_ep, zero
        self.planned: dict | None = None  # the planner's layout when none was given (rl_step)
        self.dep = (Deployment(m, hw, tp=rollout_tp) if settings.rollout_efficiency is None
                    else Deployment(m, hw, tp=rollout_tp, eff=settings.rollout_efficiency))
        mean = response.mean()
        self.slots = slots_per_engine(self.dep, self.prompt, mean, settings.max_num_seqs, settings.kv_reserve)
        self.cost = DecodeCost(self.dep, self.slots, settings.decode_step_overhead_s, self.prompt,
                               settings.decode_overhead_per_seq_s)
        self.group = samples if settings.prefix_shared else 1
        self._gen: dict[int, dict] = {}
        self._train: dict[int, dict] = {}
        self._no_fit: set[int] = set()  # sizes train_sizes found the trainer does not fit (train(g) raises why)
        self._async: dict[tuple, dict] = {}
        self.resp_tokens = float(np.dot(self.lengths, self.counts))

    def pool(self, gpus: int) -> Pool:
        return Pool(self.cost, gpus // self.rtp, self.group)

    def generate(self, gpus: int) -> dict:
        if gpus not in self._gen:
            self._gen[gpus] = drain_time(self.pool(gpus), self.lengths, self.counts)
        return self._gen[gpus]

    def train(self, gpus: int) -> dict:
        if gpus not in self._train:
            self._train[gpus] = trainer_work(self.m, self.hw, gpus, self.lengths, self.counts, self.prompt,
                                             algo=self.algo, ref=self.ref, reward_model=self.rm,
                                             minibatches=self.mb, settings=self.s, tp=self.ttp, pp=self.tpp,
                                             ep=self.tep, zero=self.zero)
        return self._train[gpus]

    def train_sizes(self, sizes) -> np.ndarray:
        """``train(g)["total_s"]`` for an array of trainer sizes, inf where the trainer does not fit, from one
        vectorised ``trainer_work`` call over the sizes not asked before; each size that fits is cached as the
        scalar call returns it (``trainer_at``), so ``train`` then answers it without a step call (issue #13)."""
        new = [int(g) for g in dict.fromkeys(np.asarray(sizes).tolist()) if g not in self._train
               and g not in self._no_fit]
        if new:
            tr = trainer_work(self.m, self.hw, np.asarray(new), self.lengths, self.counts, self.prompt,
                              algo=self.algo, ref=self.ref, reward_model=self.rm, minibatches=self.mb,
                              settings=self.s, tp=self.ttp, pp=self.tpp, ep=self.tep, zero=self.zero)
            for i, g in enumerate(new):
                if tr["fits"][i]:
                    self._train[g] = trainer_at(tr, i)
                else:
                    self._no_fit.add(g)
        return np.array([self._train[int(g)]["total_s"] if int(g) in self._train else np.inf for g in sizes])

    def sync(self, colocated: bool, trainer_gpus: int, rollout_gpus: int) -> list[Figure]:
        return weight_sync(self.m, self.hw, colocated=colocated, trainer_gpus=trainer_gpus,
                           rollout_gpus=rollout_gpus, settings=self.s)

    def saturated_gen_s(self, gpus: np.ndarray, eta: float | None) -> np.ndarray:
        """Generation time of one batch at a pool kept full (async throughput bound), for an array of sizes:
        tokens / (running sequences per step / step time), running = min(slots, (η+1)·B / engines), at the
        length-biased mean cache length prompt + E[ℓ²]/(2E[ℓ]) of a renewal process (Little's law)."""
        engines = np.asarray(gpus) // self.rtp
        window = math.inf if eta is None else (eta + 1) * self.batch
        per_engine = np.minimum(self.slots, np.ceil(np.minimum(window, 1e18) / engines))
        ln, c = self.lengths, self.counts
        ctx = self.prompt + float(np.dot(ln * ln, c) / np.dot(ln, c)) / 2
        t_step = np.array([self.cost.step_s(int(b), ctx) for b in per_engine])
        prefill = self.batch / self.group * self.cost.prefill_s / engines
        return self.resp_tokens / (engines * per_engine) * t_step + prefill


def _feasible_trainer(ctx: _Ctx, gpus: int) -> str | None:
    """None when the trainer runs on ``gpus`` GPUs, else why not (its LayoutError's message: a layout that does not
    divide the GPUs is not a trainer that does not fit, and the warning said "does not fit" for both)."""
    try:
        ctx.train(gpus)
    except LayoutError as e:
        return str(e)
    return None


def _one_number(option: str, v) -> None:
    """rl_step times one configuration: an array (a sweep) would pass the numeric checks and then fail deep inside
    with a traceback; a numeric string gets check_number's own refusal. One line either way."""
    if v is None:
        return
    check_scalar(option, v, "one value per call (rl_step times one configuration)")
    if isinstance(v, (str, bytes)):  # before staleness's 'inf' and the other reads: check_number's one line
        check_number(v, option)


def _split_candidates(ctx: _Ctx, total: int) -> list[int]:
    unit = ctx.rtp
    while total // unit > 48:  # keep the search cheap: at most 48 splits, on multiples of 2, 4, 8, … engines
        unit *= 2
    tunit = trainer_unit(ctx.ttp, ctx.tpp, ctx.tep)  # whole tp·pp groups, and ep dividing dp
    return [k for k in range(unit, total, unit) if (total - k) % tunit == 0 and (total - k) >= tunit]


def _no_split(ctx: _Ctx, total: int) -> LayoutError:
    ep = "" if ctx.tep == 1 else (f" (the trainer's GPUs must be a multiple of --train-tp·--train-pp·--train-ep = "
                                  f"{trainer_unit(ctx.ttp, ctx.tpp, ctx.tep)})")
    # a doubled --train-tp helps only where some split leaves the trainer whole groups of twice its tp·pp·ep
    double = 2 * trainer_unit(ctx.ttp, ctx.tpp, ctx.tep)
    wider = any((total - k) % double == 0 for k in range(ctx.rtp, total, ctx.rtp))
    return LayoutError(f"no split of {total} GPUs leaves a trainer that fits{ep} and a rollout engine of "
                       f"{ctx.rtp} GPUs; add GPUs" + (" or raise --train-tp" if wider else ""))


def best_split(ctx: _Ctx, total: int, eta: float | None, partial: bool = True) -> dict:
    """Score every split by the async throughput bound max(generate at full slots(K), trainer(N − K) + sync), the
    trainer side as one vectorised training-step call over all candidate sizes; then simulate the best three with
    the step's own interruptible-rollout setting ``partial`` (simulated always on, the split chosen without them
    was up to 17% slower than another of the three)."""
    ks = _split_candidates(ctx, total)
    if ks:
        karr = np.asarray(ks)
        train = ctx.train_sizes(total - karr)
        fits = np.array([int(total - k) in ctx._train for k in ks])
        karr, train = karr[fits], train[fits]
    if not ks or not karr.size:
        raise _no_split(ctx, total)
    gen = ctx.saturated_gen_s(karr, eta)
    sync = np.array([ctx.sync(False, total - int(k), int(k))[-1].value for k in karr])
    bound = np.maximum(gen, train + sync)
    order = np.argsort(bound)[:3]
    best, best_t = None, math.inf
    for i in order:
        k = int(karr[i])
        if (train[i] + sync[i]) * (1 - 1e-9) - 1e-6 >= best_t:
            # the simulated trainer trains then syncs, each step ending at least t_train + t_sync − 2·EPS after the
            # last (llmcalc.rl.loop): its period cannot come below best_t (slack for rounding), so it is not simulated
            continue
        sim = _async(ctx, total, k, eta, partial, stop_above=best_t)
        if sim is not None and sim["period_s"] < best_t:  # None: stopped, sure to end above best_t
            best, best_t = k, sim["period_s"]
    return {"rollout_gpus": best, "candidates": karr, "bound_s": bound, "generate_saturated_s": gen,
            "trainer_s": train, "sync_s": sync}


def _async(ctx: _Ctx, total: int, k: int, eta, partial: bool, stop_above: float | None = None) -> dict | None:
    """The simulation of this split (cached: the split search's best candidate is asked again for the report);
    None when ``stop_above`` is given and its period is sure to exceed it (not cached)."""
    key = (total, k, eta, partial)
    if key not in ctx._async:
        tr = ctx.train(total - k)
        sync = ctx.sync(False, total - k, k)[-1].value
        sim = simulate_async(ctx.pool(k), ctx.lengths, ctx.counts, tr["total_s"], sync, eta, partial,
                             stop_above=None if stop_above == math.inf else stop_above)
        if sim is None:
            return None
        ctx._async[key] = sim
    return ctx._async[key]


def rl_step(m: Model, hw: Hardware, *, gpus: int, prompts: int, samples: int, prompt_len: int, response: LengthDist,
            algo: str = "grpo", regime: str = "all", staleness: float | None = 2, rollout_gpus: int | None = None,
            rollout_tp: int = 1, partial: bool = True, ref: bool | None = None, reward_model: Model | None = None,
            minibatches: int = 1, train_tp: int | None = None, train_pp: int | None = None,
            train_ep: int | None = None, zero: int | None = None, recompute: str | None = None,
            rollout_logprobs: bool = False, settings: RLSettings = DEFAULT_SETTINGS,
            check_only: bool = False) -> Result | None:
    """Step time and its breakdown, tokens/s, pool utilisation and staleness of an RL step in each regime.

    ``data`` keys (stable): inputs (model, hardware, gpus, prompts, samples, batch, prompt_len, response,
    algo, staleness_eta, partial_rollouts, rollout_tp, slots_per_engine), ``response_mean``,
    ``response_expected_max``, ``regimes`` {name: {step_s, breakdown_s, rollout_gpus, trainer_gpus,
    trained_tokens_per_s, generated_tokens_per_s, trained_tokens_per_s_per_gpu, rollout_utilisation,
    rollout_idle_s, trainer_utilisation, trainer_idle_s, staleness_mean, staleness_max}}, ``speedup``
    {sync_colocated (1), sync_disaggregated, one_step_off, fully_async: vs sync_colocated}, ``best_regime``,
    ``trainer_layout`` {tp, pp, ep, zero, source (planner | given), planner_layout}, ``split`` {rollout_gpus, searched,
    candidates, bound_s}, ``timeline`` {name: [{row, phase, start_s, end_s}, …] over two steady-state steps;
    gaps are idle}.

    Trainer layout: ``train_tp``/``train_pp``/``train_ep``/``zero`` as given (missing ones 1, 1, 1, ZeRO-3);
    when none is given, the training planner's best layout for the whole pool (llmcalc.training.plan), kept
    for the split trainers (whose sizes must then be multiples of its tp·pp·ep).

    ``recompute`` (none | selective | full): the trainer's activation recomputation as the recipe sets it
    (verl ``enable_gradient_checkpointing``, NeMo-RL ``activation_checkpointing``); None keeps
    ``settings.recompute``. ``rollout_logprobs``: the trainer takes the engine's sampling log-probs as the old
    policy's and runs no old-log-prob forward pass (verl fully async ``async_training.use_rollout_log_probs``).

    ``response``: a ``LengthDist`` (llmcalc.rl.lengths) or its CLI text ('3000,1.0', '2k,6k,8k', 'table:…');
    ``staleness``: η in whole steps, None or inf for no bound. One configuration per call: numeric arguments are
    scalars (an array gets one line saying so).

    ``check_only``: run every input and fit check (the errors a full call raises) and return None without
    simulating anything: what a face needs to probe which values of an input work, at a small fraction of
    the cost.
    """
    for opt, v in (("--gpus", gpus), ("--prompts", prompts), ("--samples", samples), ("--prompt-len", prompt_len),
                   ("--minibatches", minibatches), ("--rollout-tp", rollout_tp), ("--rollout-gpus", rollout_gpus),
                   ("--train-tp", train_tp), ("--train-pp", train_pp), ("--train-ep", train_ep), ("--zero", zero),
                   ("--staleness", staleness)):
        _one_number(opt, v)
    if isinstance(regime, str):  # names are case-insensitive (README): "SYNC" passed the CLI and failed here
        regime = regime.strip().lower()
    if isinstance(algo, str):
        algo = algo.strip().lower()
    if isinstance(response, str):  # the CLI's text form ('mean,cv', 'p50,p90,p99', 'table:…'), as the docs show it
        from .lengths import parse_response_len

        response = parse_response_len(response)
    elif not isinstance(response, LengthDist):
        raise LlmcalcError(f"--response-len expects a length distribution (llmcalc.rl.lengths lognormal, "
                           f"from_percentiles, table) or its text 'mean,cv' | 'p50,p90,p99' | 'table:l1,l2,…', "
                           f"got {response!r}")
    if staleness is not None and not isinstance(staleness, bool) and staleness == math.inf:
        staleness = None  # η = ∞ is "no bound", as the CLI's 'inf' and the dashboard's
    check_count(gpus, "--gpus", minimum=1)
    if hw.span_limit is not None and gpus > hw.span_limit:  # the weight sync joins the pools: one domain at most
        from ..network.collectives import network_needed

        raise network_needed(hw, f"--gpus {gpus}")  # (the planner's own refusal named no option: no page blamed)
    check_count(prompts, "--prompts")
    check_count(samples, "--samples")
    check_count(prompt_len, "--prompt-len")
    check_count(minibatches, "--minibatches")
    if prompts * samples > MAX_STEP_SAMPLES:  # user test: 512 × 4096 raised "did not converge" after 7 s
        raise LlmcalcError(
            f"--prompts {prompts:,} × --samples {samples:,} = {prompts * samples:,} samples per step is more than "
            f"the step simulation runs (at most {MAX_STEP_SAMPLES:,} = 2**20); lower --prompts or --samples")
    if minibatches > prompts * samples:  # each optimizer step trains whole samples (user test: 100000 ran on 8,192)
        raise LlmcalcError(
            f"--minibatches {minibatches} exceeds the {prompts:,} × {samples} = {prompts * samples:,} samples of a "
            "step: each PPO mini-batch (one optimizer step) trains at least one whole sample (NeMo-RL: "
            "policy.train_global_batch_size samples per optimizer step; verl: ppo_mini_batch_size prompts × "
            "rollout.n samples, at most data.train_batch_size); give at most that many")
    check_count(rollout_tp, "--rollout-tp")
    for opt, v in (("--train-tp", train_tp), ("--train-pp", train_pp), ("--train-ep", train_ep)):
        if v is not None:
            check_count(v, opt)
    if zero is not None and zero not in (0, 1, 2, 3):
        raise LlmcalcError(f"--zero expects a ZeRO stage 0, 1, 2 or 3, got {zero!r}")
    if algo not in ("grpo", "ppo"):
        raise LlmcalcError(f"--algo expects grpo or ppo, got {algo!r}")
    if recompute is not None or rollout_logprobs:
        from dataclasses import replace

        from ..training.layout import recompute_code

        if recompute is not None:
            if not isinstance(recompute, str):
                raise LlmcalcError(f"--recompute expects none, selective or full, got {recompute!r}")
            recompute_code(recompute)  # raises the one-line message on anything else
        settings = replace(settings, recompute=settings.recompute if recompute is None else recompute.lower(),
                           rollout_logprobs=bool(rollout_logprobs))
    if regime not in ("sync", "async", "all"):
        raise LlmcalcError(f"--regime expects sync, async or all, got {regime!r}")
    if staleness is not None:
        check_number(staleness, "--staleness (η, whole steps)", low=0, low_ok=True)
        if staleness != int(staleness):
            raise LlmcalcError(f"--staleness expects a whole number of steps (or inf), got {staleness:g}")
        staleness = int(staleness)
    if rollout_tp > gpus:
        raise LayoutError(f"--rollout-tp {rollout_tp} exceeds --gpus {gpus}")
    from ..inference.kv import check_tp

    check_tp(m, rollout_tp, "--rollout-tp")  # before the GPU-count rule, which would blame --gpus for a bad TP
    if rollout_gpus is not None:
        check_count(rollout_gpus, "--rollout-gpus")
        if rollout_gpus >= gpus:
            raise LayoutError(f"--rollout-gpus {rollout_gpus} leaves no trainer GPUs out of --gpus {gpus}")
        if rollout_gpus % rollout_tp:
            raise LayoutError(f"--rollout-gpus {rollout_gpus} is not a multiple of --rollout-tp {rollout_tp}")
    if gpus % rollout_tp:
        raise LayoutError(f"--gpus {gpus} is not a multiple of --rollout-tp {rollout_tp} (colocated engines)")
    if prompt_len + response.mean() > m.max_seq_len * 4:
        raise LlmcalcError(f"prompt + mean response {prompt_len + response.mean():,.0f} tokens is far beyond "
                           f"{m.display_name}'s {m.max_seq_len:,} positions")
    ref = (algo == "ppo") if ref is None else ref
    room = m.max_seq_len - prompt_len
    if room < 1:
        raise LlmcalcError(f"--prompt-len {prompt_len} leaves no room for a response in {m.display_name}'s "
                           f"{m.max_seq_len:,} positions")
    from dataclasses import replace

    if response.cap is None or response.cap > room:
        response = replace(response, cap=float(room), describe_as=response.describe_as
                           + f", capped at the model's {m.max_seq_len:,} positions less the prompt")
    uncapped = replace(response, cap=None).mean()
    cut = (f"WARNING: the cap at {response.cap:,.0f} tokens cuts the mean response from {uncapped:,.0f} to "
           f"{response.mean():,.0f} tokens: most of the distribution's mean lies beyond it (is the cv or the tail "
           "meant?)") if response.mean() < 0.5 * uncapped else None
    planned = None
    if (train_tp, train_pp, train_ep, zero) == (None, None, None, None):  # the planner's best layout
        from .phases import planned_layout

        lengths, counts = response.cohorts(prompts * samples)
        planned = planned_layout(m, hw, gpus, lengths, counts, float(prompt_len), minibatches,
                                 recompute=settings.recompute)
        train_tp, train_pp, train_ep, zero = planned["tp"], planned["pp"], planned["ep"], planned["zero"]
    train_tp, train_pp, train_ep = train_tp or 1, train_pp or 1, train_ep or 1
    zero = 3 if zero is None else zero
    check_trainer_layout(m, train_tp, train_pp, train_ep, zero)  # heads, layers, experts: in rl's option names
    ctx = _Ctx(m, hw, prompts=prompts, samples=samples, prompt_len=prompt_len, response=response, algo=algo,
               ref=ref, reward_model=reward_model, minibatches=minibatches, rollout_tp=rollout_tp, train_tp=train_tp,
               train_pp=train_pp, train_ep=train_ep, zero=zero, settings=settings)
    ctx.planned = planned
    if check_only:
        _check_fits(ctx, gpus, rollout_gpus, regime)
        return None
    # Every trainer size this step asks (colocated on all GPUs, then the given split or the searched candidates) in
    # one vectorised trainer_work call (issue #13). Sizes that are not whole tp·pp·ep groups, and any error, are
    # left to the calls below: each raises (or catches) its own error, with its own wording, as without this call.
    unit = trainer_unit(train_tp, train_pp, train_ep)
    sizes = [gpus] + ([gpus - k for k in _split_candidates(ctx, gpus)] if rollout_gpus is None
                      else [gpus - rollout_gpus])
    try:
        ctx.train_sizes([g for g in sizes if g % unit == 0])
    except LlmcalcError:
        pass
    figs: list[Figure] = []
    n = ctx.batch
    figs.append(derive("lengths/mean", "mean", "token", response.describe_as, label="mean response length",
                       mean=response.mean()))
    figs.append(Figure("lengths/expected_max", response.expected_max(n), "token",
                       "∫ F^-1(Φ(z))·N·Φ(z)^(N-1)·φ(z) dz", f"N = {n}, by quadrature", SRC_ORDER,
                       f"expected longest of the {n:,} responses"))
    figs.append(derive("rollout/slots_per_engine", "min(max_num_seqs, kv_tokens//(prompt + mean))", "seq",
                       "paged KV allocated as sequences grow (vLLM): the mean footprint sets the concurrency",
                       label=f"sequences per rollout engine ({rollout_tp} GPU{'s' * (rollout_tp > 1)})",
                       max_num_seqs=settings.max_num_seqs, kv_tokens=_kv_tokens(ctx), prompt=ctx.prompt,
                       mean=response.mean()))
    regimes: dict[str, dict] = {}
    timelines: dict[str, list] = {}
    want_sync = regime in ("sync", "all")
    want_async = regime in ("async", "all")
    # sync colocated on every GPU
    colocated_why = _feasible_trainer(ctx, gpus)
    colocated_ok = colocated_why is None
    if want_sync or want_async:
        if colocated_ok:
            g = ctx.generate(gpus)
            tr = ctx.train(gpus)
            sy = ctx.sync(True, gpus, gpus)
            figs += _gen_figs("sync_colocated", g, gpus // rollout_tp)
            figs += _train_figs("sync_colocated", tr, gpus)
            figs += [_rekey(f, "sync_colocated/") for f in sy]
            step = g["time_s"] + tr["total_s"] + sy[-1].value
            figs.append(derive("sync_colocated/step_s", "generate + trainer + reshard", "s", SRC_VERL_SYNC,
                               label="sync colocated: step time", generate=g["time_s"], trainer=tr["total_s"],
                               reshard=sy[-1].value))
            regimes["sync_colocated"] = _regime(
                "sync_colocated", step, _parts(g, tr, sy[-1].value), ctx, gpus, gpus,
                rollout_busy=g["time_s"], trainer_busy=tr["total_s"] + sy[-1].value)
            timelines["sync_colocated"] = _timeline("sync_colocated", g, tr, sy[-1].value)
    # the split
    searched = rollout_gpus is None
    split_info = None
    split_error = None
    try:
        if searched:
            split_info = best_split(ctx, gpus, staleness, partial)
            k = split_info["rollout_gpus"]
        else:
            k = rollout_gpus
            ctx.train(gpus - k)  # raises the trainer's own message when it does not fit
    except LayoutError as e:
        if "sync_colocated" not in regimes or regime == "async":
            if not colocated_ok:
                ctx.train(gpus)  # the trainer does not fit even on every GPU: its own message says by how much
            raise
        split_error, k = str(e), None  # colocated only: say why the split regimes are missing
    tk = None if k is None else gpus - k
    if k is not None:
        g, tr = ctx.generate(k), ctx.train(tk)
        sy = ctx.sync(False, tk, k)
        t_sync = sy[-1].value
        figs += _gen_figs("split", g, k // rollout_tp)
        figs += _train_figs("split", tr, tk)
        figs += [_rekey(f, "split/") for f in sy]
        if want_sync:
            step = g["time_s"] + tr["total_s"] + t_sync
            figs.append(derive("sync_disaggregated/step_s", "generate + trainer + sync", "s",
                               "each pool idle while the other works", label=f"sync disaggregated ({k}+{tk}): step",
                               generate=g["time_s"], trainer=tr["total_s"], sync=t_sync))
            regimes["sync_disaggregated"] = _regime(
                "sync_disaggregated", step, _parts(g, tr, t_sync), ctx, k, tk, rollout_busy=g["time_s"] + t_sync,
                trainer_busy=tr["total_s"] + t_sync)
            timelines["sync_disaggregated"] = _timeline("sync_disaggregated", g, tr, t_sync)
        if want_async:
            step = max(g["time_s"], tr["total_s"]) + t_sync
            figs.append(derive("one_step_off/step_s", "max(generate, trainer) + sync", "s", SRC_VERL_1OFF,
                               label=f"one-step-off ({k}+{tk}): step", generate=g["time_s"], trainer=tr["total_s"],
                               sync=t_sync))
            parts = _parts(g, tr, t_sync)
            parts["wait_generate_s"] = max(g["time_s"] - tr["total_s"], 0.0)
            regimes["one_step_off"] = _regime("one_step_off", step, parts, ctx, k, tk,
                                              rollout_busy=g["time_s"] + t_sync, trainer_busy=tr["total_s"] + t_sync,
                                              staleness=(1.0, 1))
            timelines["one_step_off"] = _timeline("one_step_off", g, tr, t_sync)
            sim = _async(ctx, gpus, k, staleness, partial)
            eta_txt = "inf" if staleness is None else str(staleness)
            figs.append(Figure("fully_async/step_s", sim["period_s"], "s",
                               "steady-state period of the event simulation (llmcalc.rl.loop)",
                               f"η = {eta_txt}, partial rollouts {'on' if partial else 'off'}, "
                               f"{sim['steps_simulated']} steps, second half measured", SRC_AREAL,
                               f"fully async ({k}+{tk}, η {eta_txt}): step"))
            parts = _parts(g, tr, t_sync)
            parts["generate_s"] = sim["rollout_busy_s"]
            parts["wait_generate_s"] = max(sim["period_s"] - tr["total_s"] - t_sync, 0.0)
            regimes["fully_async"] = _regime("fully_async", sim["period_s"], parts, ctx, k, tk,
                                             # the pool is paused, not idle, while weights sync (llmcalc.rl.loop;
                                             # the split regimes above count it so too); min: float rounding only
                                             rollout_busy=min(sim["rollout_busy_s"] + t_sync, sim["period_s"]),
                                             trainer_busy=sim["trainer_busy_s"],
                                             staleness=(sim["staleness_mean"], sim["staleness_max"]))
            timelines["fully_async"] = _async_timeline(sim, tr)
    if not regimes:
        raise LayoutError(f"the trainer does not fit on {gpus} x {hw.display_name} colocated; "
                          "use --regime async with a split, or more GPUs")
    speedup = {}  # over sync colocated (1 by definition); none without it (its trainer does not fit colocated)
    if "sync_colocated" in regimes:
        base = regimes["sync_colocated"]["step_s"]
        speedup["sync_colocated"] = 1.0
        for r in ("sync_disaggregated", "one_step_off", "fully_async"):
            if r in regimes:
                speedup[r] = base / regimes[r]["step_s"]
                figs.append(derive(f"speedup/{r}", "sync_colocated/other", "ratio", "definition",
                                   label=f"speedup of {r.replace('_', ' ')} over sync colocated",
                                   sync_colocated=base, other=regimes[r]["step_s"]))
    for r, x in regimes.items():  # the table's tokens/s columns, derived (--explain had no line for them)
        figs.extend(token_rates(r, ctx, x["step_s"]))
    best = min(regimes, key=lambda r: regimes[r]["step_s"])
    assumptions = _assumptions(ctx, k, tk, searched, partial, staleness, colocated_why,
                               candidates=None if split_info is None else split_info["candidates"])
    if split_error:
        assumptions.append(f"WARNING: no split regimes: {split_error}")
    if cut:
        assumptions.append(cut)
    data = {"model": m.name, "hardware": hw.name, "gpus": gpus, "prompts": prompts, "samples": samples,
            "batch": n, "prompt_len": prompt_len, "response": response.describe_as, "algo": algo,
            "staleness_eta": staleness, "partial_rollouts": partial, "rollout_tp": rollout_tp,
            "slots_per_engine": ctx.slots, "response_mean": response.mean(),
            "response_expected_max": response.expected_max(n), "regimes": regimes, "speedup": speedup,
            "best_regime": best, "weight_bytes": weight_bytes(m), "timeline": timelines,
            "trainer_layout": {"tp": ctx.ttp, "pp": ctx.tpp, "ep": ctx.tep, "zero": ctx.zero,
                               "source": "planner" if ctx.planned else "given",
                               "planner_layout": ctx.planned["layout"] if ctx.planned else None},
            "split": {"rollout_gpus": k, "trainer_gpus": tk, "searched": searched,
                      "candidates": None if split_info is None else split_info["candidates"],
                      "bound_s": None if split_info is None else split_info["bound_s"]}}
    title = (f"RL step: {m.display_name} on {gpus} x {hw.display_name}, {prompts} prompts x {samples} samples, "
             f"{algo.upper()}")
    return Result(title, tuple(figs), tuple(assumptions), data)


def _check_fits(ctx: _Ctx, gpus: int, rollout_gpus: int | None, regime: str) -> None:
    """The trainer-fit errors of a full rl_step call, from the memory model alone (no step timing, no
    simulation): colocated on every GPU, the given split, or (searched) any split, as one vectorised call."""
    def fits(g):
        return trainer_fits(ctx.m, ctx.hw, g, ctx.lengths, ctx.counts, ctx.prompt, minibatches=ctx.mb,
                            settings=ctx.s, tp=ctx.ttp, pp=ctx.tpp, ep=ctx.tep, zero=ctx.zero)

    unit = trainer_unit(ctx.ttp, ctx.tpp, ctx.tep)
    colocated_ok = (gpus % unit == 0) and fits(gpus)
    if rollout_gpus is not None:
        if (gpus - rollout_gpus) % unit or not fits(gpus - rollout_gpus):
            if not colocated_ok:
                ctx.train(gpus)  # raises the trainer's own message
            if regime == "async" or not colocated_ok:
                ctx.train(gpus - rollout_gpus)  # raises the trainer's own message
        return
    if colocated_ok and regime != "async":
        return
    ks = _split_candidates(ctx, gpus)
    if not (ks and np.any(fits(gpus - np.asarray(ks)))):
        if not colocated_ok:
            ctx.train(gpus)
        raise _no_split(ctx, gpus)


def _kv_tokens(ctx: _Ctx) -> float:
    from ..inference.kv import fit

    return float(fit(ctx.m, ctx.hw, tp=ctx.rtp, reserve=ctx.s.kv_reserve).data["kv_tokens_capacity"])
