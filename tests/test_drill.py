"""The daily drill (issue #14): grading of exact, 5%-off, 50%-off and unit-mismatched answers; the history
survives a restart (a new process); seeded runs repeat exactly; Leitner boxes put weak topics first."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from llmcalc.cli import app
from llmcalc.study import drill as dr

runner = CliRunner()


def run(args, stdin: str = "", history=None):
    extra = ["--history", str(history)] if history else ["--no-record"]
    r = runner.invoke(app, ["drill", *args, *extra], input=stdin)
    assert r.exit_code == 0, r.output
    return r.output


def test_grading_rules():
    # exact, 5% off (right: within 10%), 50% off (close: within 2x), 3x off (wrong), wrong dimension (wrong)
    for unit, exact, five, half, unit_bad in (("B", "3.2 GB", "3.36 GB", "1.6 GB", "3.2 s"),
                                              ("s", "40ms", "42 ms", "60 ms", "40 MB"),
                                              ("FLOP", "1.2e12", "1.26 TFLOP", "6e11", "1.2 TB")):
        expected = dr.parse_answer(exact, unit)
        assert dr.grade(exact, expected, unit).verdict == "right"
        assert dr.grade(five, expected, unit).verdict == "right"
        assert dr.grade(half, expected, unit).verdict == "close"
        assert dr.grade(unit_bad, expected, unit).verdict == "wrong"
        assert dr.grade(unit_bad, expected, unit).message.startswith("unit:")
    assert dr.grade("3.2 GB", 3.2e9 * 3, "B").verdict == "wrong"
    assert dr.grade("3.2", 3.2e9, "B").verdict == "wrong"  # bytes without a unit: ambiguous, so wrong
    assert dr.grade("1.4T", 1.4e12, "token").verdict == "right"
    assert dr.grade("", 1.0, "s").verdict == "skipped"
    assert dr.grade("3.2 GiB", 3.2e9, "B").verdict == "right"  # 3.44e9: 7% over, GiB read as GiB


def test_cli_grades_answers_from_a_file(tmp_path):
    v = [q.answer.value for q in dr.questions(["kv"], 4, 11, [])]  # bytes, as the CLI will ask them
    answers = tmp_path / "a.txt"
    answers.write_text(f"{v[0]} B\n{v[1] * 1.05 / 1e3} kB\n{v[2] * 1.5} B\n{v[3]} s\n")
    out = run(["kv", "--count", "4", "--seed", "11", "--answers", str(answers)])
    verdicts = [ln.split("→ ")[1].split(" ")[0] for ln in out.splitlines() if "→" in ln]
    assert verdicts == ["RIGHT", "RIGHT", "CLOSE", "WRONG"], out
    assert out.count("derivation:") == 4 and "bytes" in out and "per_layer" in out


def test_seeded_runs_repeat_exactly_and_seeds_differ():
    a = run(["--count", "9", "--seed", "42"])
    assert a == run(["--count", "9", "--seed", "42"])
    assert a != run(["--count", "9", "--seed", "43"])
    assert [q.as_dict() for q in dr.questions(None, 9, 42, [])] == [q.as_dict() for q in dr.questions(None, 9, 42, [])]


def test_history_survives_a_restart_and_leitner_orders_weak_topics_first(tmp_path):
    hist = tmp_path / "drill.jsonl"
    env = {**os.environ, "LLMCALC_DATA_DIR": str(tmp_path)}

    def drill(*args, stdin=""):
        r = subprocess.run([sys.executable, "-m", "llmcalc", "drill", *args], input=stdin, env=env,
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        return r.stdout

    q = dr.questions(["zero"], 1, 5, [])[0]
    drill("zero", "--seed", "5", "-n", "1", stdin=f"{q.answer.value * 10} B\n")  # wrong: zero to box 1
    q = dr.questions(["kv"], 1, 6, [])[0]
    drill("kv", "--seed", "6", "-n", "1", stdin=f"{q.answer.value} B\n")  # right: kv to box 2
    assert hist.exists() and len(hist.read_text().splitlines()) == 2
    stats = json.loads(drill("--stats", "--json"))  # a third process reads what the first two wrote
    assert stats["answers"] == 2
    assert stats["topics"]["zero"]["wrong"] == 1 and stats["topics"]["zero"]["box"] == 1
    assert stats["topics"]["kv"]["right"] == 1 and stats["topics"]["kv"]["box"] == 2
    assert stats["next"][-1] == "kv"  # the topic answered right comes last
    assert stats["next"][0] != "kv"
    out = drill("-n", "1", "--seed", "1", "--no-record")  # a default drill starts with a box-1 topic
    assert "[kv]" not in out


def test_broken_history_line_is_one_clear_error(tmp_path):
    from conftest import one_line_error

    hist = tmp_path / "h.jsonl"
    hist.write_text('{"topic": "kv", "verdict": "right"}\nnot json\n')
    one_line_error(["drill", "--stats", "--history", str(hist)], "h.jsonl:2")
    one_line_error(["drill", "kvv", "--no-record"], "unknown drill topic", "kv")
    one_line_error(["drill", "--count", "0", "--no-record"], "--count")


@pytest.mark.parametrize("topic", dr.TOPICS)
def test_every_topic_generates_finite_answers_with_derivations(topic):
    import math

    for seed in range(5):
        q = dr.questions([topic], 1, seed, [])[0]
        assert math.isfinite(q.answer.value) and q.answer.value > 0, (seed, q.text)
        assert q.derivation[-1].value == q.answer.value  # the answer is the last step of its derivation
        assert all(f.formula or f.source for f in q.derivation)


def test_dashboard_drill_page_grades_and_records(tmp_path, monkeypatch):
    st_testing = pytest.importorskip("streamlit.testing.v1")
    from pathlib import Path

    monkeypatch.setenv("LLMCALC_DATA_DIR", str(tmp_path))
    app_py = str(Path(__file__).resolve().parent.parent / "app.py")
    at = st_testing.AppTest.from_file(app_py, default_timeout=60)
    at.query_params["page"] = "drill"
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    at.number_input(key="drill_count").set_value(2)
    at.number_input(key="drill_seed").set_value(3)
    at.run()
    q = dr.questions(None, 2, 3, [])
    at.text_input(key="drill_a0").input(f"{q[0].answer.value} {q[0].answer.unit}")
    at.button[0].click()
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert "Q1: RIGHT" in " ".join(s.value for s in at.success)
    assert "Q2: no answer" in " ".join(i.value for i in at.info)
    lines = (tmp_path / "drill.jsonl").read_text().splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["verdict"] == "right"


@pytest.mark.parametrize("topic", dr.TOPICS)
def test_every_topic_grades_its_own_answer_as_printed_right(topic):
    """The answer as the drill prints it, typed back, is right: 'train-days' answers ('23 days') raised KeyError
    'days' in the grader, a traceback on the CLI and the dashboard (user test, 30 Nov 2026)."""
    for seed in range(5):
        q = dr.questions([topic], 1, seed, [])[0]
        typed = q.answer.text().split(" (")[0]  # '12.6 MB (12.0 MiB)': one of the two
        assert dr.grade(typed, q.answer.value, q.answer.unit).verdict == "right", (seed, typed)


def test_train_days_take_a_bare_number_or_any_time_unit():
    assert dr.grade("20", 20.0, "days").verdict == "right"  # the question asks for days
    assert dr.grade("480 h", 20.0, "days").verdict == "right"
    assert dr.grade("1.728e6 s", 20.0, "days").verdict == "right"
    assert dr.grade("20 GB", 20.0, "days").verdict == "wrong"


def test_a_typo_is_unreadable_and_not_recorded_a_wrong_dimension_is_a_miss(tmp_path):
    """'128 kiB' (no such unit) is no quantity at all: shown as UNREADABLE and kept out of the Leitner history, where
    it counted as a miss; '3.2 s' for a size reads fine and is wrong, so it is recorded."""
    assert dr.grade("128 kiB", 1.0, "B").verdict == "unreadable"
    assert dr.grade("3.2 gigs", 1.0, "B").verdict == "unreadable"
    assert dr.grade("3.2 s", 1.0, "B").verdict == "wrong"
    hist = tmp_path / "h.jsonl"
    v = [q.answer.value for q in dr.questions(["kv"], 2, 11, [])]
    answers = tmp_path / "a.txt"
    answers.write_text(f"{v[0] / 1024} kiB\n{v[1]} s\n")
    out = run(["kv", "--count", "2", "--seed", "11", "--answers", str(answers)], history=hist)
    verdicts = [ln.split("→ ")[1].split(" ")[0].rstrip(",") for ln in out.splitlines() if "→" in ln]
    assert verdicts == ["UNREADABLE", "WRONG"], out
    assert "1 unreadable (not recorded)" in out
    recorded = [json.loads(ln) for ln in hist.read_text().splitlines()]
    assert [r["verdict"] for r in recorded] == ["wrong"]


def test_interactive_drill_asks_again_after_a_typo(tmp_path):
    """At a terminal (a pseudo-terminal here: interactive mode needs a tty) a typo is asked again, not graded."""
    import pty

    q = dr.questions(["kv"], 1, 11, [])[0]
    master, slave = pty.openpty()
    p = subprocess.Popen([sys.executable, "-m", "llmcalc", "drill", "kv", "--count", "1", "--seed", "11",
                          "--no-record"], stdin=slave, stdout=slave, stderr=slave,
                         env={**os.environ, "LLMCALC_DATA_DIR": str(tmp_path)})
    os.close(slave)
    os.write(master, f"{q.answer.value / 1024} kiB\n{q.answer.value} B\n".encode())
    out = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        out += chunk
    os.close(master)
    assert p.wait(timeout=120) == 0, out
    text = out.decode()
    assert "cannot read that: unknown unit 'kiB'" in text and "→ RIGHT" in text, text
