"""The Typer app every command module registers on (kept apart so a one-liner can load one module)."""

from __future__ import annotations

import re
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

    def parse_args(self, ctx, args):
        _fast_coercion(self.get_params(ctx))  # the group's own options (--help, --install-completion, ...)
        return super().parse_args(ctx, args)

    def get_command(self, ctx, cmd_name):
        cmd = super().get_command(ctx, cmd_name)
        if cmd is not None:  # '32k' for every int option; no pydantic TypeAdapter for plain values (#13)
            _fast_coercion(cmd.get_params(ctx))  # with its --help (click caches that option object)
        return cmd


# A decimal number written plainly ('0.4', '10000', '5e-1', '.5', '-2.'): ASCII digits only (Python's float() also
# takes Arabic-Indic digits, '1_0' and 'inf', which pydantic refuses or reads otherwise, so those go to typer's path).
_PLAIN_FLOAT = r"[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?"
_I64 = 2**63  # pydantic reads any int; beyond int64 we let it (slow path) so that nothing about huge counts changes


class _Coercion:
    """One option's coercion, as typer's ``RuntimeParam.coerce`` does it, without building a pydantic TypeAdapter
    for the values a one-liner passes (issue #13: typer builds one per parameter, 20-50 options a command, even for
    options left at None; the first imports typer._adapters and pydantic's schema machinery, ~80 ms where the
    command needs no pydantic spec (notation, speculative, loss), and each after ~0.2 ms).

    - None -> ``()`` for a multi-value option, else None (typer's ``RuntimeParam.coerce``, typer/_coercion.py);
    - an ``int`` option reads counts as people write them: '32k', '1.5M', '2e9' (core/units.parse_whole, the one
      parser of counts), and a fraction is an error naming the option;
    - a value whose type IS the plain ``int``/``float``/``str``/``bool`` annotation (a default, or a string for a
      ``str`` option) is returned as is, as pydantic's lax validation would; a plain decimal string for a ``float``
      option is ``float()`` (correctly rounded, as pydantic's parse); the strings of a ``list[str]`` option are
      returned as a list;
    - anything else (a bad value, an unusual type, constraints) goes to typer's own runtime param, built on first
      use, so its error wording is unchanged. tests/test_cli_coercion.py checks both paths agree.
    """

    __slots__ = ("_descriptor", "_kind", "_whole", "_typer")

    def __init__(self, descriptor):
        info, ann = descriptor.parameter_info, descriptor.annotation
        plain = (descriptor.file_annotation is None and info.parser is None and info.min is None and info.max is None
                 and not info.clamp)
        self._descriptor = descriptor
        self._kind = (ann if ann in (int, float, str, bool) else list if ann == list[str] else None) if plain else None
        self._whole = _is_int(ann)
        self._typer = None

    def _typer_coerce(self, value, param, ctx):
        if self._typer is None:
            from typer._coercion import build_runtime_param

            self._typer = build_runtime_param(self._descriptor)
        return self._typer.coerce(value, param=param, ctx=ctx)

    def coerce(self, value, param=None, ctx=None):
        multi = param.multiple or param.nargs == -1
        if value is None:
            return () if multi else None
        kind = self._kind
        if self._whole and isinstance(value, str):
            from ..core.errors import UnitError
            from ..core.units import parse_whole

            try:
                value = parse_whole(value)
            except UnitError:
                raise _exc.BadParameter(f"expected a whole number such as 8, 4096 or 32k (k = 1000), got {value!r}",
                                        ctx=ctx, param=param) from None
            if not (kind is int and -_I64 < value < _I64):
                value = str(value)
        if multi:
            if kind is list and type(value) in (list, tuple) and all(type(v) is str for v in value):
                return list(value)
        elif type(value) is kind:
            return value
        elif kind is float and type(value) is str and re.fullmatch(_PLAIN_FLOAT, value):
            return float(value)
        return self._typer_coerce(value, param, ctx)


def _is_int(annotation) -> bool:
    import typing

    return annotation is int or (typing.get_origin(annotation) in (typing.Union, getattr(__import__("types"),
                                 "UnionType", None)) and int in typing.get_args(annotation))


def _fast_coercion(params) -> None:
    for p in params:
        d = getattr(p, "type_descriptor", None)
        if d is not None and not isinstance(p._runtime_param, _Coercion):
            p._runtime_param = _Coercion(d)


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
