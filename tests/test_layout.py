"""Impossible parallel layouts are clear LayoutErrors (scalars) or masked (sweeps).

Expected divisibility facts come from the models' published configs: Llama-3.1-8B has 32 attention
heads, 8 key/value heads and 32 layers (Llama 3 paper, Table 3); Mixtral-8x7B has 8 experts (Mistral
model card).
"""

import numpy as np
import pytest
from typer.testing import CliRunner

from llmcalc.cli import app
from llmcalc.core.catalogue import load_model
from llmcalc.core.errors import LayoutError
from llmcalc.training.layout import Layout, check_layout, group_spans, microbatches

LLAMA = load_model("llama-3.1-8b")
MIXTRAL = load_model("mixtral-8x7b")


@pytest.mark.parametrize("layout, kw, words", [
    (Layout(tp=3), {}, ["--tp 3", "32 attention heads", "Llama-3.1-8B"]),
    (Layout(tp=16), {}, ["--tp 16", "8 key/value heads"]),  # divides the 32 query heads, not the 8 KV heads
    (Layout(pp=33), {}, ["--pp 33", "32 layers", "--pp-layers"]),  # more stages than layers
    (Layout(pp=30), {}, ["--pp 30", "32 layers"]),  # ⌈32/30⌉ = 2 per middle stage leaves nothing for the ends
    (Layout(pp=3, pp_layers=(10, 11, 10)), {}, ["--pp-layers 10,11,10", "32 layers", "add up to 31"]),
    (Layout(pp=4, pp_first=3), {}, ["--pp-first 3", "do not split evenly"]),  # 29 over 3 stages
    (Layout(pp=4, interleave=3), {}, ["--interleave 3", "32 layers"]),
    (Layout(tp=2, dp=2), {"gpus": 8}, ["tp·pp·dp·cp", "= 4", "--gpus is 8"]),
    (Layout(dp=4), {"global_batch": 10, "micro_batch": 1}, ["--global-batch 10", "micro-batch·dp"]),
    (Layout(ep=2, dp=2), {}, ["--ep 2", "dense"]),
    (Layout(cp=4), {"seq": 2052}, ["--seq 2052", "2·cp"]),
])
def test_impossible_layouts_raise_with_the_option_named(layout, kw, words):
    with pytest.raises(LayoutError) as e:
        check_layout(LLAMA, layout, **kw)
    for w in words:
        assert w in str(e.value)


def test_expert_parallel_must_divide_experts_and_dp():
    with pytest.raises(LayoutError, match="--ep 3 does not divide the 8 experts"):
        check_layout(MIXTRAL, Layout(ep=3, dp=3))
    with pytest.raises(LayoutError, match="--ep 4 must divide --dp 2"):
        check_layout(MIXTRAL, Layout(ep=4, dp=2))
    assert check_layout(MIXTRAL, Layout(tp=2, ep=8, dp=8)) is True


def test_zero_stage_is_checked():
    with pytest.raises(LayoutError, match="--zero"):
        check_layout(LLAMA, Layout(zero=4))


def test_sweep_gives_a_mask_instead_of_raising():
    tp = np.array([1, 2, 3, 4, 8, 16])
    valid = check_layout(LLAMA, Layout(tp=tp))
    assert valid.tolist() == [True, True, False, True, True, False]
    pp = np.array([[1], [3], [33]])  # 3 stages split 32 layers 10, 11, 11; 33 stages cannot
    valid = check_layout(LLAMA, Layout(tp=tp, pp=pp), gpus=tp * pp)
    assert valid.shape == (3, 6) and valid[1].tolist() == valid[0].tolist() and not valid[2].any()


def test_microbatches_and_rank_spans():
    # Korthikanti et al. 2022 Table 3, 175B: global batch 64, micro-batch 1, dp 1 -> 64 micro-batches
    assert microbatches(Layout(tp=8, pp=8), 1, 64) == 64
    s = group_spans(Layout(tp=8, cp=2, dp=4, ep=2, pp=2))  # order TP, CP, EP, DP, PP
    assert (s["tp"], s["cp"], s["ep"], s["dp"], s["pp"]) == (8, 16, 32, 64, 128)


def test_cli_reports_layout_errors_without_traceback():
    r = CliRunner().invoke(app, ["step", "llama-3.1-8b", "--gpus", "8", "--tp", "3", "--global-batch", "8"])
    assert r.exit_code == 2
    assert "--tp 3 does not divide the 32 attention heads" in r.output
    assert "Traceback" not in r.output
    r = CliRunner().invoke(app, ["memory", "llama-3.1-8b", "--pp", "4", "--interleave", "3"])
    assert r.exit_code == 2 and "--pp 4 × --interleave 3 does not divide the 32 layers" in r.output
    r = CliRunner().invoke(app, ["memory", "llama-3.1-8b", "--pp-layers", "8,8,x"])
    assert r.exit_code == 2 and "--pp-layers" in r.output and "Traceback" not in r.output


# ---------------------------------------------------------------- impossible inputs: one clear error, exit 2

