"""validate: the calculators against the published cases shipped in llmcalc/validation/cases."""

from __future__ import annotations

import json

import typer

from ._app import app
from ._common import JSON_OPT, table, user_errors


@app.command()
@user_errors
def validate(category: str | None = typer.Option(None, "--category", help="Only this category (e.g. params, "
                                                 "chinchilla, training_step, inference_latency)."),
             as_json: bool = JSON_OPT) -> None:
    """Every published case: ours, published, error, the tolerance its source states, and a verdict. Exits 1
    if a case expected inside its tolerance falls outside."""
    from ..validation.run import run

    r = run(category)
    outcomes = r["outcomes"]
    if as_json:
        typer.echo(json.dumps({"summary": r["summary"], "failed": r["failed"],
                               "cases": [o.as_dict() for o in outcomes]}, indent=2))
    else:
        def num(x):
            return "-" if x is None else f"{x:.4g}"

        rows = [(o.id, o.quantity[:48], num(o.ours), num(o.published), o.unit,
                 "-" if o.error is None else f"{o.error:+.1%}", o.tolerance, o.verdict) for o in outcomes]
        typer.echo(table(rows, ("case", "quantity", "ours", "published", "unit", "error", "tolerance", "verdict")))
        known = [o for o in outcomes if o.expect == "outside"]
        if known:
            typer.echo("\nknown outside, and why:")
            for o in known:
                typer.echo(f"  {o.id}: {o.reason}" + (f" [{o.problem}]" if o.problem else ""))
        bad = [o for o in outcomes if o.failed]
        if bad:
            typer.echo("\nunexpected:")
            for o in bad:
                typer.echo(f"  {o.id}: {o.problem or f'{o.error:+.1%} outside {o.tolerance}'} ({o.source})")
        typer.echo(f"\n{r['summary']}")
    if r["failed"]:
        raise typer.Exit(1)
