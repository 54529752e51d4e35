"""The CLI's fast option coercion (cli/_app.py ``_Coercion``, issue #13) returns exactly what typer's own runtime
param returns, or fails with exactly its message, for every value a command line, a default or an environment
variable can hand it. The reference is typer's ``build_runtime_param`` (a pydantic TypeAdapter per option), with
the whole-count reading of int options ('32k') in front, as the CLI did before the fast path existed."""

from typing import Literal

import pytest
import typer
from hypothesis import given
from hypothesis import strategies as st
from typer._click import exceptions as click_exc
from typer._coercion import build_runtime_param

from llmcalc.cli._app import _Coercion
from llmcalc.core.errors import UnitError
from llmcalc.core.units import parse_whole

_probe = typer.Typer()


@_probe.command()
def _every_kind(
    count: int = typer.Option(1, "--count"),
    maybe_count: int = typer.Option(None, "--maybe-count"),
    share: float = typer.Option(0.5, "--share"),
    name: str = typer.Option("bf16", "--name"),
    flag: bool = typer.Option(None, "--flag/--no-flag"),
    sets: list[str] = typer.Option(None, "--set"),
    kind: Literal["models", "hardware"] = typer.Option("models", "--kind"),
    words: list[str] = typer.Argument(None),
) -> None:
    """Every annotation the CLI's commands use (int, float, str, bool, list[str], a Literal; option or argument)."""


_CMD = typer.main.get_command(_probe)
_CTX = typer._click.Context(_CMD)
PARAMS = {p.name: p for p in _CMD.params}


def _outcome(fn, value, param):
    try:
        out = fn(value, param=param, ctx=_CTX)
    except click_exc.BadParameter as e:
        return ("error", e.format_message())
    return (type(out).__name__, repr(out), [type(x).__name__ for x in out] if isinstance(out, (list, tuple)) else None)


def _typer_path(param):
    """What the CLI did before: whole counts read by parse_whole, then typer's pydantic runtime param."""
    inner = build_runtime_param(param.type_descriptor)

    def coerce(value, param, ctx):
        if param.type_descriptor.annotation is int and isinstance(value, str):
            try:
                value = str(parse_whole(value))
            except UnitError:
                raise click_exc.BadParameter(
                    f"expected a whole number such as 8, 4096 or 32k (k = 1000), got {value!r}", ctx=ctx,
                    param=param) from None
        return inner.coerce(value, param=param, ctx=ctx)

    return coerce


REFERENCE = {name: _typer_path(p) for name, p in PARAMS.items()}
FAST = {name: _Coercion(p.type_descriptor).coerce for name, p in PARAMS.items()}

# Text that looks like a number (and near misses: signs, exponents, '_', ',', spaces, suffixes, non-ASCII digits)
# plus arbitrary text, including lone surrogates (how Python hands undecodable argv bytes over).
_NUMBERISH = st.from_regex(r"\A[ +\-]?[0-9_.,٣]{0,6}(?:[eE][+\-]?[0-9]{0,3})?[ kMBTx%]?\Z")
# Strings where Python's float()/int() and pydantic disagree, or that sit on the edge of the fast path's pattern.
TRICKY = ["inf", "-inf", "nan", "NaN", "infinity", "1e400", "1e-400", "-0", "0x10", "1_000", "1_0.5", " 7 ", "7 ", "",
          "1.", ".5", "+.5e3", "00012", "٣", "٣.5", "1٣", "32k", "1.5M", "2e9", "1.5", "9" * 30, "models", "Models",
          "true", "no", "\udcff", "a=1", "１"]
_TEXT = st.one_of(_NUMBERISH, st.text(st.characters(codec=None), max_size=8), st.sampled_from(TRICKY))
_VALUES = st.one_of(st.none(), st.booleans(), st.integers(), st.integers(min_value=-2**70, max_value=2**70),
                    st.floats(), _TEXT)
_MULTI = st.one_of(st.none(), _TEXT, st.lists(_TEXT, max_size=3).map(tuple), st.lists(_VALUES, max_size=3))


@pytest.mark.parametrize("name", sorted(PARAMS))
def test_tricky_strings_coerce_as_typer_does(name):
    param = PARAMS[name]
    for value in TRICKY:
        value = (value,) if param.multiple or param.nargs == -1 else value
        assert _outcome(FAST[name], value, param) == _outcome(REFERENCE[name], value, param), value


@pytest.mark.parametrize("name", ["count", "maybe_count", "share", "name", "flag", "kind"])
@given(value=_VALUES)
def test_single_value_options_coerce_as_typer_does(name, value):
    param = PARAMS[name]
    assert _outcome(FAST[name], value, param) == _outcome(REFERENCE[name], value, param)


@pytest.mark.parametrize("name", ["sets", "words"])
@given(value=_MULTI)
def test_multi_value_options_coerce_as_typer_does(name, value):
    param = PARAMS[name]
    assert _outcome(FAST[name], value, param) == _outcome(REFERENCE[name], value, param)


def test_plain_values_never_build_a_type_adapter():
    """The point of the fast path: the values a one-liner passes (defaults, None, '32k', '0.4', text, --set
    lists) are coerced without building typer's pydantic TypeAdapter (~1.4 ms each; 20-50 options a command)."""
    for value, name, want in [(None, "count", None), ("32k", "count", 32_000), (1, "count", 1), ("0.4", "share", 0.4),
                              (0.5, "share", 0.5), ("fp8", "name", "fp8"), (None, "flag", None), (None, "sets", ()),
                              (("a=1", "b=2"), "sets", ["a=1", "b=2"])]:
        c = _Coercion(PARAMS[name].type_descriptor)
        assert c.coerce(value, param=PARAMS[name], ctx=_CTX) == want
        assert c._typer is None, (name, value)
