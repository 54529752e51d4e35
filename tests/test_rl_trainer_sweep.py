"""One vectorised ``trainer_work`` call over trainer sizes answers the scalar calls too (issue #13): the split
search seeds its per-size cache with ``trainer_at(sweep, i)``, so each fitting element must equal, to the bit and in
the same form (keys, Python floats, layout dict), what the scalar call on that size returns, and each element that
does not fit must be one on which the scalar call raises its LayoutError."""

from __future__ import annotations

import numpy as np
import pytest

from llmcalc.core.catalogue import load_hardware, load_model
from llmcalc.core.errors import LayoutError
from llmcalc.rl.lengths import parse_response_len
from llmcalc.rl.phases import DEFAULT_SETTINGS, trainer_at, trainer_work

CASES = [  # model, hardware, batch, response, trainer kwargs, settings changes
    ("qwen2.5-7b", "h100-sxm", 8192, ("3000,1.0", 8192), dict(algo="grpo", ref=False, tp=1, pp=1, zero=1), {}),
    ("qwen2.5-7b", "h100-sxm", 256, ("2000,0.8", None), dict(algo="ppo", ref=True, tp=1, pp=1, zero=3, minibatches=4),
     {"recompute": "selective"}),
    ("qwen2.5-7b", "mi300x", 1024, ("2500,1.5", 16384), dict(algo="grpo", ref=False, tp=2, pp=1, zero=3),
     {"rollout_logprobs": True}),
    ("mixtral-8x7b", "h100-sxm", 2048, ("3000,1.0", None), dict(algo="grpo", ref=False, tp=2, pp=1, ep=4, zero=1),
     {}),
    ("llama-3.1-70b", "h100-sxm", 1024, ("3000,0.8", None), dict(algo="grpo", ref=True, tp=4, pp=2, zero=1), {}),
]


@pytest.mark.parametrize("case", CASES, ids=[f"{c[0]}-{c[4]['algo']}-tp{c[4]['tp']}" for c in CASES])
def test_sweep_element_is_the_scalar_call(case):
    from dataclasses import replace

    name, hw_name, batch, (resp, cap), kw, changes = case
    m, hw = load_model(name), load_hardware(hw_name)
    lengths, counts = parse_response_len(resp, cap).cohorts(batch)
    unit = kw["tp"] * kw["pp"] * kw.get("ep", 1)
    top = 8 if hw.scale_out is None else 64  # no network: a trainer beyond one scale-up domain is refused
    sizes = np.arange(unit, top + 1, unit)[::-1]
    args = dict(kw, minibatches=kw.get("minibatches", 1), reward_model=None,
                settings=replace(DEFAULT_SETTINGS, **changes))
    sweep = trainer_work(m, hw, sizes, lengths, counts, 512.0, **args)
    for i, g in enumerate(sizes):
        if not sweep["fits"][i]:
            with pytest.raises(LayoutError):
                trainer_work(m, hw, int(g), lengths, counts, 512.0, **args)
            continue
        one, scalar = trainer_at(sweep, i), trainer_work(m, hw, int(g), lengths, counts, 512.0, **args)
        assert list(one) == list(scalar)
        for k, v in scalar.items():
            assert type(one[k]) is type(v) and one[k] == v, (int(g), k)
    assert sweep["fits"].any()  # the cases are meant to exercise fitting sizes


@pytest.mark.parametrize("dist", ["3000,1.0", "2000,6000,8000", "table:500,1000,2000,8000", "800,0"])
@pytest.mark.parametrize("n", [1, 7, 100, 8192])
def test_cohorts_one_quantile_call_is_each_cohort_alone(dist, n):
    """LengthDist._cohorts asks the order statistics of every small cohort in one call, and the quantiles of every
    band in one call (issue #13): each cohort's mean length is the float the per-cohort call gives (both are
    elementwise, row by row)."""
    from llmcalc.rl.lengths import exact_cohort

    d = parse_response_len(dist, 8192)
    lengths, counts = d._cohorts(n)
    hi = n - np.concatenate([[0], np.cumsum(counts)[:-1]])
    for length, h, size in zip(lengths, hi, counts.astype(int), strict=True):
        if exact_cohort(n, int(h), size):
            alone = d.order_stats(np.arange(h - size + 1, h + 1), n)
        else:
            alone = d.quantile(((h - size) + (np.arange(64) + 0.5) * size / 64) / n)
        assert length == float(np.mean(alone))
