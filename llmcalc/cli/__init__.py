"""The ``llmcalc`` command line: one Typer app, commands grouped by concern in sibling modules."""

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

# Each module registers its commands; the order here is the order of `llmcalc --help`.
from . import core  # noqa: E402,F401,I001
from . import training  # noqa: E402,F401,I001
from . import parallel  # noqa: E402,F401,I001
from . import inference  # noqa: E402,F401,I001
from . import dashboard  # noqa: E402,F401,I001


def main() -> None:
    app(prog_name="llmcalc")  # also under `python -m llmcalc`, so usage lines and shell completion agree
