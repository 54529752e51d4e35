"""The presentation side of ``llmcalc.rl.step.rl_step``: each regime's figures, breakdown row, timeline bars and
the assumptions the result lists first. Nothing here computes a time; it arranges what step.py computed
(``ctx`` is step.py's per-configuration context)."""

from __future__ import annotations

from ..core.results import Figure, derive
from .phases import SRC_LEFF
from .rollout import SRC_CB

TRAINER_PHASES = (("score", "reward_s"), ("log-probs", "old_logprob_s"), ("log-probs", "ref_logprob_s"),
                  ("train", "critic_s"), ("train", "update_s"))


def _trainer_spans(tr: dict, start: float) -> list[tuple]:
    """The trainer's bar split into score, log-probs and train (critic + policy update), in that order."""
    out, t = [], start
    for phase, key in TRAINER_PHASES:
        if tr[key] > 0:
            out.append(("trainer", phase, t, t + tr[key]))
            t += tr[key]
    return out


def _timeline(name: str, g: dict, tr: dict, sync_s: float, periods: int = 2) -> list[dict]:
    """Bars (row, phase, start_s, end_s) of ``periods`` steady-state steps of a closed-form regime; gaps are idle."""
    spans, t0 = [], 0.0
    for _ in range(periods):
        gen, trn = g["time_s"], tr["total_s"]
        if name in ("sync_colocated", "sync_disaggregated"):
            spans.append(("rollout pool", "generate", t0, t0 + gen))
            spans += _trainer_spans(tr, t0 + gen)
            end = t0 + gen + trn
        else:  # one_step_off: the next batch generates while this one trains
            spans.append(("rollout pool", "generate", t0, t0 + gen))
            spans += _trainer_spans(tr, t0)
            end = t0 + max(gen, trn)
        # colocated, one set of GPUs reshards once: the sync is the trainer's time (trainer_busy counts it, the
        # rollout pool's idle does too), so only that row draws it; split pools both stop for it
        spans += ([] if name == "sync_colocated" else [("rollout pool", "sync", end, end + sync_s)]) \
            + [("trainer", "sync", end, end + sync_s)]
        t0 = end + sync_s
    return [{"row": r, "phase": p, "start_s": a, "end_s": b} for r, p, a, b in spans if b > a]


def _async_timeline(sim: dict, tr: dict) -> list[dict]:
    out = []
    for row, phase, a, b in sim["timeline"]:
        if row == "trainer" and phase == "train":
            out += [{"row": r, "phase": p, "start_s": x, "end_s": y} for r, p, x, y in _trainer_spans(tr, a)]
        else:
            out.append({"row": row, "phase": phase, "start_s": a, "end_s": b})
    return out


def _idle(step_s: float, busy: float) -> float:
    """A pool's idle seconds per step; a residue of float rounding (a busy pool's sums of phases, ~1e-13 s) is
    none, not a figure to print (the page showed "9.1 × 10⁻¹³ s")."""
    return 0.0 if step_s - busy <= 1e-9 * step_s else step_s - busy


def token_rates(name: str, ctx, step_s: float) -> tuple[Figure, Figure]:
    """Trained and generated tokens/s of a regime: the one place both the table's columns and --explain read."""
    label = name.replace("_", " ")
    resp = ctx.resp_tokens / ctx.batch
    return (derive(f"{name}/trained_tokens_per_s", "samples * (prompt + response) / step", "token/s",
                   "trained tokens are prompt + response of every sample; response: the simulated batch's mean (its "
                   "expected order statistics, rl.lengths cohorts)", label=f"{label}: trained tokens/s",
                   samples=ctx.batch, prompt=ctx.prompt, response=resp, step=step_s),
            derive(f"{name}/generated_tokens_per_s", "samples * response / step", "token/s",
                   "response tokens the rollout pool generates per step", label=f"{label}: generated tokens/s",
                   samples=ctx.batch, response=resp, step=step_s))


def _regime(name, step_s, parts: dict, ctx, rollout_gpus, trainer_gpus, rollout_busy, trainer_busy,
            staleness=(0.0, 0)) -> dict:
    trained, generated = (f.value for f in token_rates(name, ctx, step_s))
    total = rollout_gpus + (0 if name == "sync_colocated" else trainer_gpus)
    return {"step_s": step_s, "breakdown_s": parts, "rollout_gpus": rollout_gpus, "trainer_gpus": trainer_gpus,
            "trained_tokens_per_s": trained, "generated_tokens_per_s": generated,
            "trained_tokens_per_s_per_gpu": trained / total,
            "rollout_utilisation": rollout_busy / step_s, "rollout_idle_s": _idle(step_s, rollout_busy),
            "trainer_utilisation": trainer_busy / step_s, "trainer_idle_s": _idle(step_s, trainer_busy),
            "staleness_mean": staleness[0], "staleness_max": staleness[1],
            # GPU-seconds per step: work done by each pool, and idle (colocated pools share their GPUs)
            "rollout_gpu_s": rollout_busy * rollout_gpus,
            "trainer_gpu_s": trainer_busy * (rollout_gpus if name == "sync_colocated" else trainer_gpus),
            # ≥ 0: colocated it is 0 by construction, and the subtraction left -9e-13 (a negative time) in --json
            "idle_gpu_s": max(step_s * total - rollout_busy * rollout_gpus
                              - trainer_busy * (rollout_gpus if name == "sync_colocated" else trainer_gpus), 0.0)}