CLI_BAD_INPUTS = [
    (["comms", "llama-3.1-8b", "--link-efficiency", "0"], "--link-efficiency"),
    (["comms", "llama-3.1-8b", "--link-efficiency", "-1"], "--link-efficiency"),
    (["comms", "llama-3.1-8b", "--link-efficiency", "5"], "--link-efficiency"),
    (["step", "llama-3.1-8b", "--gpus", "8", "--global-batch", "8", "--link-efficiency", "0"], "--link-efficiency"),
    (["step", "llama-3.1-8b", "--gpus", "8", "--global-batch", "0"], "--global-batch must be a positive integer"),
    (["step", "llama-3.1-8b", "--gpus", "8", "--global-batch", "-8"], "--global-batch must be a positive integer"),
    (["step", "llama-3.1-8b", "--gpus", "8", "--global-batch", "8", "--seq", "-2048"], "got -2048"),
    (["memory", "llama-3.1-8b", "--global-batch", "-8", "--pp", "2"], "--global-batch"),
    (["memory", "llama-3.1-8b", "--seq", "-2048"], "--seq must be a positive integer (at least 1), got -2048"),
    (["train", "llama-3.1-8b", "--tokens", "1T", "--days", "nan"], "--days"),
    (["train", "llama-3.1-8b", "--tokens", "1T", "--gpus", "8", "--price", "-1"], "--price"),
    (["train", "llama-3.1-8b", "--tokens", "1T", "--gpus", "8", "--mfu", "nan"], "--mfu"),
    (["chinchilla", "--flops", "nan"], "--flops"),
]


@pytest.mark.parametrize("args, words", CLI_BAD_INPUTS)
def test_impossible_inputs_exit_2_with_one_message(args, words):
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 2, res.output
    assert words in res.output and "Traceback" not in res.output
    assert "array(" not in res.output  # plain values, not numpy reprs


def test_odd_sequence_needs_the_2cp_split_only_with_context_parallelism():
    assert check_layout(LLAMA, Layout(), seq=2047) is True  # no CP: any length
    with pytest.raises(LayoutError, match="2·cp"):
        check_layout(LLAMA, Layout(cp=2), seq=2047)


def test_api_rejects_non_finite_and_out_of_range_numbers():
    from llmcalc.core.catalogue import load_hardware
    from llmcalc.core.errors import LlmcalcError
    from llmcalc.training.comms import comm_ledger

    h100 = load_hardware("h100-sxm")
    with pytest.raises(LayoutError, match="--seq"):
        check_layout(LLAMA, Layout(), seq=np.array([2048.0, np.nan]))
    for eff in (0.0, -1.0, 5.0, float("nan")):
        with pytest.raises(LlmcalcError, match="--link-efficiency"):
            comm_ledger(LLAMA, h100, Layout(tp=2), link_efficiency=eff)


def test_recompute_is_case_insensitive_everywhere():
    for cmd in (["memory", "llama-3.1-8b"], ["comms", "llama-3.1-8b", "--tp", "2"],
                ["step", "llama-3.1-8b", "--gpus", "8", "--global-batch", "8"]):
        res = CliRunner().invoke(app, [*cmd, "--recompute", "FULL", "--json"])
        assert res.exit_code == 0, (cmd, res.output)


_HUGE = [1, 2, 8, 3, 2**26, 2**53 - 1, 2**53, 2**53 + 1, 2**62]


@pytest.mark.parametrize("model", ["mixtral-8x22b", "llama-3.1-8b", "deepseek-v3"])
def test_huge_degrees_give_one_layout_error_never_an_overflow(model):
    """Degrees up to 2**53 each (and one past it) in every combination that matters for products (tp·pp·dp·cp,
    etp·ep): check_layout answers True or one LayoutError, as Python ints and as numpy int64, with RuntimeWarning
    an error (pytest's configuration) — before the fix `--ep 2**53 --etp 2**53` overflowed int64 (fuzz, seed
    20261205). A layout of more than 2**53 devices is refused by name."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    m = load_model(model)
    deg = st.sampled_from(_HUGE)

    @settings(max_examples=150, deadline=None, derandomize=True)
    @given(tp=deg, pp=deg, dp=deg, cp=deg, ep=deg, etp=deg, gpus=deg, np_ints=st.booleans())
    def run(tp, pp, dp, cp, ep, etp, gpus, np_ints):
        cast = np.int64 if np_ints else int
        lay = Layout(tp=cast(tp), pp=cast(pp), dp=cast(dp), cp=cast(cp), ep=cast(ep),
                     etp=cast(etp) if m.moe else None)
        try:
            assert check_layout(m, lay, gpus=cast(gpus)) is True
        except LayoutError as e:
            assert "\n" not in str(e)
            if max(tp, pp, dp, cp, ep, etp, gpus) <= 2**53 and float(tp) * pp * dp * cp > 2**53:
                assert "more than 2**53 devices" in str(e) or "does not divide" in str(e) or "must" in str(e)

    run()
