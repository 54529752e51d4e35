"""Planner commands: `plan` (every training layout, ranked) and `plan-serve` (cheapest deployments)."""

from __future__ import annotations

import typer

from ._app import app
from ._common import (
    EXPLAIN_OPT,
    FP8_ACT,
    HARDWARE_OPT,
    JSON_OPT,
    MODEL_ARG,
    NORM_UP,
    RESERVE,
    SCHEDULE,
    emit,
    profile_training,
    quantity_option,
    table,
    user_errors,
    with_profile,
)


def parse_gpus(text: str) -> list[int]:
    """'4096', '512,1024,2048' or '512..4096' (doubling) -> GPU counts; a clear error naming --gpus."""
    from ..core.errors import LlmcalcError, UnitError
    from ..core.units import parse_count

    def one(x: str) -> int:
        try:  # the one count parser (suffixes, finite), then whole and within the CLI's ±2**53 edge
            v = parse_count(x)
        except UnitError:
            raise LlmcalcError(f"--gpus expects counts such as 4096, 512,1024,2048 or 512..4096; got {text!r}") \
                from None
        if v < 1 or v != int(v) or v > 2**53:
            raise LlmcalcError(f"--gpus counts must be whole numbers from 1 to 2**53; got {x!r}")
        return int(v)

    out: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if ".." in part:
            lo, hi = (one(x) for x in part.split("..", 1))
            if hi < lo:
                raise LlmcalcError(f"--gpus range {part!r} runs backwards")
            while lo <= hi:
                out.append(lo)
                lo *= 2
        else:
            out.append(one(part))
    if len(out) > 64:
        raise LlmcalcError(f"--gpus lists {len(out)} counts; at most 64")
    return sorted(set(out))


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


MAX_SUGGESTED_GPUS = 65536  # past this, "more GPUs" is no longer a change worth suggesting


def _nothing_fits(m, hw, d: dict, search: dict) -> str:
    """The one line for a plan with no layout that fits: what was asked, and the smallest change that fits, each
    found by the same planner: the fewest GPUs (doubling, same global batch and sequence), or the longest
    sequence (halving) at the largest GPU count asked."""
    from ..training.plan import nothing_divides, plan_training

    g_max, gb, seq = max(d["gpus"]), d["global_batch"], d["seq"]
    if d["divisible"] == 0:  # nothing to time: memory is not the reason (user test: -n 1e9 blamed the weights)
        return nothing_divides(m, d["gpus"], global_batch=gb, seq=seq, pins=search["pins"], max_cp=search["max_cp"])
    asked = (f"no layout of {m.display_name} fits {', '.join(map(str, d['gpus']))} × {hw.display_name} at global "
             f"batch {gb} × {seq} tokens")
    ways = []
    g = 2 * g_max
    while g <= MAX_SUGGESTED_GPUS:
        r = plan_training(m, hw, gpus=g, global_batch=gb, seq=seq, **search)
        if r.data["ranked"]:
            ways.append(f"--gpus {g} ({r.data['best']['layout']})")
            break
        g *= 2
    L = seq // 2
    while L >= 128:
        r = plan_training(m, hw, gpus=g_max, global_batch=gb, seq=L, **search)
        if r.data["ranked"]:
            ways.append(f"--seq {L} on {g_max} GPUs ({r.data['best']['layout']})")
            break
        L //= 2
    if not ways:
        return (asked + f"; nor on up to {MAX_SUGGESTED_GPUS:,} GPUs or at sequence 128: the weights and optimizer "
                "states alone exceed what the search can shard")
    return asked + "; smallest change that fits: " + " or ".join(ways)


