"""The CLI's promise under generated command lines (issue #13): exit 2 with one line naming the input, or exit 0
with finite figures, non-negative where they cannot be negative. Strategies and checks: tests/fuzzkit.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fuzz_parts import check_cli
from fuzzkit import COMMANDS, cli_args, fast_runner
from hypothesis import given, settings

ROOT = Path(__file__).resolve().parent.parent


@settings(max_examples=900)
@given(cli_args())
def test_every_command_line_keeps_the_promise(args):
    check_cli(args)


@pytest.mark.parametrize("command", sorted(COMMANDS))
@settings(max_examples=12)
@given(data=__import__("hypothesis").strategies.data())
def test_each_command_gets_its_share(command, data):
    """At least 12 generated lines per command, whatever the shared draw above favoured."""
    check_cli(data.draw(cli_args([command])))


def _err(args):
    res = fast_runner().invoke(args)
    assert res.exit_code == 2, (args, res.output)
    line = res.stderr.strip()
    assert line.startswith("error: ") and "\n" not in line, line
    return line


# The examples of issue #13, each once broken: the message each now gives (what it must say is derived from
# the input, not pasted from our output).
@pytest.mark.parametrize("args, needles", [
    (["batching", "llama-3.1-8b", "--qps", "1000", "--prompt", "1000", "--output", "1"], ["--output", "2"]),
    (["serve", "llama-3.1-8b", "--users", "1000", "--output", "1"], ["--output", "2"]),
    (["memory", "llama-3.1-70b", "--tp", "9223372036854775808"], ["--tp", "9223372036854775808"]),
    (["step", "llama-3.1-8b", "--tp", "0", "--gpus", "8", "--global-batch", "8"], ["--tp", "got 0"]),
    (["step", "llama-3.1-8b", "--pp", "0", "--gpus", "8", "--global-batch", "8"], ["--pp", "got 0"]),
    (["step", "llama-3.1-8b", "--cp", "0", "--gpus", "8", "--global-batch", "8"], ["--cp", "got 0"]),
    (["flops", "llama-3.1-8b", "--batch", "1.5"], ["--batch"]),
    (["params", "/dev/zero"], ["/dev/zero", "device"]),
    (["infer", "llama-3.1-8b", "--eff-flops", "nan"], ["--eff-flops"]),
    (["sweep", "llama-3.1-8b", "--batch", "2,3,...,1000000"], ["--batch", "999,999", "4,096"]),
    (["sweep", "llama-3.1-8b", "--batch", ",".join(map(str, range(1, 5001)))], ["--batch", "5,000"]),
    (["kv", "llama-3.1-8b", "--context", str(2**53 + 1)], ["--context"]),
])
def test_issue_examples_are_one_line_errors(args, needles):
    line = _err(args)
    for n in needles:
        assert n in line, line


def test_infer_huge_prompt_does_not_wrap():
    """--prompt 1e14 overflowed int64 (negative KV bytes, fits: true). KV per GPU is exactly B·(P+O)·L·2·G·K·2
    bytes for Llama-3.1-8B (L 32, G 8, K 128; Meta's config.json): 1e14+12 tokens x 131072 B/token."""
    res = fast_runner().invoke(["infer", "llama-3.1-8b", "--prompt", str(10**14), "--output", "12", "--json"])
    assert res.exit_code == 0, res.output
    d = json.loads(res.stdout)
    assert d["kv_bytes_per_gpu"] == pytest.approx((10**14 + 12) * 32 * 2 * 8 * 128 * 2, rel=1e-12)
    assert d["fits"] is False


def test_zero3_never_exceeds_zero2_at_dp1():
    """Nothing is sharded at DP 1, so ZeRO-3 has no gather buffers: all stages hold the same bytes."""
    totals = []
    for z in range(4):
        res = fast_runner().invoke(["memory", "llama-3.1-8b", "--zero", str(z), "--json"])
        totals.append(json.loads(res.stdout)["total_bytes"])
    assert totals[0] == totals[1] == totals[2] == totals[3]


def test_import_never_overwrites_silently(tmp_path):
    src = ROOT / "tests/data/configs/gpt2/config.json"
    cfg = tmp_path / "config.json"
    cfg.write_bytes(src.read_bytes())
    before = cfg.read_bytes()
    assert "input file" in _err(["import", str(cfg), "-o", str(cfg)])
    assert "input file" in _err(["import", str(cfg), "-o", str(cfg), "--force"])  # not even with --force
    link = tmp_path / "link.yaml"
    link.symlink_to(cfg)
    assert "input file" in _err(["import", str(cfg), "-o", str(link), "--force"])
    assert cfg.read_bytes() == before
    out = tmp_path / "gpt2.yaml"
    out.write_text("keep me\n")
    assert "--force" in _err(["import", str(cfg), "-o", str(out)])
    assert out.read_text() == "keep me\n"
    res = fast_runner().invoke(["import", str(cfg), "-o", str(out), "--force"])
    assert res.exit_code == 0 and out.read_text().startswith("name: ")
    other = tmp_path / "other.txt"
    other.write_text("target\n")
    via = tmp_path / "via.yaml"
    via.symlink_to(other)
    assert fast_runner().invoke(["import", str(cfg), "-o", str(via), "--force"]).exit_code == 0
    assert other.read_text() == "target\n" and not via.is_symlink()  # the link is replaced, its target untouched


def test_app_binds_loopback_by_default():
    out = fast_runner().invoke(["app", "--dry-run"]).stdout.split()
    assert out[out.index("--server.address") + 1] == "127.0.0.1"
    out = fast_runner().invoke(["app", "--dry-run", "--host", "0.0.0.0", "--port", "9000",
                                "--theme.base", "dark"]).stdout.split()
    assert out[out.index("--server.address") + 1] == "0.0.0.0" and out[out.index("--server.port") + 1] == "9000"
    assert out[-2:] == ["--theme.base", "dark"]
    assert "--port" in _err(["app", "--dry-run", "--port", "70000"])


def test_unknown_catalogue_dir_is_an_error(tmp_path):
    res = fast_runner().invoke(["list", "models"], env={"LLMCALC_MODELS_DIR": str(tmp_path / "nope")})
    assert res.exit_code == 2 and "LLMCALC_MODELS_DIR" in res.stderr and "\n" not in res.stderr.strip()


@pytest.mark.parametrize("args", [
    ["params", "llama-3.1-8b", "--json"],
    ["infer", "llama-3.1-8b", "--prompt", "100000000000000", "--output", "12", "--json"],
    ["step", "llama-3.1-8b", "--tp", "0", "--gpus", "8", "--global-batch", "8"],
    ["flops", "llama-3.1-8b", "--batch", "1.5"],
    ["nosuchcommand"],
    ["step", "llama-3.1-8b", "--gpus", "8", "--micro-batch", "0", "--global-batch", "8"],  # warned x % 0 first
])
def test_real_processes_keep_the_promise(args):
    """A few real subprocesses of the console entry point: the same promise outside the in-process runner."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    p = subprocess.run([sys.executable, "-m", "llmcalc", *args], capture_output=True, text=True, env=env,
                       timeout=60)
    assert "Traceback" not in p.stderr
    if p.returncode == 2:
        assert p.stderr.startswith("error: ") and p.stderr.count("\n") == 1, p.stderr
    else:
        assert p.returncode == 0, p.stderr
        if "--json" in args:
            json.loads(p.stdout)


# Tiny positive inputs (the fuzz campaign's --mfu 5e-324, --users 5e-324): a denormal rate or count once
# underflowed to a zero divisor and the message named a formula ("wall-clock time = flops/(gpus·rate)"), or
# raised ZeroDivisionError (--concurrent 5e-324). Each must now be one line naming the option and its range.
_TINY_CASES = [  # (command line without the value, option, the least valid value)
    (["train", "llama-3.1-8b", "--tokens", "1T", "--gpus", "8", "--mfu"], "--mfu", 1e-6),
    (["summary", "llama-3.1-8b", "--mfu"], "--mfu", 1e-6),
    (["train", "llama-3.1-8b", "--tokens", "1T", "--gpus", "8", "--achieved-tflops"], "--achieved-tflops", 1e-6),
    (["serve", "llama-3.1-8b", "--users"], "--users", 1),
    (["summary", "llama-3.1-8b", "--users"], "--users", 1),
    (["serve", "llama-3.1-8b", "--concurrent"], "--concurrent", 1),
    (["serve", "llama-3.1-8b", "--qps"], "--qps", 1e-6),
    (["serve", "llama-3.1-8b", "--users", "1", "--requests-per-user-per-min"], "--requests-per-user-per-min",
     60e-6),  # 1 user x 60e-6 / 60 = the least load, 1e-6 req/s, which the message states
]


@pytest.mark.parametrize("args, option, least", _TINY_CASES)
@settings(max_examples=15)
@given(x=__import__("hypothesis").strategies.one_of(
    __import__("hypothesis").strategies.sampled_from([5e-324, 1e-310, 2.2e-308, 1e-300]),
    __import__("hypothesis").strategies.floats(5e-324, 1.0, exclude_max=True)))
def test_tiny_positive_inputs_name_the_option_and_range(args, option, least, x):
    if x >= least:
        return  # valid: covered by the general property above
    line = _err([*args, repr(x)])
    stated = 1e-6 if option == "--requests-per-user-per-min" else least  # the load's floor for the rate
    assert option in line and "[" in line and f"{stated:g}" in line, line
