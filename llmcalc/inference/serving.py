"""Serving capacity: how many accelerators serve a load within latency targets, and at what price.

Method (every step printed as an assumption):
1. load: qps = users x requests per user per minute / 60 (or --qps directly); or N simultaneous streams
   (--concurrent: each stream always has one request in flight, so the load is N sequences in flight and
   the rate follows from Little's law, qps = N / T);
2. for each TP = 1, 2, 4, … up to the scale-up domain (NVLink node) whose weights plus KV fit and for
   which some concurrency meets both targets, the fleet it needs; the TP needing fewest GPUs wins. Steps 2-4
   are the serving planner's search (:mod:`llmcalc.inference.plan_serve`: ``search`` over ``tp_family``, one
   weight and KV precision, no pipeline, expert parallelism or disaggregation); serve presents its answer;
3. per replica, the largest concurrency N (continuous batching, steady state from
   :mod:`llmcalc.inference.batching`) with TTFT = t_prefill + t_decode(N) <= target and the prefill-stretched
   TPOT = t_decode(N)/(1 − qps·t_prefill) <= target, and N within the KV cap; its throughput is
   N / T(N) requests/s (Little's law);
4. replicas = ceil(qps / per-replica rate) (or ceil(N / per-replica concurrency)), GPUs = replicas x TP;
   cost per million output tokens = GPUs x price per hour / (3600 x output tokens/s) x 1e6 with all GPU
   time charged to output, and split: the prefill share of GPU time (qps_replica x t_prefill) over input
   tokens, the rest over output tokens (the two add up to the fleet's cost);
5. the figures "at this load" are the steady state of one replica receiving qps / replicas (the load
   spread evenly), solved as in :func:`llmcalc.batching.continuous_batching`; the design point of
   step 3 is reported as the per-replica capacity.
When no TP degree works, each one's failing constraint is named (weights do not fit, no room for
one sequence's KV, or TTFT/TPOT already over target at batch 1).
"""

from __future__ import annotations

import math

import numpy as np

from ..core.checks import check_count, check_number, check_price
from ..core.efficiency import DEFAULT_EFFICIENCY, Efficiency
from ..core.errors import LlmcalcError, NoDeploymentError
from ..core.results import Result, derive
from ..core.specs import Hardware, Model
from .batching import check_workload, concurrency_for_rate, curve, queue_figures, rate_curve
from .plan_serve import Workload, replica_deployment, search, tp_family

SRC_LOAD = "load: users x requests/user/min / 60"
# The least load serve plans (req/s): below it a replica count is 0 by float underflow and $ per token has no
# finite value (a judgement: one request every 11.6 days is no deployment).
MIN_QPS = 1e-6
SRC_REPLICA = "per-replica rate N/T(N) at the largest N meeting TTFT and TPOT (Little's law; Orca-style batching)"
SRC_COST = "cost = GPUs x price/h / (3600 x output tokens/s), per 1e6 tokens"
SRC_SPLIT = ("GPU time split by phase: prefill takes qps_replica x t_prefill of each replica's time (the rest is "
             "decode); each phase's share of the cost over its own tokens (our allocation rule)")
SRC_STREAMS = "N simultaneous streams: each keeps one request in flight (closed loop), N = qps x T (Little 1961)"


DEFAULT_TTFT_S, DEFAULT_TPOT_S = 2.0, 0.05  # serve's default targets (summary's across-nodes fallback uses them too)


