"""Sharding exercises (issue #14): `shard mlp` shapes, FLOPs and bytes against a hand derivation for a small
case, and the --numpy reference runs and passes its own checks."""

from __future__ import annotations

import subprocess
import sys

import pytest
from typer.testing import CliRunner

from llmcalc.cli import app
from llmcalc.core.catalogue import load_hardware
from llmcalc.study.shard import shard_attention, shard_mlp, totals

H100 = load_hardware("h100-sxm")
# The small case: B=2 sequences, L=4 tokens, D=8, F=16, tp=2, dp=2, bf16 (2 B per element).
FORMS = {f.name: f for f in shard_mlp(8, 16, 2, 4, 2, H100, dp=2)}


def ops(form: str) -> dict:
    return {o.what: o for o in FORMS[form].ops}


def test_megatron_shapes_flops_and_bytes_by_hand():
    o = ops("megatron")
    h = o["H = X·W1"]
    assert h.einsum == "BLD,D(F/tp)->BL(F/tp)" and h.shape == "(2,4,8),(8,8)->(2,4,8)"
    assert h.flops.value == 2 * 2 * 4 * 8 * (16 // 2)  # 2·B·L·D·F/tp = 1024
    y = o["Y (g)"]  # all-reduce of the partial Y: S = B·L·D·2 B = 128 B; ring moves 2(n-1)/n·S = 128 B
    assert (y.collective, y.shape, y.group, y.bytes_per_rank.value) == ("all-reduce", "(2,4,8)", 2, 128)
    dx = o["dX (f)"]
    assert (dx.collective, dx.bytes_per_rank.value) == ("all-reduce", 128)
    assert sum(1 for x in FORMS["megatron"].ops if x.collective) == 2  # one forward (g), one backward (f)


def test_row_sharded_all_reduces_before_the_relu():
    o = ops("row")
    h = o["H = X·W1 (partial sums)"]
    assert h.shape == "(2,4,4),(4,16)->(2,4,16)" and h.flops.value == 2 * 2 * 4 * (8 // 2) * 16
    ar = o["H before the ReLU"]  # S = B·L·F·2 = 256 B, all-reduce per rank 2·(1/2)·256 = 256 B
    assert (ar.collective, ar.shape, ar.bytes_per_rank.value) == ("all-reduce", "(2,4,16)", 256)
    ag = o["dH (W1's rows need every F)"]  # all-gather of the full BLF (256 B): (n-1)/n·S = 128 B
    assert (ag.collective, ag.bytes_per_rank.value) == ("all-gather", 128)
    assert o["dX = dH·W1ᵀ"].shape == "(2,4,16),(4,16)->(2,4,4)"  # dX stays split along D, like X


def test_column_sharded_gathers_hidden_and_output():
    o = ops("column")
    assert o["H (W2's columns need every F)"].bytes_per_rank.value == 128  # (1/2)·B·L·F·2
    assert o["Y (replicate the output)"].bytes_per_rank.value == 64  # (1/2)·B·L·D·2 B = 128/2
    assert o["dH to this rank's F/tp"].collective == "reduce-scatter"
    assert o["Y = H·W2"].shape == "(2,4,16),(16,4)->(2,4,4)"


def test_data_parallel_all_reduces_weight_gradients_only():
    o = ops("data")
    assert o["H = X·W1"].shape == "(1,4,8),(8,16)->(1,4,16)"  # B/dp = 1
    coll = [x for x in FORMS["data"].ops if x.collective]
    assert [(x.what, x.group, x.bytes_per_rank.value) for x in coll] == [("dW1", 2, 256), ("dW2", 2, 256)]
    assert all(x.phase == "backward" for x in coll)


@pytest.mark.parametrize("form", list(FORMS))
def test_backward_is_twice_forward_per_rank(form):
    t = totals(FORMS[form])
    assert t["backward_flops"] == 2 * t["forward_flops"]


def test_sharded_forms_split_the_unsharded_flops_evenly():
    whole = totals(FORMS["batched"])["forward_flops"]
    for form, n in (("row", 2), ("column", 2), ("megatron", 2), ("data", 2)):
        assert totals(FORMS[form])["forward_flops"] * n == whole, form


def test_attention_tp_splits_heads_and_all_reduces_twice():
    unsharded, tp = shard_attention(64, 8, 2, 2, 16, 2, H100)
    assert totals(tp)["forward_flops"] * 2 == totals(unsharded)["forward_flops"]
    assert totals(tp)["backward_flops"] == 2 * totals(tp)["forward_flops"]
    assert [o.collective for o in tp.ops if o.collective] == ["all-reduce", "all-reduce"]
    q = next(o for o in tp.ops if o.what == "Q = X·Wq")
    assert q.shape == "(2,16,64),(64,4,8)->(2,16,4,8)"  # H/tp = 4 heads of K = 64/8 = 8


@pytest.mark.parametrize("args", [["mlp", "--d", "64", "--f", "128", "--batch", "4", "--seq", "8", "--tp", "4"],
                                  ["mlp"],  # the default sizes: scaled down to run in a second
                                  ["attention", "--heads", "32", "--kv-heads", "8", "--tp", "4"]])
def test_numpy_reference_runs_and_passes(args):
    r = CliRunner().invoke(app, ["shard", *args, "--numpy"])
    assert r.exit_code == 0, r.output
    run = subprocess.run([sys.executable, "-c", r.output], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    expected = ["row", "column", "megatron", "data"] if args[0] == "mlp" else ["tp"]
    for name in expected:
        assert f"{name:9s} forward and backward agree" in run.stdout
    assert "matches a finite difference" in run.stdout


def test_shard_cli_table_and_errors():
    r = CliRunner().invoke(app, ["shard", "mlp", "--form", "megatron"])
    assert r.exit_code == 0 and "all-reduce n=4" in r.output and "BLD,D(F/tp)->BL(F/tp)" in r.output
    from conftest import one_line_error

    one_line_error(["shard", "mlp", "--d", "10", "--tp", "4"], "--d 10", "--tp 4")
    one_line_error(["shard", "conv"], "mlp or attention")
    one_line_error(["shard", "attention", "--heads", "32", "--kv-heads", "2", "--tp", "4"], "--kv-heads 2")
