"""The Typer app every command module registers on (kept apart so a one-liner can load one module)."""

from __future__ import annotations

import sys

import typer
from typer._click import exceptions as _exc  # typer vendors its own click
from typer.core import TyperGroup


class _OneLineErrors(TyperGroup):
    """Click's usage errors (a bad option value, a missing argument, an unknown command) as ONE line on stderr
    and exit 2, like every other user error (``error: ...``), instead of usage + hint + boxed message."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except _exc.NoArgsIsHelpError as e:  # bare `llmcalc`: the help text, as before
            e.show()
            sys.exit(e.exit_code)
        except _exc.ClickException as e:
            msg = " ".join(e.format_message().split())  # one line, whatever click wrapped
            typer.echo(f"error: {msg}", err=True)
            sys.exit(2)
        except typer.Abort:
            typer.echo("Aborted!", err=True)
            sys.exit(1)
        sys.exit(rv if isinstance(rv, int) and not isinstance(rv, bool) else 0)


app = typer.Typer(
    name="llmcalc",
    help="Back-of-envelope calculator for LLM systems. Every figure can --explain itself and print --json.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    cls=_OneLineErrors,
)


@app.callback()
def _group() -> None:
    """Back-of-envelope calculator for LLM systems. Every figure can --explain itself and print --json."""
    # A callback keeps the app a command group even when a one-liner registered a single module.
