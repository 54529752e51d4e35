"""``--profile FILE`` on every command that uses efficiencies (issue #9, item 7), defined once in
llmcalc.cli._common (:func:`with_profile`).

A profile's ``efficiency:`` block (training kernels, what ``llmcalc calibrate`` writes) drives step/plan/rl trainer
times; its ``inference:`` block (flops, memory_bw, link fractions) drives infer, sweep, serve, batching, plan-serve,
summary, comms and rl's rollout engines. Expected changes are derived by hand, not read back from our output:
- a roofline time is work / (peak × efficiency), so with every latency term off (--latency-scale 0) halving the
  FLOP and HBM fractions doubles a compute-bound TTFT and a memory-bound TPOT exactly;
- a training step's compute time is Σ kernel FLOPs / (peak × that kernel's efficiency), so halving every training
  term (matmul, attention, MoE unchanged as a ratio) doubles ``compute_s`` exactly;
- a profile must act exactly as the equivalent flags (--eff-flops/--eff-mem/--eff-link, --link-efficiency) where a
  command has them.
"""

import json

import pytest
from conftest import one_line_error
from typer.testing import CliRunner

from llmcalc.cli import app
from llmcalc.core.catalogue import load_hardware
from llmcalc.core.efficiency import training_efficiency

runner = CliRunner()
H100 = load_hardware("h100-sxm")
TE = training_efficiency(H100)
HALF = dict(flops=0.4, memory_bw=0.425, link=0.4)  # half of the defaults 0.8 / 0.85 / 0.8
FLAGS = ["--eff-flops", "0.4", "--eff-mem", "0.425", "--eff-link", "0.4"]


def _profile(tmp_path, training=True, inference=True, hardware="h100-sxm"):
    lines = [f"hardware: {hardware}"]
    if training:
        lines.append(f"efficiency: {{matmul: {TE.matmul / 2}, attention_flash: {TE.attention_flash / 2}, "
                     f"attention_unfused: {TE.attention_unfused / 2}, moe: {TE.moe}, half_width: {TE.half_width}}}")
    if inference:
        lines.append("inference: {flops: 0.4, memory_bw: 0.425, link: 0.4}")
    p = tmp_path / "profile.yaml"
    p.write_text("\n".join(lines) + "\n")
    return str(p)


def _run(args):
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    return res.output


def _json(args):
    return json.loads(_run([*args, "--json"]))


def test_infer_doubles_compute_and_memory_bound_times(tmp_path):
    args = ["infer", "llama-3.1-8b", "--batch", "1", "--latency-scale", "0"]
    base, prof = _json(args), _json([*args, "--profile", _profile(tmp_path)])
    assert base["ttft_bound"] == "compute" and base["decode_bound"] == "memory"
    assert prof["ttft_s"] == pytest.approx(2 * base["ttft_s"], rel=1e-9)
    assert prof["tpot_mean_s"] == pytest.approx(2 * base["tpot_mean_s"], rel=1e-9)


@pytest.mark.parametrize("args", [
    ["infer", "llama-3.1-8b", "--batch", "4"],
    ["sweep", "llama-3.1-8b", "--batch", "1,8,64"],
    ["serve", "llama-3.1-8b", "--users", "1000"],
    ["batching", "llama-3.1-8b", "--qps", "2"],
    ["plan-serve", "llama-3.1-8b", "--qps", "5"],
], ids=lambda a: a[0])
def test_inference_commands_read_the_profile_as_the_eff_flags(tmp_path, args):
    prof = _run([*args, "--profile", _profile(tmp_path)])
    assert prof == _run([*args, *FLAGS])
    assert prof != _run(args)


def test_summary_latency_doubles(tmp_path):
    base = _json(["summary", "llama-3.1-8b"])
    prof = _json(["summary", "llama-3.1-8b", "--profile", _profile(tmp_path)])
    # batch-1 TTFT is compute-bound and TPOT memory-bound; their latency terms do not change, so the profile's time
    # is 2x the roofline part plus the same fixed part: strictly between 1x and 2x
    for k in ("latency/ttft_s", "latency/tpot_mean_s"):
        assert base[k] < prof[k] <= 2 * base[k] * (1 + 1e-9)


