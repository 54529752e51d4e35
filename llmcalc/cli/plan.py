"""Planner commands: `plan` (every training layout, ranked) and `plan-serve` (cheapest deployments)."""

from __future__ import annotations

import typer

from ._app import app
from ._common import EXPLAIN_OPT, HARDWARE_OPT, JSON_OPT, MODEL_ARG, emit, quantity_option, table, user_errors


def parse_gpus(text: str) -> list[int]:
    """'4096', '512,1024,2048' or '512..4096' (doubling) -> GPU counts; a clear error naming --gpus."""
    from ..core.errors import LlmcalcError

    def one(x: str) -> int:
        try:
            v = int(float(x))
        except ValueError:
            raise LlmcalcError(f"--gpus expects counts such as 4096, 512,1024,2048 or 512..4096; got {text!r}") \
                from None
        if v < 1 or v != float(x):
            raise LlmcalcError(f"--gpus counts must be positive integers; got {x!r}")
        return v

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


@app.command()
@user_errors
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
         interleave: int = typer.Option(None, "--interleave", "-v", help="Pin the virtual pipeline stages."),
         micro_batch: int = typer.Option(None, "--micro-batch", "-b", help="Pin the micro-batch size."),
         zero: int = typer.Option(None, "--zero", help="Pin the ZeRO stage 0-3."),
         recompute: str = typer.Option(None, "--recompute", help="Pin recomputation: none, selective or full."),
         sp: bool = typer.Option(None, "--sp/--no-sp", help="Pin sequence parallelism on or off."),
         max_cp: int = typer.Option(16, "--max-cp", help="Largest context-parallel degree searched."),
         tokens: str = typer.Option(None, "--tokens", help="Token budget for days and cost (default 1T)."),
         price: str = typer.Option(None, "--price", help="USD per GPU-hour (default: the catalogue's)."),
         optimizer: str = typer.Option("adam", "--optimizer", help="Optimizer bytes/param as in `memory`."),
         dtype: str = typer.Option("bf16", "--dtype", help="Peak FLOP/s of this data type (bf16, fp8, ...)."),
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
    if compute_efficiency is not None and not 0 < compute_efficiency <= 1:
        raise LlmcalcError(f"--compute-efficiency expects a fraction in (0, 1], got {compute_efficiency}")
    if max_cp < 1:
        raise LlmcalcError(f"--max-cp must be at least 1, got {max_cp}")
    pins = {"tp": tp, "pp": pp, "dp": dp, "cp": cp, "ep": ep, "v": interleave, "mb": micro_batch, "zero": zero,
            "rc": None if recompute is None else recompute.lower(), "sp": None if sp is None else int(sp)}
    for k, v in pins.items():
        if isinstance(v, int) and v < (0 if k in ("zero", "sp") else 1):
            raise LlmcalcError(f"--{ {'v': 'interleave', 'mb': 'micro-batch'}.get(k, k)} must be positive, got {v}")
    m, hw = load_model(model), load_hardware(hardware)
    budget = _count(tokens, "--tokens")
    usd = quantity_option(price, "USD_PER_HOUR", "--price", "2.49 or '$2.49/h'", 3600.0)
    r = plan_training(m, hw, gpus=parse_gpus(gpus), global_batch=global_batch, seq=seq, objective=objective.lower(),
                      top=top, pins=pins, tokens=budget, price_usd_per_hour=usd, optimizer=optimizer,
                      dtype=dtype.lower(), compute_efficiency=compute_efficiency, max_cp=max_cp)
    d = r.data
    if as_json:
        emit(r, True, False)
        return
    typer.echo(r.title)
    for a in r.assumptions:
        typer.echo(f"  * {a}")
    if not d["ranked"]:
        raise typer.Exit(1)

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
                             dtype=dtype.lower(), compute_efficiency=compute_efficiency)
    typer.echo(f"\nbest layout: {best['layout']} on {best['gpus']} GPUs")
    if explain:
        typer.echo(st.explain())
        typer.echo(mem.explain())
        return
    typer.echo(table([(f.name, f.text()) for f in st.figures]))
    typer.echo(f"memory per GPU: {mem['memory/total'].text()} on the {mem.data['worst_stage']} stage "
               f"(of {fmt(hw.memory_bytes, 'B')})")
