"""The trainer side of one RL step, and the weight sync from trainer to inference engines.

Trainer work over the batch's tokens (prompt + response of every sample):

- forward-only passes: old-policy log-probs (PPO ratio; AReaL's proximal policy), reference log-probs
  (KL penalty; off for DAPO and AReaL), a reward model's scores, PPO's critic values. Each costs the
  forward FLOPs of ``llmcalc.model.flops`` (causal attention) at the training compute efficiency;
- the policy update: ``llmcalc.training.step.training_step`` on the trainer layout (default FSDP /
  ZeRO-3 over all trainer GPUs, full activation recomputation as verl and AReaL configure long-response
  RL), once per PPO mini-batch (each mini-batch is one optimizer step, so its gradient sync is paid
  every time); PPO adds the critic's update.

Variable lengths: the batch is passed to ``training_step`` as ``B_eff`` sequences of ``L_eff =
Σℓ²/Σℓ`` tokens, which preserves both Σℓ (linear FLOPs: B_eff·L_eff = Σℓ) and Σℓ² (attention FLOPs:
B_eff·L_eff² = Σℓ²) of the real batch.

Weight sync (bytes S = parameters × 2 for bf16):

- colocated (hybrid engine, verl): the FSDP shards are all-gathered into each engine:
  ring all-gather over the trainer group, (n−1)/n·S per rank (nccl-tests PERFORMANCE.md);
- disaggregated: a pipelined broadcast from the trainer to every engine moves S per rank (nccl-tests:
  broadcast bus factor 1), which is why it barely grows with fan-out (checkpoint-engine README). A group
  beyond one scale-up domain crosses the network; NCCL runs one channel per NIC, so a node moves
  min(scale-up, domain × per-GPU scale-out) per direction (an assumption: multi-rail rings);
- both: ⌈S / bucket⌉ buckets of fixed latency (owners·⌈S/(owners·bucket)⌉ when ``owners`` ranks each hold a
  share, as checkpoint-engine's: a bucket never spans two owners), and the engine's own reload of S bytes at
  ``reload_bw`` (vLLM/SGLang ``load_weights``: per-tensor copies, re-layout, no overlap), calibrated on
  one row of MoonshotAI checkpoint-engine's benchmark (see ``RLSettings``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from ..core.errors import LayoutError
from ..core.results import derive
from ..core.specs import Hardware, Model

SRC_LEFF = "L_eff = Σℓ²/Σℓ, B_eff = Σℓ/L_eff keep Σℓ and Σℓ² of the batch (linear and attention FLOPs)"
SRC_BCAST = ("pipelined ring broadcast: S per rank (nccl-tests PERFORMANCE.md, broadcast bus factor 1); "
             "time barely grows with fan-out (MoonshotAI checkpoint-engine README)")
SRC_AG = "ring all-gather: (n−1)/n·S per rank, α per ring step (nccl-tests PERFORMANCE.md)"


@dataclass(frozen=True)
class RLSettings:
    """The one set of defaults every RL estimate uses (each with where it comes from).

    - The rollout engine's host time per decode step (scheduler, input preparation, sampling and output
      processing, which the roofline leaves out; Srivatsa, Li, Zhang, Abhyankar, mlsys.wuklab.io/posts/
      scheduling_overhead: vLLM's scheduling overhead can exceed half of the inference time, mostly tensor
      pre- and post-processing; SGLang's is lower) is ``decode_step_overhead_s`` + ``decode_overhead_per_seq_s``
      × sequences in the step: 3 ms + 100 µs per sequence. Per sequence, so that an engine running a long tail
      alone steps fast while one holding hundreds of sequences pays for each; halving the engines doubles the
      sequences per engine and the host time with them.
      ``trainer_efficiency_scale`` = 0.3 scales the hardware's pre-training efficiency (llmcalc.core.efficiency,
      Megatron-calibrated) down to what an MoE RL trainer reaches (NeMo-RL's Qwen3-30B-A3B: EP all-to-all, small
      per-expert GEMMs, log-prob passes); dense models keep their pre-training efficiency
      (``trainer_efficiency_scale_dense`` = 1). The three are CALIBRATED together (``python benchmarks/
      report_rl.py --refit``: least squares on log error over a grid: fixed 1-8 ms, per sequence
      50-150 µs, scale 0.2/0.25/0.3/0.4/0.5) on three rows: NeMo-RL v0.6 H100
      on-policy 192 s and 1-off 152 s (Qwen3-30B-A3B GRPO, 32 GPUs, with their recipes' inputs: 4 optimizer
      steps, no activation checkpointing, 1-off trainer PP2; refit in issue #10: 5 ms, 75 µs, 0.3 -> 0.25,
      Σ ln² 0.0207 -> 0.0082; refit again when the rows took the reference-policy log-prob pass that NeMo-RL
      v0.6 runs every step, nemo_rl/algorithms/grpo.py get_reference_policy_logprobs with grpo_math_1B.yaml's
      reference_policy_kl_penalty 0.01: 5 ms, 75 µs, 0.25 -> 0.3, Σ ln² 0.0084; refit in wave 8 when the RL
      review made the expected order statistics exact and gave the async trainer its own clock, which left the
      shipped point at Σ ln² 0.0178: 5 ms, 75 µs -> 3 ms, 100 µs, 0.3, Σ ln² 0.0092, an interior point of the
      widened grid) and AReaL's Sync.AReaL/AReaL step ratio 2.77
      (a dense 1.5B on SGLang). Every other RL row is a test (AReaL's absolute steps and η sweep, NeMo-RL GB200,
      verl). The 20 ms constant these replace was fitted on the MoE rows alone and put the 1.5B model's
      27,648-token tail at 20 ms a step.
    - ``max_num_seqs`` = 1024: verl's rollout default (``actor_rollout_ref.rollout.max_num_seqs``).
    - ``kv_reserve`` = 0.1 of memory kept back, as ``llmcalc fit``.
    - ``reload_bw_bytes_per_s`` = 150 GB/s: engine-side weight reload, CALIBRATED on checkpoint-engine's
      Qwen3-235B-A22B BF16 row (8×H800, 6.22 s broadcast); its other five rows are the test.
    - ``bucket_bytes`` = 1 GiB and ``bucket_latency_s`` = 1 ms per bucket: judgement (one NCCL launch plus
      a metadata round trip per bucket).
    - ``recompute`` = full: verl and AReaL long-response recipes enable gradient checkpointing.
    - ``tokens_per_micro_batch`` = 32768: sequences are packed into micro-batches of about this many tokens
      per GPU (verl ``use_dynamic_bsz`` with ``ppo_max_token_len_per_gpu``; its DAPO recipes use
      2 × (max prompt + max response)); judgement for a default.
    - ``prefix_shared`` = True: the G samples of a prompt share one prefill (vLLM/SGLang prefix caching).
    - ``rollout_logprobs`` = False: the trainer recomputes the old policy's log-probs (one forward pass over
      every token, verl's ``old_log_prob``); True when the engine's sampling log-probs are used instead (verl
      fully async recipes: ``async_training.use_rollout_log_probs=True``, and its docs/advance/fully_async.md
      tables report no old_log_prob for those runs). A per-run input of ``rl_step``, not a calibrated default.
    """

    decode_step_overhead_s: float = 0.003  # host time per decode step (calibrated, above)
    decode_overhead_per_seq_s: float = 100e-6  # host time per sequence per decode step (calibrated)
    max_num_seqs: int = 1024
    kv_reserve: float = 0.1
    reload_bw_bytes_per_s: float = 150e9
    bucket_bytes: float = float(2 ** 30)
    bucket_latency_s: float = 1e-3
    recompute: str = "full"
    tokens_per_micro_batch: float = 32768.0
    prefix_shared: bool = True
    rollout_logprobs: bool = False  # True: no old-log-prob pass (the engine's log-probs are used)
    compute_efficiency: float | None = None  # None: the hardware's calibrated efficiency (llmcalc.core.efficiency)
    trainer_efficiency_scale: float = 0.3  # MoE RL trainer's share of the pre-training efficiency (calibrated)
    trainer_efficiency_scale_dense: float = 1.0  # dense RL trainers: the pre-training efficiency as it is
    weight_sync: bool = True  # False: free weight sync (a limit for what-ifs and property tests)
    training_efficiency: object | None = None  # a TrainingEfficiency (e.g. --profile); None: the hardware's
    rollout_efficiency: object | None = None  # an Efficiency for the rollout engines (--profile); None: the default


DEFAULT_SETTINGS = RLSettings()


def effective_batch(lengths, counts, prompt) -> tuple[float, float, float]:
    """(Σℓ tokens, L_eff, B_eff) of the batch, ℓ = prompt + response."""
    total = np.asarray(lengths, float) + prompt
    tok = float(np.dot(total, counts))
    l_eff = float(np.dot(total * total, counts)) / tok
    return tok, l_eff, tok / l_eff


def trainer_unit(tp: int, pp: int, ep: int) -> int:
    """The trainer's GPU count must be a multiple of tp·pp·ep: dp = GPUs/(tp·pp), and the EP group is carved out
    of the DP ranks, so ep must divide dp (Megatron-Core parallel_state.py; llmcalc.training.layout)."""
    return tp * pp * ep


def _layout(m: Model, gpus, tp: int, pp: int, ep: int, zero: int):
    from ..training.layout import Layout

    g = np.asarray(gpus)
    if np.any(g % (tp * pp)):
        bad = int(np.atleast_1d(g)[np.atleast_1d(g % (tp * pp)) != 0][0])
        raise LayoutError(f"trainer GPUs {bad} not divisible by --train-tp·--train-pp = {tp}·{pp}")
    if np.any(g % trainer_unit(tp, pp, ep)):  # ep ∤ dp: expert-DP group tp·dp/(tp·ep) would be fractional or 0
        bad = int(np.atleast_1d(g)[np.atleast_1d(g % trainer_unit(tp, pp, ep)) != 0][0])
        raise LayoutError(f"--train-ep {ep} must divide the trainer's data parallelism {bad // (tp * pp)} = "
                          f"trainer GPUs {bad} / (--train-tp·--train-pp = {tp}·{pp}): the trainer's GPUs (--gpus, "
                          f"less --rollout-gpus when split) must be a multiple of --train-tp·--train-pp·--train-ep "
                          f"= {trainer_unit(tp, pp, ep)}")
    return Layout(tp=tp, pp=pp, dp=g // (tp * pp), ep=ep, zero=zero)


_RL_OPTS = {"tp": "--train-tp", "pp": "--train-pp", "ep": "--train-ep", "pp_layers": None}  # even stages only


def check_trainer_layout(m: Model, tp: int, pp: int, ep: int, zero: int) -> None:
    """The trainer layout's checks that do not depend on its GPU count (tp dividing the heads, pp the layers, ep
    the experts, no ep on a dense model): ``check_layout``'s own, at dp = ep (the smallest dp it allows), its
    messages naming rl's options (--train-tp, --train-pp, --train-ep). LayoutError (one line) on the first."""
    from ..training.layout import Layout, check_layout

    check_layout(m, Layout(tp=tp, pp=pp, dp=ep, ep=ep, zero=zero), options=_RL_OPTS)


