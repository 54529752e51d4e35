"""Fresh-eyes review of llmcalc as a new user meets it: each test guards a class of mistake, not one example."""

import ast
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from llmcalc.cli import COMMANDS, app

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


def run(*args):
    r = runner.invoke(app, [str(a) for a in args])
    assert r.exception is None or isinstance(r.exception, SystemExit), r.exception  # never a traceback
    return r


# ---------------------------------------------------------------- 6: every command a hint names exists

# A command is named in backticks, in parentheses or after a colon ("use it with: llmcalc step …"); the prose
# "llmcalc calibration profile" is a title, not a command.
_CMD = re.compile(r"(?:`|\(|: )llmcalc ((?:[a-z][a-z0-9-]*)(?: [a-z][a-z0-9.-]*)?)")


def _strings_in_package():
    """Every string literal (f-string parts included) in llmcalc/, with where it is."""
    for p in sorted((ROOT / "llmcalc").rglob("*.py")):
        for node in ast.walk(ast.parse(p.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                yield f"{p.relative_to(ROOT)}:{node.lineno}", node.value


def _named_commands(text: str):
    for m in _CMD.finditer(text):
        words = m[1].split()
        yield words[0], (words[1] if len(words) > 1 else None)


def _unknown_name_messages():
    """The messages unknown_name gives at each call site (catalogue, drill, why, sheet, load_spec)."""
    from llmcalc.core.catalogue import load_hardware, load_model, load_spec
    from llmcalc.core.errors import LlmcalcError
    from llmcalc.study import drill, sheet, why

    calls = [lambda: load_model("qqqqqqqq"), lambda: load_hardware("qqqqqqqq"), lambda: load_spec("qqqqqqqq"),
             lambda: drill.order(["qqqqqqqq"], []), lambda: why.why("qqqqqqqq", None, None),
             lambda: sheet.sheet("qqqqqqqq", None, None)]
    for c in calls:
        with pytest.raises(LlmcalcError) as e:
            c()
        yield str(e.value)


def test_every_command_named_in_a_message_exists():
    """A hint that names `llmcalc list drill topic` sends the user to a command that fails; every command (and
    `list` kind) named anywhere in the package's strings or in unknown-name messages must exist."""
    list_kinds = {"models", "hardware"}
    named = {}
    for where, text in [*_strings_in_package(), *(("unknown_name", m) for m in _unknown_name_messages())]:
        for cmd, arg in _named_commands(text):
            named.setdefault((cmd, arg if cmd == "list" else None), where)
    assert ("list", "models") in named  # the scan sees the hints at all
    bad = [f"{where}: llmcalc {cmd} {arg or ''}" for (cmd, arg), where in named.items()
           if cmd not in COMMANDS or (cmd == "list" and arg is not None and arg not in list_kinds)]
    assert not bad, bad
    for cmd in sorted({c for c, _ in named}):
        assert run(cmd, "--help").exit_code == 0, cmd


def test_unknown_topic_lists_the_topics():
    from llmcalc.core.errors import LlmcalcError
    from llmcalc.study import drill, why

    with pytest.raises(LlmcalcError, match=r"known: .*\bzero3\b.*\bspeculative\b"):
        why.why("qqqqqqqq", None, None)
    with pytest.raises(LlmcalcError, match="known: " + re.escape(", ".join(drill.TOPICS[:3]))):
        drill.order(["qqqqqqqq"], [])
