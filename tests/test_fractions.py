"""One rule for every efficiency or utilisation fraction (--mfu, --compute-efficiency, --link-efficiency,
--eff-flops/--eff-mem/--eff-link, profile values): finite and in [1e-6, 1]. Found by the long fuzz campaign: a
denormal fraction (2.2e-308) divided a finite time into an overflow inside the collective model."""

from __future__ import annotations

import pytest
from fuzzkit import fast_runner
from hypothesis import given, settings
from hypothesis import strategies as st

CASES = [
    ["comms", "llama-3.1-8b", "--dp", "16", "--seq", "4096", "--global-batch", "64", "--link-efficiency"],
    ["step", "llama-3.1-8b", "--gpus", "8", "--global-batch", "8", "--compute-efficiency"],
    ["step", "llama-3.1-8b", "--gpus", "8", "--global-batch", "8", "--link-efficiency"],
    ["plan", "llama-3.1-8b", "--gpus", "8", "--global-batch", "8", "--top", "1", "--compute-efficiency"],
    ["infer", "llama-3.1-8b", "--eff-flops"],
    ["infer", "llama-3.1-8b", "--eff-mem"],
    ["infer", "llama-3.1-8b", "--tp", "2", "--eff-link"],
    ["train", "llama-3.1-8b", "--tokens", "1T", "--gpus", "8", "--mfu"],
    ["summary", "llama-3.1-8b", "--mfu"],
]
BAD = st.one_of(st.floats(min_value=5e-324, max_value=9.99e-7), st.floats(min_value=1.0000001, max_value=1e300),
                st.sampled_from([0.0, -0.5, float("nan"), float("inf")]))


@pytest.mark.parametrize("cmd", CASES, ids=lambda c: f"{c[0]} {c[-1]}")
@settings(max_examples=12, deadline=None)
@given(x=BAD)
def test_a_fraction_outside_1e_minus_6_to_1_is_one_line_naming_the_option(cmd, x):
    r = fast_runner().invoke([*cmd, repr(x)])
    assert r.exit_code == 2, r.output
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and cmd[-1] in lines[0], r.output


@pytest.mark.parametrize("cmd", CASES, ids=lambda c: f"{c[0]} {c[-1]}")
def test_the_bounds_themselves_are_accepted(cmd):
    for x in ("1e-6", "1"):
        r = fast_runner().invoke([*cmd, x])
        assert r.exit_code in (0, 1), r.output  # 1: a layout that does not fit is an answer, not a bad input