def serve(model: Model, hw: Hardware, *, prompt: int, output: int, ttft_s: float = DEFAULT_TTFT_S,
          tpot_s: float = DEFAULT_TPOT_S,
          users: float | None = None, requests_per_user_per_min: float = 1.0, qps: float | None = None,
          weights: str | float = "bf16", group_size: int | None = None, kv_dtype: str = "bf16",
          activations: str = "bf16", eff: Efficiency = DEFAULT_EFFICIENCY, price_usd_per_hour: float | None = None,
          reserve: float = 0.1, concurrent: float | None = None) -> Result:
    """Replicas, GPUs, tokens/s and $ per million input and output tokens for a load and latency targets.

    The load is one of: ``users`` (each sending ``requests_per_user_per_min``), ``qps``, or ``concurrent``
    simultaneous streams (each always has one request in flight)."""
    if sum(x is not None for x in (users, qps, concurrent)) != 1:
        raise LlmcalcError("give exactly one of --users N, --qps Q or --concurrent N")
    for opt, v in (("--prompt", prompt), ("--output", output), ("--users", users), ("--qps", qps),
                   ("--concurrent", concurrent), ("--ttft", ttft_s), ("--tpot", tpot_s), ("--reserve", reserve),
                   ("--price", price_usd_per_hour), ("--requests-per-user-per-min", requests_per_user_per_min)):
        if np.ndim(v):  # one plan per load: a sweep is a loop over calls
            raise LlmcalcError(f"serve plans one load at a time; {opt} got an array of {np.size(v)}")
    # users and streams are whole counts: 5e-324 users gave a rate that underflows to 0 and a 0/0 (issue #13)
    check_count(users, "--users")
    check_count(concurrent, "--concurrent")
    check_number(requests_per_user_per_min, "--requests-per-user-per-min")
    check_workload(1.0 if qps is None else qps, prompt, output, reserve)
    check_number(ttft_s, "--ttft")
    check_number(tpot_s, "--tpot")
    check_price(price_usd_per_hour)  # 0: hardware already paid for, as plan and plan-serve take it
    figs = []
    if users is not None:
        figs.append(derive("qps", "users*rpm/60", "req/s", SRC_LOAD, label="request rate", users=users,
                           rpm=requests_per_user_per_min))
    elif qps is not None:
        figs.append(derive("qps", "q", "req/s", "given", label="request rate", q=qps))
    load = figs[0].value if figs else None  # streams: the rate follows from the replicas chosen
    if load is not None and not load >= MIN_QPS:  # 5e-324 req/s: 0 replicas, then $/token over a zero rate
        given = "--qps" if qps is not None else "--users x --requests-per-user-per-min / 60"
        raise LlmcalcError(f"{given} gives {load:.3g} req/s; serve plans a load in [{MIN_QPS:g}, ∞) req/s "
                           "(one request every 11.6 days at the least)")
    # The serving planner's search (llmcalc.inference.plan_serve) over serve's family: TP = 1, 2, 4, … within the
    # scale-up domain at the given precision. Every TP degree that works is costed; the one needing the fewest GPUs
    # wins (ties: the smaller TP). A larger TP often pays for itself: more KV room, more sequences in flight.
    family = tp_family(model, hw, weights, kv_dtype, group_size, activations)
    outcomes, _, _ = search(model, hw, family, Workload.of(prompt, output), load=load, concurrent=concurrent,
                            price=None, disaggregate=False, ttft_s=ttft_s, tpot_s=tpot_s, ttft_p99_s=None,
                            tpot_p99_s=None, eff=eff, reserve=reserve)
    tried = [f"tp {r.tp}: N = {int(e['concurrency'])}, {e['qps']:.3g} req/s per replica, {row['gpus']} GPUs"
             if row else f"tp {r.tp}: {e['why']}" for r, e, row in outcomes]
    ok = [(row["gpus"], r.tp, r, e) for r, e, row in outcomes if row]
    if not ok:
        # where memory holds no sequence at any TP degree, relaxed targets cannot help: say what can
        across = ", or spread a replica over nodes with `llmcalc plan-serve` (TP×PP)" if hw.scale_out else ""
        if all(e.get("weights_fit") is False for _, e, _ in outcomes):
            advice = ("the weights fit at no TP degree, so no target helps: quantise (--weights) or pick hardware "
                      f"with more memory{across}")
        elif all(e.get("fits") is False for _, e, _ in outcomes):
            advice = ("memory holds no sequence at any TP degree, so no target helps: quantise the KV cache "
                      f"(--kv-dtype) or the weights, shorten --prompt/--output, or pick hardware with more "
                      f"memory{across}")
        else:
            advice = "relax the targets, quantise, or pick larger hardware"
        raise NoDeploymentError(f"no TP degree up to {hw.scale_up.domain_size} on {hw.display_name} serves "
                           f"{model.display_name} within TTFT {ttft_s:g} s and TPOT {tpot_s * 1e3:g} ms "
                           f"({'; '.join(tried)}); {advice}")
    _, _, rep, b = min(ok, key=lambda x: x[:2])
    dep = replica_deployment(model, hw, rep, eff)
    figs.append(derive("tp", "t", "GPU", "the power of two in the scale-up domain needing the fewest GPUs in total",
                       label="TP degree per replica", t=dep.tp))
    figs.append(derive("capacity/concurrency", "N", "seq", SRC_REPLICA,
                       label="per-replica capacity: largest concurrency meeting the targets", N=b["concurrency"]))
    figs.append(derive("capacity/ttft_s", "t_prefill + t_decode", "s",
                       "prefill of one prompt + one running decode step", label="per-replica capacity: TTFT",
                       t_prefill=b["t_prefill_s"], t_decode=b["t_decode_s"]))
    figs.append(derive("capacity/tpot_s", "t_decode/(1 - share)", "s", "decode step stretched by interleaved prefill",
                       label="per-replica capacity: TPOT", t_decode=b["t_decode_s"], share=b["prefill_share"]))
    figs.append(derive("qps_per_replica", "N/T", "req/s", SRC_REPLICA, label="per-replica capacity: requests/s",
                       N=b["concurrency"], T=b["request_s"]))
    if concurrent is None:
        figs.append(derive("replicas", "ceil(qps/per_replica)", "replica", "enough replicas for the load",
                           label="replicas", qps=load, per_replica=b["qps"]))
    else:
        figs.append(derive("replicas", "ceil(streams/per_replica)", "replica",
                           "enough replicas for the streams, each within its capacity concurrency", label="replicas",
                           streams=concurrent, per_replica=b["concurrency"]))
    replicas = figs[-1].value
    if concurrent is not None:  # N streams spread evenly: each replica runs N/replicas in flight; λ = n/T(n)
        n_r = concurrent / replicas
        at_n = curve(dep, prompt, output, n_r)
        figs.insert(0, derive("qps", "replicas*n/T", "req/s", SRC_STREAMS, label="request rate (from the streams)",
                              replicas=replicas, n=n_r, T=float(at_n["request_s"])))
        load = figs[0].value
    figs.append(derive("gpus", "replicas*tp", "GPU", "definition", label="GPUs in total",
                       replicas=replicas, tp=dep.tp))
    # the steady state each replica actually runs at: the load spread evenly over the replicas
    figs.append(derive("qps_at_load_per_replica", "qps/replicas", "req/s", "load spread evenly over the replicas",
                       label="requests/s per replica at this load", qps=load, replicas=replicas))
    lam_r = figs[-1].value
    if concurrent is None:
        grid, c = rate_curve(dep, prompt, output, b["kv_cap"])
        at = curve(dep, prompt, output, concurrency_for_rate(grid, c, lam_r))
    else:
        at = at_n
    figs.append(derive("concurrency", "N", "seq", "Little's law (Little 1961): solves N = qps_replica·T(N)",
                       label="sequences in flight per replica at this load", N=float(at["concurrency"])))
    figs.append(derive("ttft_s", "t_prefill + t_decode", "s", "prefill of one prompt + one running decode step",
                       label=f"TTFT at this load ({eff.describe()})", t_prefill=at["t_prefill_s"],
                       t_decode=float(at["t_decode_s"])))
    rho = float(at["prefill_share"])
    if rho < 1:  # the wait before a prefill starts: the M/D/1 queue of llmcalc.inference.batching
        figs += queue_figures(float(at["t_prefill_s"]), float(at["t_decode_s"]), rho)
    figs.append(derive("tpot_s", "t_decode/(1 - qps_replica*t_prefill)", "s",
                       "decode step stretched by interleaved prefill (Orca-style continuous batching)",
                       label="TPOT at this load", t_decode=float(at["t_decode_s"]), qps_replica=lam_r,
                       t_prefill=at["t_prefill_s"]))
    figs.append(derive("tokens_per_s", "qps*O", "token/s", "definition", label="output tokens/s (whole fleet)",
                       qps=load, O=output))
    figs.append(derive("input_tokens_per_s", "qps*P", "token/s", "definition", label="input tokens/s (whole fleet)",
                       qps=load, P=prompt))
    price = price_usd_per_hour if price_usd_per_hour is not None else hw.price_usd_per_hour
    by_key = {f.key: f.value for f in figs}
    gpus, tok_s, in_s = by_key["gpus"], by_key["tokens_per_s"], by_key["input_tokens_per_s"]
    share = float(at["prefill_share"])
    cost = {}
    if price is not None:
        figs.append(derive("usd_per_million_input_tokens", "gpus*price*u/(3600*in_s)*million", "USD", SRC_SPLIT,
                           label="$ per million input tokens (prefill's share of GPU time)",
                           gpus=gpus, price=price, u=share, in_s=in_s, million=1_000_000))
        figs.append(derive("usd_per_million_output_tokens_decode", "gpus*price*(1 - u)/(3600*tok_s)*million", "USD",
                           SRC_SPLIT, label="$ per million output tokens (decode's share of GPU time)", gpus=gpus,
                           price=price, u=share, tok_s=tok_s, million=1_000_000))
        figs.append(derive("usd_per_million_output_tokens", "gpus*price/(3600*tok_s)*million", "USD",
                           SRC_COST + "; all GPU time (prefill too) charged to output tokens",
                           label=f"$ per million output tokens at ${price:g}/GPU-h", gpus=gpus,
                           price=price, tok_s=tok_s, million=1_000_000))
        cost = {f.key: f.value for f in figs[-3:]}
    who = (f"{users:g} users x {requests_per_user_per_min:g} requests per user per minute = " if users is not None
           else f"{concurrent:g} simultaneous streams = " if concurrent is not None else "")
    notes = [f"load {who}{load:.4g} req/s of {prompt} prompt + {output} output tokens",
             f"targets: TTFT <= {ttft_s:g} s, TPOT <= {tpot_s * 1e3:g} ms", eff.describe(),
             f"weights {dep.weights_name}, KV {kv_dtype}, {reserve:.0%} of memory reserved",
             "continuous batching in steady state; KV cap charges each sequence its final length",
             "capacity: each replica's highest rate meeting the targets; at this load the rate is spread evenly "
             "over the replicas and each runs at the steady state shown",
             "TTFT mean/p50/p99 add the wait before prefill: Poisson arrivals at each replica, prefills served one "
             "at a time (M/D/1, load ρ = qps_replica x t_prefill; mean by Pollaczek-Khinchine, quantiles by "
             "Kingman's heavy-traffic tail); the capacity search holds TTFT without queueing to its target",
             *tried]
    warn = model.past_positions(prompt + output, "prompt + output")  # as infer, kv and fit warn
    if warn:
        notes.append(warn)
    if price is not None:
        notes.append("cost: the last row charges all GPU time to output tokens; the two rows above split it by "
                     f"phase (prefill {share:.0%} of GPU time over input tokens, decode the rest over output)")
    if price is None:
        notes.append(f"no price for {hw.display_name} in the catalogue: give a price per device-hour (--price, "
                     "or the dashboard's price input) to get $ per million tokens")
    elif price_usd_per_hour is None:
        when = f"listed {hw.price_date}" if hw.price_date else "undated"
        notes.append(f"price ${price:g}/GPU-h from the hardware catalogue ({when}; source in its YAML): a volatile "
                     "on-demand list price that can be several times market rates; --price overrides")
    data = {"model": model.name, "hardware": hw.name, "qps": load, "prompt": prompt, "output": output,
            "ttft_target_s": ttft_s, "tpot_target_s": tpot_s, "tp": dep.tp,
            "concurrency_per_replica": float(at["concurrency"]), "ttft_s": float(at["ttft_s"]),
            **{k: by_key.get(k) for k in ("queue_wait_s", "queue_wait_p50_s", "queue_wait_p99_s", "ttft_mean_s",
                                          "ttft_p50_s", "ttft_p99_s")},
            "tpot_s": float(at["tpot_s"]), "qps_per_replica_at_load": lam_r,
            "capacity": {"concurrency": int(b["concurrency"]), "ttft_s": float(b["ttft_s"]),
                         "tpot_s": float(b["tpot_s"]), "qps": float(b["qps"])},
            "qps_per_replica": float(b["qps"]),
            "replicas": int(math.ceil(load / b["qps"])),
            "gpus": int(gpus), "tokens_per_s": tok_s, "input_tokens_per_s": in_s, "price_usd_per_hour": price,
            "prefill_share": share, "concurrent_streams": concurrent, "users": users,
            "requests_per_user_per_min": requests_per_user_per_min if users is not None else None,
            "usd_per_million_output_tokens": cost.get("usd_per_million_output_tokens"),
            "usd_per_million_input_tokens": cost.get("usd_per_million_input_tokens"),
            "usd_per_million_output_tokens_decode": cost.get("usd_per_million_output_tokens_decode")}
    # The first line says what the load means: users are a request rate, not simultaneous streams.
    if users is not None:
        load_text = (f"{users:,.0f} users x {requests_per_user_per_min:g} request/user/min = {load:.4g} req/s "
                     "(a request rate, not simultaneous streams: see --concurrent)")
    elif concurrent is not None:
        load_text = f"{concurrent:,.0f} simultaneous streams (one request in flight each) = {load:.4g} req/s"
    else:
        load_text = f"{load:.4g} req/s"
    return Result(f"Serving {model.display_name} on {hw.display_name}: {load_text}", tuple(figs), tuple(notes),
                  data)