def _parts(g: dict, tr: dict, sync_s: float) -> dict:
    return {"generate_s": g["time_s"], "prefill_s": g["prefill_s"], "score_s": tr["reward_s"],
            "logprob_s": tr["old_logprob_s"] + tr["ref_logprob_s"], "critic_s": tr["critic_s"],
            "train_s": tr["update_s"], "sync_s": sync_s}


def _rekey(f: Figure, prefix: str) -> Figure:
    from dataclasses import replace

    return replace(f, key=prefix + f.key)


def _gen_figs(key: str, g: dict, engines: int) -> list[Figure]:
    return [Figure(f"{key}/generate_s", g["time_s"], "s", "Σ over events of steps × t_step(ceil(active/engines), "
                   "mean context) + prefills", f"{engines} engines, {g['tokens']:,.0f} response tokens",
                   SRC_CB + "; roofline step of llmcalc.inference.latency + per-step overhead",
                   f"{key.replace('_', ' ')}: generate the batch (to the longest sample)")]


def _train_figs(key: str, tr: dict, gpus: int) -> list[Figure]:
    lay = tr["layout"]
    return [derive(f"{key}/trainer_s", "old_logprob + ref + reward + critic + update", "s",
                   SRC_LEFF + "; llmcalc.training.step on the trainer layout",
                   label=f"{key.replace('_', ' ')}: trainer on {gpus} GPUs (tp {lay['tp']}, pp {lay['pp']}, "
                         f"dp {lay['dp']}, ZeRO-{lay['zero']})",
                   old_logprob=tr["old_logprob_s"], ref=tr["ref_logprob_s"], reward=tr["reward_s"],
                   critic=tr["critic_s"], update=tr["update_s"])]


def _assumptions(ctx, k: int, tk: int, searched: bool, partial: bool, eta, colocated_why: str | None,
                 candidates=None) -> list[str]:
    s = ctx.s
    # the search keeps at most 48 splits (rl.step._split_candidates): "every split" was not what it tried on 64 GPUs
    # (rollout 2, 4, …, 62), so the text names the candidates it scored
    tried = ("" if candidates is None or not len(candidates) else
             f" over the {len(candidates)} splits of rollout GPUs {_span(candidates)}")
    split = (f"split: {k} rollout + {tk} trainer GPUs" + (f" (searched: async throughput bound{tried}, "
                                                         "best three simulated)" if searched else " (given)")
             if k is not None else "split: none feasible")
    out = [f"responses: {ctx.response.describe_as}; tail and drain from {len(ctx.lengths)} cohorts of the "
           f"{ctx.batch:,} expected order statistics (by quadrature; a large batch's bulk by quantile bands)",
           f"rollout engines: {ctx.rtp} GPU(s) each, {ctx.slots} sequences each; decode step = roofline "
           f"(llmcalc.inference.latency, {ctx.dep.eff.describe()}) + host time {s.decode_step_overhead_s * 1e3:g} ms "
           f"+ {s.decode_overhead_per_seq_s * 1e6:g} µs per sequence per step (calibrated, RLSettings)",
           (f"trainer layout: the planner's best on all {ctx.planned['gpus']} GPUs ({ctx.planned['layout']}), kept "
            "for the split trainer; " if ctx.planned else "trainer layout: given; ")
           + f"tp {ctx.ttp}, pp {ctx.tpp}, ep {ctx.tep}, ZeRO-{ctx.zero}, recompute {s.recompute}, {ctx.mb} PPO "
           "mini-batch(es) = optimizer steps; "
           f"{'PPO: critic forward + update; ' if ctx.algo == 'ppo' else ''}old log-probs "
           f"{'from the engine (no forward pass)' if s.rollout_logprobs else 'recomputed (one forward)'}; "
           "reference log-probs "
           f"{'on' if ctx.ref else 'off'}; reward {'model forward' if ctx.rm else 'rule-based (free)'}",
           f"weight sync: bf16 weights; engine reload at {s.reload_bw_bytes_per_s / 1e9:g} GB/s (calibrated on "
           f"checkpoint-engine), {s.bucket_bytes / 2 ** 30:g} GiB buckets at {s.bucket_latency_s * 1e3:g} ms each",
           split,
           f"fully async: staleness η = {'inf' if eta is None else eta}, interruptible rollouts "
           f"{'on (KV recomputed after each sync)' if partial else 'off (sync waits for the pool to drain)'}; "
           "η bounds admission (AReaL §5.1: at most (η + 1)·B rollouts started and not yet trained), so a sample "
           "lags at most η versions if trained in admission order; the trainer takes the first B completed "
           "(AReaL's buffer), and a long rollout overtaken by shorter ones lags more: the lag column is measured",
           "pools are balanced fluidly across engines; generation and training efficiency do not depend on the "
           "regime; CPU-side reward, data loading and logging are not counted"]
    if colocated_why is not None:
        out.append(f"WARNING: no trainer colocated on all GPUs ({colocated_why}); sync colocated is left out")
    return out


def _span(ks) -> str:
    """Candidate rollout sizes as people write a range: '2, 4, …, 62' (an even step), else the list."""
    ks = [int(x) for x in ks]
    steps = {b - a for a, b in zip(ks, ks[1:], strict=False)}
    if len(ks) > 3 and len(steps) == 1:
        return f"{ks[0]}, {ks[1]}, …, {ks[-1]}"
    return ", ".join(map(str, ks))