@app.command()
@user_errors
@with_profile
def plan(model: str = MODEL_ARG, hardware: str = HARDWARE_OPT,
         gpus: str = typer.Option(..., "--gpus", "-n", help="GPU count(s): 4096, 512,1024,2048 or 512..4096."),
         global_batch: int = typer.Option(..., "--global-batch", help="Sequences per step."),
         seq: int = typer.Option(2048, "--seq", "-L", help="Sequence length (tokens)."),
         objective: str = typer.Option("time", "--objective", help="time (tokens/s), cost (tokens/s per GPU) or "
                                       "mfu."),
         top: int = typer.Option(10, "--top", help="Rows in the ranked table."),
         tp: int = typer.Option(None, "--tp", help="Pin the tensor-parallel degree."),
         pp: int = typer.Option(None, "--pp", help="Pin the pipeline-parallel degree."),
         dp: int = typer.Option(None, "--dp", help="Pin the data-parallel degree."),
         cp: int = typer.Option(None, "--cp", help="Pin the context-parallel degree."),
         ep: int = typer.Option(None, "--ep", help="Pin the expert-parallel degree (MoE)."),
         etp: int = typer.Option(None, "--etp", help="Pin the expert tensor-parallel degree (MoE; default searched: "
                                 "= --tp or any divisor of the expert FFN width)."),
         offload: bool = typer.Option(None, "--offload-optimizer/--no-offload-optimizer",
                                      help="Pin optimizer offload on or off (default: searched where a layout does "
                                      "not fit without it)."),
         interleave: int = typer.Option(None, "--interleave", "-v", help="Pin the virtual pipeline stages."),
         micro_batch: int = typer.Option(None, "--micro-batch", "-b", help="Pin the micro-batch size."),
         zero: int = typer.Option(None, "--zero", help="Pin the ZeRO stage 0-3."),
         recompute: str = typer.Option(None, "--recompute", help="Pin recomputation: none, selective or full."),
         sp: bool = typer.Option(None, "--sp/--no-sp", help="Pin sequence parallelism on or off."),
         max_cp: int = typer.Option(16, "--max-cp", help="Largest context-parallel degree searched."),
         tokens: str = typer.Option(None, "--tokens", help="Token budget for days and cost (default 1T)."),
         price: str = typer.Option(None, "--price", help="USD per GPU-hour (default: the catalogue's)."),
         optimizer: str = typer.Option("adam-fp32-grads", "--optimizer", help="Optimizer bytes/param as in `memory` "
                                       "(default Megatron-Core bf16, 18 B/param; adam = ZeRO paper's 16 B)."),
         attention: str = typer.Option("flash", "--attention", help="Attention core: flash or unfused."),
         tp_comm_overlap: bool = typer.Option(False, "--tp-comm-overlap", help="TP collectives overlap GEMMs."),
         dtype: str = typer.Option("bf16", "--dtype", help="Peak FLOP/s of this data type (bf16, fp8, ...)."),
         reserve: float = RESERVE, schedule: str = SCHEDULE, recompute_norm_up: bool = NORM_UP,
         fp8_activations: bool = FP8_ACT,
         compute_efficiency: float = typer.Option(None, "--compute-efficiency",
                                                  help="Fraction of the dense peak that compute reaches."),
         as_json: bool = JSON_OPT, explain: bool = EXPLAIN_OPT) -> None:
    """Search every parallel layout (TP, PP with uneven stages, v, CP, EP, DP, micro-batch, ZeRO, recompute, SP),
    rank them, and break the best down."""
    from ..core.catalogue import load_hardware, load_model
    from ..core.errors import LlmcalcError
    from ..core.units import fmt
    from ..training.plan import best_breakdown, plan_training
    from .training import _count

    if recompute is not None and recompute.lower() not in ("none", "selective", "full"):
        raise LlmcalcError(f"--recompute must be none, selective or full, got {recompute!r}")
    from ..core.checks import check_fraction

    check_fraction(compute_efficiency, "--compute-efficiency (fraction of the dense peak)")
    if max_cp < 1:
        raise LlmcalcError(f"--max-cp must be at least 1, got {max_cp}")
    if tp_comm_overlap:
        from ..training.step import check_tp_comm_overlap

        check_tp_comm_overlap(tp, sp, sp_off="--no-sp")
    pins = {"tp": tp, "pp": pp, "dp": dp, "cp": cp, "ep": ep, "v": interleave, "mb": micro_batch, "zero": zero,
            "rc": None if recompute is None else recompute.lower(), "sp": None if sp is None else int(sp),
            "etp": etp, "off": None if offload is None else int(offload)}
    for k, v in pins.items():
        if isinstance(v, int) and v < (0 if k in ("zero", "sp", "off") else 1):
            raise LlmcalcError(f"--{ {'v': 'interleave', 'mb': 'micro-batch'}.get(k, k)} must be positive, got {v}")
    m, hw = load_model(model), load_hardware(hardware)
    if attention.lower() not in ("flash", "unfused"):
        raise LlmcalcError(f"--attention expects flash or unfused, got {attention!r}")
    eff = profile_training(hw, compute_efficiency)
    tuned = dict(efficiency=eff, attention=attention.lower(), tp_comm_overlap=tp_comm_overlap, reserve=reserve,
                 schedule=schedule.lower(), recompute_norm_up=recompute_norm_up, fp8_activations=fp8_activations)
    budget = _count(tokens, "--tokens")
    usd = quantity_option(price, "USD_PER_HOUR", "--price", "2.49 or '$2.49/h'", 3600.0)
    r = plan_training(m, hw, gpus=parse_gpus(gpus), global_batch=global_batch, seq=seq, objective=objective.lower(),
                      top=top, pins=pins, tokens=budget, price_usd_per_hour=usd, optimizer=optimizer,
                      dtype=dtype.lower(), compute_efficiency=compute_efficiency, max_cp=max_cp,
                      offload=offload is not False, **tuned)
    d = r.data
    if not d["ranked"]:  # one line and exit 2, as every other "cannot do that" (README: exit 0 or 2)
        search = dict(objective=objective.lower(), top=1, pins=pins, tokens=budget, price_usd_per_hour=usd,
                      optimizer=optimizer, dtype=dtype.lower(), compute_efficiency=compute_efficiency, max_cp=max_cp,
                      **tuned)
        raise LlmcalcError(_nothing_fits(m, hw, d, search))
    if as_json:
        emit(r, True, False)
        return
    typer.echo(r.title)
    for a in r.assumptions:
        typer.echo(f"  * {a}")

    def cost(row) -> str:
        return "-" if row["cost_usd"] is None else f"${row['cost_usd'] / 1e6:,.2f}M"

    def line(row, extra=()):
        return (*extra, row["layout"], str(row["gpus"]), fmt(row["step_time_s"], "s"), _pct(row["mfu"]),
                fmt(row["memory_bytes"], "B").split(" (")[0], fmt(row["bubble_s"], "s"),
                fmt(row["exposed_comm_s"], "s"), f"{row['days']:.1f}", cost(row))

    head = ("layout", "GPUs", "step", "MFU", "mem/GPU", "bubble", "exposed comm", "days", "cost")
    typer.echo(f"\ntop {len(d['ranked'])} by {d['objective']}:")
    typer.echo(table([line(row, (str(i + 1),)) for i, row in enumerate(d["ranked"])], ("#", *head)))
    best = d["best"]

    def versus(group: dict, name: str, key: str, all_values):
        rows = []
        for val in all_values:
            row = group.get(val)
            if row is None:
                rows.append((f"{name} {val}", "no layout fits (or pinned out)", *[""] * 8))
                continue
            slower = row["step_time_s"] / best["step_time_s"] - 1 if row["gpus"] == best["gpus"] else None
            rows.append(line(row, (f"{name} {val}",)) + ("" if slower is None else f"+{100 * slower:.0f}%",))
        return rows

    typer.echo("\nbest per ZeRO stage (why ZeRO-3 is rare: its per-layer gathers sit on every micro-batch):")
    typer.echo(table([r_ + ("",) * (11 - len(r_)) for r_ in versus(d["best_per_zero"], "ZeRO", "zero", range(4))],
                     ("stage", *head, "vs best")))
    typer.echo("\nbest per TP degree:")
    typer.echo(table([r_ + ("",) * (11 - len(r_)) for r_ in versus(d["best_per_tp"], "TP", "tp",
                                                                   sorted(d["best_per_tp"]))],
                     ("TP", *head, "vs best")))
    if len(d["gpus"]) > 1:
        typer.echo("\nGPUs vs days vs dollars (best layout per count; * = Pareto-optimal):")
        typer.echo(table([(("*" if row["pareto"] else ""), str(row["gpus"]), row["layout"],
                           fmt(row["step_time_s"], "s"), f"{row['days']:.1f}", f"{row['gpu_hours']:,.0f}", cost(row))
                          for row in d["per_gpus"]], ("", "GPUs", "layout", "step", "days", "GPU-hours", "cost")))
    st, mem = best_breakdown(m, hw, best, global_batch=global_batch, seq=seq, optimizer=optimizer,
                             dtype=dtype.lower(), compute_efficiency=compute_efficiency, **tuned)
    typer.echo(f"\nbest layout: {best['layout']} on {best['gpus']} GPUs")
    if explain:
        typer.echo(st.explain())
        typer.echo(mem.explain())
        return
    typer.echo(table([(f.name, f.text()) for f in st.figures]))
    typer.echo(f"memory per GPU: {mem['memory/total'].text()} on the {mem.data['worst_stage']} stage "
               f"(of {fmt(hw.memory_bytes, 'B')})")
    if st.data["mfu_above_hfu"]:  # MFU 64.1% above HFU 63.2% reads as an error without it
        from ..training.step import MFU_ABOVE_HFU

        typer.echo(f"  * {MFU_ABOVE_HFU}")


