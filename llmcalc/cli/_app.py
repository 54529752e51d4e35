"""The Typer app every command module registers on (kept apart so a one-liner can load one module)."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="llmcalc",
    help="Back-of-envelope calculator for LLM systems. Every figure can --explain itself and print --json.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


@app.callback()
def _group() -> None:
    """Back-of-envelope calculator for LLM systems. Every figure can --explain itself and print --json."""
    # A callback keeps the app a command group even when a one-liner registered a single module.
