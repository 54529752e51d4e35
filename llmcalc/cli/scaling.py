"""Scaling-law commands: loss (predicted loss of training runs, compared at equal FLOPs)."""

from __future__ import annotations

import typer

from ._app import app
from ._common import EXPLAIN_OPT, JSON_OPT, emit, table, user_errors
from .training import LAW_OPT


def _counts(text: str, option: str) -> list[float]:
    """'7B' or '7B,3B' -> [7e9, 3e9]; the option's name in any error."""
    from ..core.errors import LlmcalcError
    from ..core.units import parse_count

    try:
        return [parse_count(p.strip()) for p in text.split(",")]
    except LlmcalcError as e:
        raise LlmcalcError(f"{option}: {e}") from None


@app.command()
@user_errors
def loss(params: str = typer.Option(..., "--params", help="N: parameters per token (active for MoE), e.g. 7B or "
                                    "7B,3B to compare runs."),
         tokens: str = typer.Option(..., "--tokens", help="D: training tokens, e.g. 500B or 500B,1T (one per N)."),
         law: str = LAW_OPT,
         total: str | None = typer.Option(None, "--total", help="MoE: TOTAL non-embedding parameters (the MoE law's "
                                          "N; --params stays the active count, for FLOPs). Uses Krajewski et al. "
                                          "2024's law instead of --law."),
         granularity: float = typer.Option(1.0, "--granularity", help="MoE: G = d_ff / d_expert (tokens go to G "
                                           "experts of width d_ff/G; 1 = classic MoE)."),
         as_json: bool = JSON_OPT, explain: bool = EXPLAIN_OPT) -> None:
    """Predicted loss L(N, D) of training runs, their FLOPs, and the best loss those FLOPs could buy; with --total,
    an MoE run by Krajewski et al. 2024's law (active vs total parameters explicit)."""
    from ..core.units import fmt
    from ..model.scaling import compare_losses

    if total is not None:
        from ..core.errors import LlmcalcError
        from ..model.moe_scaling import compare_moe

        ps, ts, tot = _counts(params, "--params"), _counts(tokens, "--tokens"), _counts(total, "--total")
        if not len(ps) == len(ts) == len(tot) == 1:
            raise LlmcalcError("with --total give one run: --params ACTIVE --total TOTAL --tokens D")
        emit(compare_moe(ps[0], tot[0], ts[0], granularity), as_json, explain)
        return

    r = compare_losses(_counts(params, "--params"), _counts(tokens, "--tokens"), law)
    if as_json or explain:
        emit(r, as_json, explain)
        return
    typer.echo(r.title)
    rows = [(run["label"], f"{run['loss']:.4f}", fmt(run["flops"], "FLOP"),
             f"{fmt(run['params_opt'], 'param')} on {fmt(run['tokens_opt'], 'token')}", f"{run['loss_opt']:.4f}")
            for run in r.data["runs"]]
    typer.echo(table(rows, ("run", "loss (nats)", "FLOPs", "optimum at those FLOPs", "its loss")))
    for a in r.assumptions:
        typer.echo(f"  * {a}")