@app.command("plan-serve")
@user_errors
@with_profile
def plan_serve(model: str = MODEL_ARG, hardware: str = HARDWARE_OPT,
               qps: float = typer.Option(None, "--qps", help="Requests per second."),
               users: str = typer.Option(None, "--users", help="Users (e.g. 10000 or 10k), each sending "
                                         "--requests-per-user-per-min."),
               concurrent: float = typer.Option(None, "--concurrent", help="Requests in flight at all times."),
               rpm: float | None = typer.Option(None, "--requests-per-user-per-min", show_default=False,
                                                help="Requests each user sends per minute (with --users)  "
                                                     "[default: 1.0]."),
               prompt: str = typer.Option("1024", "--prompt", help="Prompt tokens (a list with --mix)."),
               output: str = typer.Option("256", "--output", help="Output tokens (a list with --mix)."),
               mix: str = typer.Option(None, "--mix", help="Shares of each prompt/output class, e.g. 0.7,0.3."),
               ttft: str = typer.Option("2s", "--ttft", help="TTFT p50 target, e.g. 2s."),
               tpot: str = typer.Option("50ms", "--tpot", help="TPOT p50 target, e.g. 50ms."),
               ttft_p99: str = typer.Option(None, "--ttft-p99", help="TTFT p99 target."),
               tpot_p99: str = typer.Option(None, "--tpot-p99", help="TPOT p99 target."),
               weights: str = typer.Option(None, "--weights", help="Weight precisions to search, e.g. bf16,fp8 "
                                           "(default: bf16, and fp8 where the hardware has an fp8 peak)."),
               kv_dtype: str = typer.Option("bf16,fp8", "--kv-dtype", help="KV precisions to search."),
               disaggregate: bool = typer.Option(True, "--disaggregate/--no-disaggregate",
                                                 help="Also plan separate prefill and decode pools."),
               price: str = typer.Option(None, "--price", help="USD per GPU-hour (default: the catalogue's)."),
               reserve: float = typer.Option(0.1, "--reserve", help="Fraction of memory kept free."),
               top: int = typer.Option(10, "--top", help="Deployments listed (the best of each family)."),
               eff_flops: float = typer.Option(None, "--eff-flops", help="Fraction of peak FLOP/s reached."),
               eff_mem: float = typer.Option(None, "--eff-mem", help="Fraction of HBM bandwidth reached."),
               eff_link: float = typer.Option(None, "--eff-link", help="Fraction of link bandwidth reached."),
               as_json: bool = JSON_OPT, explain: bool = EXPLAIN_OPT) -> None:
    """Cheapest deployments meeting TTFT/TPOT targets: TP, TP×PP across nodes, EP + DP-attention (MoE), weight
    and KV precision, batch, prefill/decode disaggregation; and why each rejected family fails."""
    from ..core.catalogue import load_hardware, load_model
    from ..core.errors import LlmcalcError
    from ..core.units import parse_count
    from ..inference.plan_serve import plan_serve as plan_serve_
    from .inference import _eff, _rpm, _seconds, parse_int_list

    def ints(text: str, option: str) -> list[int]:
        vals = parse_int_list(text, option)  # whole counts as every count option reads them ('32k', ≤ 2**53)
        if min(vals) < 1:
            raise LlmcalcError(f"{option} expects positive token counts; got {text!r}")
        return vals

    prompts, outputs = ints(prompt, "--prompt"), ints(output, "--output")
    shares = None
    if mix is not None or len(prompts) > 1 or len(outputs) > 1:
        try:
            shares = [float(x) for x in (mix or "").split(",") if x.strip()] or [1 / len(prompts)] * len(prompts)
        except ValueError:
            raise LlmcalcError(f"--mix expects shares such as 0.7,0.3; got {mix!r}") from None
        if not (len(shares) == len(prompts) == len(outputs)) or min(shares) < 0 or abs(sum(shares) - 1) > 1e-6:
            raise LlmcalcError("--mix needs one non-negative share per --prompt/--output class, summing to 1")
    users_v = None
    if users is not None:
        try:
            users_v = parse_count(users)
        except LlmcalcError as e:
            raise LlmcalcError(f"--users: {e}") from None
    one = shares is None
    r = plan_serve_(load_model(model), load_hardware(hardware), prompt=prompts[0] if one else prompts,
                    output=outputs[0] if one else outputs, shares=shares,
                    ttft_s=_seconds(ttft, "--ttft"), tpot_s=_seconds(tpot, "--tpot"), qps=qps, users=users_v,
                    requests_per_user_per_min=_rpm(rpm, users), concurrent=concurrent,
                    ttft_p99_s=None if ttft_p99 is None else _seconds(ttft_p99, "--ttft-p99"),
                    tpot_p99_s=None if tpot_p99 is None else _seconds(tpot_p99, "--tpot-p99"),
                    weights=None if weights is None else [w.strip().lower() for w in weights.split(",") if w.strip()],
                    kv_dtypes=[k.strip().lower() for k in kv_dtype.split(",") if k.strip()],
                    disaggregate=disaggregate, eff=_eff(eff_flops, eff_mem, eff_link, False, hardware),
                    price_usd_per_hour=quantity_option(price, "USD_PER_HOUR", "--price", "2.49 or '$2.49/h'", 3600.0),
                    reserve=reserve, top=top)
    if as_json or explain:
        emit(r, as_json, explain)
        return
    typer.echo(r.title)
    for a in r.data["assumptions_first"]:  # the assumptions come first: the answer rests on them
        typer.echo(f"  * {a}")

    def usd(x):
        return "-" if x is None else f"${x:,.2f}"

    d = r.data
    typer.echo("\ncheapest deployments meeting every target (best of each family, fewest GPUs first):")
    typer.echo(table([(str(x["gpus"]), str(x["replicas"]), x["config"],
                       f"{x['ttft_s']:.3g} / {x['ttft_p99_s']:.3g} s",
                       f"{x['tpot_s'] * 1e3:.3g} / {x['tpot_p99_s'] * 1e3:.3g} ms",
                       f"{x['output_tokens_per_s']:,.0f}", usd(x["usd_per_million_input"]),
                       usd(x["usd_per_million_output"])) for x in d["ranked"]],
                     ("GPUs", "replicas", "deployment", "TTFT p50/p99", "TPOT p50/p99", "out tok/s", "$/M in",
                      "$/M out")))
    if d["rejected"]:
        typer.echo("\nrejected families (the constraint that failed):")
        for fam, why in d["rejected"].items():
            typer.echo(f"  - {fam}: {why}")
