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

    def get_command(self, ctx, cmd_name):
        cmd = super().get_command(ctx, cmd_name)
        _whole_counts(cmd)  # every integer option reads '32k' (issue: --context 32k rejected, --tokens 300B read)
        return cmd


class _WholeCount:
    """Wraps typer's coercion of an ``int`` option so that it reads counts as people write them: '32k', '1.5M',
    '2e9' (core/units.parse_whole, the one parser of counts), and says which option a fraction was given to."""

    def __init__(self, inner):
        self._inner = inner

    def __getattr__(self, name):
        return getattr(self._inner, name)

    def coerce(self, value, param=None, ctx=None):
        if isinstance(value, str):
            from ..core.errors import UnitError
            from ..core.units import parse_whole

            try:
                value = str(parse_whole(value))
            except UnitError:
                raise _exc.BadParameter(f"expected a whole number such as 8, 4096 or 32k (k = 1000), got {value!r}",
                                        ctx=ctx, param=param) from None
        return self._inner.coerce(value, param=param, ctx=ctx)


def _is_int(annotation) -> bool:
    import typing

    return annotation is int or (typing.get_origin(annotation) in (typing.Union, getattr(__import__("types"),
                                 "UnionType", None)) and int in typing.get_args(annotation))


def _whole_counts(cmd) -> None:
    for p in getattr(cmd, "params", ()):
        d = getattr(p, "type_descriptor", None)
        if d is not None and _is_int(d.annotation) and not isinstance(p._runtime_param, _WholeCount):
            p._runtime_param = _WholeCount(p.get_runtime_param())


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