def test_comms_reads_the_profile_link_as_link_efficiency(tmp_path):
    args = ["comms", "llama-3.1-8b", "--tp", "8", "--global-batch", "8"]
    prof = _run([*args, "--profile", _profile(tmp_path)])
    assert prof == _run([*args, "--link-efficiency", "0.4"])
    assert prof != _run(args)


def test_step_compute_time_doubles_with_half_the_training_efficiencies(tmp_path):
    args = ["step", "llama-3.1-8b", "--gpus", "8", "--global-batch", "64", "--seq", "4096", "--zero", "1"]
    base = _json(args)
    prof = _json([*args, "--profile", _profile(tmp_path, inference=False)])
    assert prof["compute_s"] == pytest.approx(2 * base["compute_s"], rel=1e-9)
    assert prof["matmul_efficiency"] == pytest.approx(base["matmul_efficiency"] / 2, rel=1e-9)
    assert prof["efficiency"]["origin"].startswith("profile ")


def test_plan_ranks_with_the_profile(tmp_path):
    args = ["plan", "llama-3.1-8b", "--gpus", "8", "--global-batch", "64", "--seq", "4096", "--top", "1"]
    base = _json(args)["best"]
    prof = _json([*args, "--profile", _profile(tmp_path, inference=False)])["best"]
    # compute is at least half of the best layout's step here, so halving compute efficiencies costs > 1.3x
    assert prof["tokens_per_s"] < base["tokens_per_s"] / 1.3


def test_rl_trainer_and_rollout_read_their_blocks(tmp_path):
    args = ["rl", "qwen2.5-7b", "--gpus", "16", "--prompts", "64", "--response-len", "2000,0.5", "--regime", "sync"]
    base = _json(args)["regimes"]["sync_colocated"]["breakdown_s"]
    train_only = _json([*args, "--profile", _profile(tmp_path, inference=False)])
    b1 = train_only["regimes"]["sync_colocated"]["breakdown_s"]
    assert b1["train_s"] > 1.3 * base["train_s"] and b1["generate_s"] == pytest.approx(base["generate_s"], rel=1e-12)
    both = _json([*args, "--profile", _profile(tmp_path)])["regimes"]["sync_colocated"]["breakdown_s"]
    assert both["generate_s"] > base["generate_s"]


def test_profile_errors_are_one_line(tmp_path):
    train_only = _profile(tmp_path, inference=False)
    one_line_error(["infer", "llama-3.1-8b", "--profile", train_only], "--profile", "inference:")
    one_line_error(["comms", "llama-3.1-8b", "--tp", "8", "--global-batch", "8", "--profile", train_only],
                   "inference:")
    one_line_error(["infer", "llama-3.1-8b", "--roofline", "--profile", _profile(tmp_path)], "--roofline", "--profile")
    one_line_error(["serve", "llama-3.1-8b", "-H", "a100-sxm-80gb", "--users", "10", "--profile",
                    _profile(tmp_path)], "h100-sxm", "a100-sxm-80gb")
    bad = tmp_path / "bad.yaml"
    bad.write_text("hardware: h100-sxm\ninference: {flops: 1.5}\n")
    one_line_error(["infer", "llama-3.1-8b", "--profile", str(bad)], "inference.flops", "[1e-06, 1]")
    bad.write_text("hardware: h100-sxm\ninference: {flop: 0.5}\n")
    one_line_error(["sweep", "llama-3.1-8b", "--profile", str(bad)], "inference.flop", "allowed")
    one_line_error(["step", "llama-3.1-8b", "--global-batch", "8", "--profile", str(bad)], "efficiency")


def test_one_shared_option():
    """Every command that uses efficiencies has --profile, with the one help text of llmcalc.cli._common."""
    import click
    from typer.main import get_command

    from llmcalc.cli._common import PROFILE_HELP

    group = get_command(app)
    ctx = click.Context(group)
    for name in ("step", "plan", "comms", "infer", "sweep", "serve", "batching", "plan-serve", "rl", "summary"):
        opts = {o.opts[0]: o for o in group.get_command(ctx, name).params if getattr(o, "opts", None)}
        assert opts["--profile"].help == PROFILE_HELP, name