def trainer_work(m: Model, hw: Hardware, gpus, lengths, counts, prompt: float, *, algo: str, ref: bool,
                 reward_model: Model | None, minibatches: int, settings: RLSettings, tp: int = 1, pp: int = 1,
                 ep: int = 1, zero: int = 3, critic: Model | None = None) -> dict:
    """Seconds of each trainer phase on ``gpus`` GPUs. A scalar ``gpus`` raises LayoutError when the layout does
    not fit; an array of trainer sizes (the split search, one vectorised call) returns ``fits`` as a mask and
    inf where it does not fit."""
    from ..core.errors import LlmcalcError
    from ..model.flops import forward_flops
    from ..training.step import compute_efficiency_default, step_memory, training_step

    sweep = np.ndim(gpus) > 0
    g = np.asarray(gpus)
    lay = _layout(m, g, tp, pp, ep, zero)
    dp = np.asarray(lay.dp)
    tok, l_eff, b_eff = effective_batch(lengths, counts, prompt)
    seq = max(int(round(l_eff)), 1)
    per_mb = b_eff / minibatches
    per_rank = np.maximum(per_mb / dp, 1.0)
    micro = np.maximum(1, np.minimum(per_rank, settings.tokens_per_micro_batch // seq)).astype(int)  # packed
    k = settings.trainer_efficiency_scale if m.moe else settings.trainer_efficiency_scale_dense
    eff = settings.compute_efficiency or k * (  # the hardware's (or the given profile's) matmul efficiency
        float(settings.training_efficiency.matmul_at(m.d_model / tp)) if settings.training_efficiency is not None
        else compute_efficiency_default(hw, m, tp))
    peak = hw.peak("bf16")
    profile = None
    if settings.compute_efficiency is None and (k != 1.0 or settings.training_efficiency is not None):
        from ..core.efficiency import training_efficiency

        te = settings.training_efficiency or training_efficiency(hw)
        profile = replace(te, matmul=te.matmul * k, attention_flash=te.attention_flash * k,
                          attention_unfused=te.attention_unfused * k,
                          origin=f"{te.origin} x {k:g} (RL trainer, RLSettings.trainer_efficiency_scale)")
    fits = np.ones(np.shape(g), bool)

    def step_at(model: Model, mb, sel=None, fit=None):
        """training_step at micro-batch ``mb``: the scalar size, or the sweep's sizes ``sel`` (a mask; None: all)
        with ``mb`` one per selected size. ``fit``: what ``_memory_fit`` said of them (None: not asked)."""
        gs, ds, ls = (g, dp, lay) if sel is None else (g[sel], dp[sel], replace(lay, dp=dp[sel]))
        gbj = _gbj(ds, mb)
        if not sweep:
            fit = _memory_fit(model, ls, mb, gbj) if np.any(mb > 1) else None
            if fit is not None and not fit.any():
                # update() halves a micro-batch that does not fit and drops its time: ask training_step's own memory
                # check alone (no communication ledger, most of a step's cost; issue #13). One sequence per
                # micro-batch is always stepped, so a trainer that never fits still gets the step's error and figures.
                return np.zeros(np.shape(g), bool), np.full(np.shape(g), np.inf), None
        # where that check says the size fits, the step's own check would say so too (fits = True): not repeated
        r = training_step(model, hw, ls, **_step_args(mb, gbj, gs), efficiency=profile,
                          check_memory=not (fit is not None and fit.all()))
        ok = np.asarray(r.data["fits"], bool) & np.asarray(r.data.get("valid", True), bool)  # its memory check
        t = np.asarray(r.data["step_time_s"], float) * (per_mb / gbj) * minibatches
        return ok, t, r

    def _step_args(mb, gbj, gs) -> dict:
        """The arguments step_at passes training_step (and _memory_fit step_memory: the same ones)."""
        return dict(global_batch=gbj if sweep else int(gbj), micro_batch=mb if sweep else int(mb), seq=seq,
                    gpus=None if gs is None else gs if sweep else int(gs), recompute=settings.recompute,
                    compute_efficiency=settings.compute_efficiency, causal=True)

    def _memory_fit(model: Model, ls, mb, gbj):
        """``data['fits']`` of the training_step call in step_at (a bool array, one per size of a sweep): its own
        memory check (step_memory, with the same arguments); None where it refuses the layout, which is then left to
        training_step, so its error wording is unchanged."""
        try:
            mem = step_memory(model, hw, ls, **_step_args(mb, gbj, None))
        except LlmcalcError:
            return None
        return np.asarray(mem.data["fits"], bool)

    def update(model: Model):
        """Packed micro-batches of ``tokens_per_micro_batch``, halved until the activations fit (as a user
        lowers ``ppo_max_token_len_per_gpu``)."""
        nonlocal fits
        if sweep:
            ok, t = sweep_update(model)
            fits = fits & ok
            return np.where(fits, t, np.inf)
        mb = np.asarray(micro)
        ok, t, r = step_at(model, mb)
        while not bool(ok) and mb > 1:
            mb = np.maximum(mb // 2, 1)
            ok, t, r = step_at(model, mb)
        if not bool(ok):
            # raising --train-tp only works where the trainer's GPUs split into groups of 2·tp·pp: on 1 GPU the
            # advice "raise --train-tp" led to "trainer GPUs 1 not divisible by --train-tp·--train-pp = 2·1"
            wider = int(g) % (2 * tp * pp) == 0
            raise LayoutError(f"the trainer does not fit: {model.display_name} on {int(g)} x {hw.display_name} "
                              f"(tp {tp}, pp {pp}, dp {int(dp)}, ZeRO-{zero}) needs "
                              f"{float(r.data['memory_bytes_needed']) / 2 ** 30:.1f} GiB per GPU even with one "
                              f"{seq:,}-token sequence per micro-batch; give the trainer more GPUs"
                              + (f" or raise --train-tp (e.g. to {2 * tp})" if wider else ""))
        fits = fits & ok
        return float(t)

    def sweep_update(model: Model):
        """update() over an array of sizes: each size runs the scalar call's sequence of micro-batches (halved
        while it does not fit) and keeps the step time of the first that fits. Memory is asked first, alone
        (step_memory: training_step's own check), at every micro-batch of each size's sequence in one
        call; the step (its communication ledger is most of its cost) then runs once per round, on the sizes at
        their first micro-batch whose memory fits, not on every size at every micro-batch.
        Returns (ok, step time; inf where no micro-batch fits)."""
        mb = micro.copy()
        ok, t = np.zeros(np.shape(g), bool), np.full(np.shape(g), np.inf)
        todo = np.ones(np.shape(g), bool)
        while todo.any():
            sels, tries, sel, cur = [], [], todo.copy(), mb.copy()  # each size's micro-batches from mb down to one
            while sel.any():
                sels.append(sel)
                tries.append(cur)
                sel, cur = sel & (cur > 1), np.maximum(cur // 2, 1)
            d_all = np.concatenate([dp[s] for s in sels])
            mb_all = np.concatenate([c[s] for s, c in zip(sels, tries, strict=True)])
            fit = _memory_fit(model, replace(lay, dp=d_all), mb_all, _gbj(d_all, mb_all))
            if fit is not None:  # each size at its first micro-batch that fits; none: it does not fit
                found = np.zeros(np.shape(g), bool)
                for s, c, f in zip(sels, tries, np.split(fit, np.cumsum([n.sum() for n in sels])[:-1]), strict=True):
                    pick = s.copy()
                    pick[s] = f
                    pick &= ~found
                    mb[pick] = c[pick]
                    found |= pick
                todo &= found
                if not todo.any():
                    return ok, t
                fit = np.ones(int(todo.sum()), bool)
            ok_s, t_s, _ = step_at(model, mb[todo], todo, fit)  # fit None: the step's own check (or its error)
            ok[todo], t[todo] = ok_s, t_s
            todo &= ~ok & (mb > 1)
            mb[todo] = np.maximum(mb[todo] // 2, 1)
        return ok, t

    def _gbj(ds, mb):
        """The optimizer step's global batch: per_mb sequences rounded to whole micro-batches on every DP rank."""
        return np.maximum(ds * mb, np.round(per_mb / (ds * mb)).astype(int) * ds * mb)

    def forward(model: Model):
        f = float(forward_flops(model, 1, seq, causal=True).data["forward_flops"])
        t = b_eff * f / (g * peak * eff)
        return t if sweep else float(t)

    zero_t = np.zeros(np.shape(g)) if sweep else 0.0
    old = zero_t if settings.rollout_logprobs else forward(m)  # engine log-probs: no old-policy pass
    out = {"old_logprob_s": old, "ref_logprob_s": forward(m) if ref else zero_t,
           "reward_s": forward(reward_model) if reward_model is not None else zero_t,
           "critic_s": zero_t, "update_s": update(m), "tokens": tok, "l_eff": l_eff, "b_eff": b_eff,
           "layout": {"tp": tp, "pp": pp, "dp": dp if sweep else int(dp), "ep": ep, "zero": zero},
           "compute_efficiency": eff}
    if algo == "ppo":
        c = critic or m
        # a critic of the policy's architecture (the default) trains the same step: its time, not a second call
        out["critic_s"] = forward(c) + (out["update_s"] if c is m else update(c))
    out["total_s"] = sum(out[k] for k in ("old_logprob_s", "ref_logprob_s", "reward_s", "critic_s", "update_s"))
    out["fits"] = fits if sweep else True
    return out


def trainer_at(sweep: dict, i: int) -> dict:
    """Element ``i`` of an array call of ``trainer_work`` that fits, as the scalar call on that size returns it
    (the same keys and Python floats; the sweep runs the same elementwise float operations, so the same bits:
    tests/test_rl_trainer_sweep.py). The split search's one vectorised call thus also answers the scalar
    questions the simulations and the report then ask of its candidates (issue #13)."""
    if not bool(np.asarray(sweep["fits"])[i]):
        raise ValueError("trainer_at: element does not fit (the scalar call raises the trainer's own message)")
    out = {k: float(np.asarray(sweep[k])[i]) for k in ("old_logprob_s", "ref_logprob_s", "reward_s", "critic_s",
                                                      "update_s")}
    out |= {"tokens": sweep["tokens"], "l_eff": sweep["l_eff"], "b_eff": sweep["b_eff"],
            "layout": dict(sweep["layout"], dp=int(np.asarray(sweep["layout"]["dp"])[i])),
            "compute_efficiency": sweep["compute_efficiency"], "total_s": float(np.asarray(sweep["total_s"])[i]),
            "fits": True}
    return out


_PLANNED: dict = {}  # planned_layout results: a face probing other values of one input re-asks the same question


def planned_layout(m: Model, hw: Hardware, gpus: int, lengths, counts, prompt: float, minibatches: int,
                   recompute: str | None = None) -> dict:
    """The training planner's best layout (llmcalc.training.plan, objective time) for one optimizer step of
    this batch: B_eff/minibatches sequences of L_eff tokens (global batch rounded up to a multiple of the GPU
    count, as ``trainer_work`` does). Pinned to what ``trainer_work`` times: no context parallelism, no virtual
    stages or sequence parallelism, PP dividing the layers, expert TP = TP, no optimizer offload (a layout
    that fits only with ETP or offload is not one trainer_work can run), and ``recompute`` when given (the trainer's
    own: the planner otherwise picked a layout for "no-rc" that trainer_work then ran with full recomputation, and
    the assumptions said both). Returns {tp, pp, ep, zero, layout, gpus}; LayoutError when nothing fits."""
    from ..training.plan import plan_training

    key = (repr(m), repr(hw), int(gpus), tuple(np.asarray(lengths, float)), tuple(np.asarray(counts, float)),
           float(prompt), int(minibatches), recompute)
    if key in _PLANNED:
        return dict(_PLANNED[key])
    _, l_eff, b_eff = effective_batch(lengths, counts, prompt)
    seq = max(int(round(l_eff)), 1)
    gb = int(max(gpus, math.ceil(b_eff / minibatches / gpus) * gpus))
    pps = [d for d in range(1, m.n_layers + 1) if m.n_layers % d == 0]
    best = plan_training(m, hw, gpus=int(gpus), global_batch=gb, seq=seq, top=1, brief=True,
                         pins={"cp": 1, "v": 1, "sp": 0, "pp": pps, "etp": 0} | ({} if recompute is None
                                                                                 else {"rc": recompute}),
                         offload=False).data["best"]
    if best is None:
        raise LayoutError(f"the trainer does not fit: the planner finds no layout of {m.display_name} on {gpus} x "
                          f"{hw.display_name} for {gb} sequences of {seq:,} tokens; give the trainer more GPUs "
                          "(raise --gpus)")
    if len(_PLANNED) > 64:
        _PLANNED.clear()
    _PLANNED[key] = {k: int(best[k]) for k in ("tp", "pp", "ep", "zero")} | {"layout": best["layout"],
                                                                           "gpus": int(gpus)}
    return dict(_PLANNED[key])


def trainer_fits(m: Model, hw: Hardware, gpus, lengths, counts, prompt: float, *, minibatches: int,
                 settings: RLSettings, tp: int = 1, pp: int = 1, ep: int = 1, zero: int = 3):
    """Whether ``trainer_work`` finds a trainer that fits, from the memory model alone: it halves its packed
    micro-batch down to one sequence, and memory only falls as the micro-batch does, so the trainer fits
    iff one L_eff-token sequence per micro-batch fits (bool, or a mask over an array of sizes): the step's own
    memory check (step_memory) at micro-batch 1, with the global batch trainer_work's _gbj gives it."""
    from ..training.step import step_memory

    g = np.asarray(gpus)
    lay = _layout(m, g, tp, pp, ep, zero)
    dp = np.asarray(lay.dp)
    _, l_eff, b_eff = effective_batch(lengths, counts, prompt)
    per_mb = b_eff / minibatches
    gb = np.maximum(dp, np.round(per_mb / dp).astype(int) * dp)
    r = step_memory(m, hw, lay, micro_batch=1, seq=max(int(round(l_eff)), 1), recompute=settings.recompute,
                    global_batch=gb if np.ndim(g) else int(gb))
    return np.asarray(r.data["fits"], bool) if np.ndim(g) else bool(r.data["fits"])


def weight_bytes(m: Model) -> float:
    from ..model.params import count_params

    return float(count_params(m)) * 2  # bf16 weights, as trainers hand them to engines


def _bw(hw: Hardware, group: int, eff: float) -> tuple[float, str]:
    up = hw.scale_up
    if group <= up.domain_size:
        return up.ring_bw_per_direction(max(group, 2)) * eff, "scale-up"
    if hw.scale_out is None:
        from ..network.collectives import network_needed

        raise network_needed(hw, "the weight sync")
    node = min(up.per_direction_bytes_per_s, up.domain_size * hw.scale_out.per_direction_bytes_per_s)
    return node * eff, "network (one ring per NIC)"


def weight_sync(m: Model, hw: Hardware, *, colocated: bool, trainer_gpus: int, rollout_gpus: int,
                settings: RLSettings, link_eff: float | None = None, size_bytes: float | None = None,
                owners: int | None = None) -> list:
    """Figures of one weight sync: transfer, buckets, engine reload, total (seconds).

    ``owners``: the number of ranks that each hold an equal share of the checkpoint in host memory
    (checkpoint-engine: examples/update.py ``split_tensors`` gives every one of the world_size ranks 1/world_size
    of the index's tensors). A bucket never spans two owner ranks (checkpoint_engine/ps.py ``_gen_h2d_buckets``
    starts a new bucket for every owner, MoonshotAI/checkpoint-engine 7185b555), so the sync pays
    owners·⌈S/(owners·bucket)⌉ buckets, not ⌈S/bucket⌉. None: one contiguous stream, ⌈S/bucket⌉ buckets."""
    from ..network.collectives import ALPHA_OUT_S, ALPHA_UP_S, link_efficiency_default, ring_time_formula

    eff = link_efficiency_default() if link_eff is None else link_eff
    s = weight_bytes(m) if size_bytes is None else size_bytes
    figs = []
    if colocated:
        n = trainer_gpus
        bw, where = _bw(hw, n, 1.0)
        alpha = ALPHA_UP_S if n <= hw.scale_up.domain_size else ALPHA_OUT_S
        figs.append(derive("sync/transfer_s", ring_time_formula("all-gather"), "s", SRC_AG,
                           label=f"reshard: all-gather of the bf16 weights over {n} GPUs ({where})",
                           alpha=alpha, n=max(n, 1), S=s, bw=bw, eff=eff))
    else:
        n = trainer_gpus + rollout_gpus
        bw, where = _bw(hw, n, 1.0)
        alpha = ALPHA_UP_S if n <= hw.scale_up.domain_size else ALPHA_OUT_S
        figs.append(derive("sync/transfer_s", "alpha*(n - 1) + S/(bw*eff)", "s", SRC_BCAST,
                           label=f"broadcast of the bf16 weights to {rollout_gpus} rollout GPUs ({where})",
                           alpha=alpha, n=n, S=s, bw=bw, eff=eff))
    if owners is None:
        figs.append(derive("sync/buckets_s", "ceil(S/bucket)*lat", "s", "judgement: one NCCL launch + metadata per "
                           "bucket (RLSettings.bucket_latency_s)", label="per-bucket latency", S=s,
                           bucket=settings.bucket_bytes, lat=settings.bucket_latency_s))
    else:
        figs.append(derive("sync/buckets_s", "owners*ceil(S/(owners*bucket))*lat", "s",
                           "a bucket never spans two owner ranks (checkpoint-engine ps.py _gen_h2d_buckets); "
                           "judgement: one NCCL launch + metadata per bucket (RLSettings.bucket_latency_s)",
                           label="per-bucket latency (buckets per owner rank)", owners=owners, S=s,
                           bucket=settings.bucket_bytes, lat=settings.bucket_latency_s))
    figs.append(derive("sync/reload_s", "S/reload_bw", "s", "calibrated on checkpoint-engine Qwen3-235B 8×H800 "
                       "(RLSettings.reload_bw_bytes_per_s)", label="engine reload of the weights",
                       S=s, reload_bw=settings.reload_bw_bytes_per_s))
    if not settings.weight_sync:
        return [derive("sync_s", "0", "s", "free weight sync (RLSettings.weight_sync = False)",
                       label="weight sync (free: a limit)")]
    figs.append(derive("sync_s", "transfer + buckets + reload", "s", "sum of the rows above",
                       label="weight sync (colocated reshard)" if colocated else "weight sync (disaggregated)",
                       transfer=figs[0].value, buckets=figs[1].value, reload=figs[2].value))
    return figs


def ceil_div(a: float, b: float) -> int:
    return int(math.ceil(a / b - 1e-12))
