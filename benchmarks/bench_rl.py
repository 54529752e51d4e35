"""Speed of ``llmcalc rl``: one RL step in every regime, with and without the split search, and the async
simulation alone.

    python benchmarks/bench_rl.py [--repeat 3]

Scenario: the README's question (Qwen2.5-7B GRPO on 64 H100s, 512 prompts × 16, lognormal responses mean
3,000 cv 1.0 capped at 8,192). Prints the median wall time of: the full rl_step with the split searched (one
vectorised trainer call over ~30 candidate splits, three simulated), rl_step at a given split, and one
staleness-bounded event simulation, plus how many split candidates were scored. Wall-clock numbers depend on
machine load; nothing here is asserted.
"""

from __future__ import annotations

import argparse
import statistics
import time


def _median_s(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    from llmcalc.core.catalogue import load_hardware, load_model
    from llmcalc.rl.lengths import lognormal
    from llmcalc.rl.step import _async, _Ctx, rl_step

    m, hw = load_model("qwen2.5-7b"), load_hardware("h100-sxm")
    kw = dict(gpus=64, prompts=512, samples=16, prompt_len=512, response=lognormal(3000, 1.0, 8192), staleness=2)
    r = rl_step(m, hw, **kw)  # warm-up (imports, caches)
    k = r.data["split"]["rollout_gpus"]
    print(f"split candidates scored: {len(r.data['split']['candidates'])}; best {k} rollout GPUs")
    print(f"rl_step, split searched:  {_median_s(lambda: rl_step(m, hw, **kw), a.repeat) * 1e3:8.1f} ms")
    given = _median_s(lambda: rl_step(m, hw, rollout_gpus=k, **kw), a.repeat)
    print(f"rl_step, split given:     {given * 1e3:8.1f} ms")
    from llmcalc.rl.phases import DEFAULT_SETTINGS

    ctx = _Ctx(m, hw, prompts=512, samples=16, prompt_len=512, response=kw["response"], algo="grpo", ref=False,
               reward_model=None, minibatches=1, rollout_tp=1, train_tp=1, train_pp=1, train_ep=1, zero=3,
               settings=DEFAULT_SETTINGS)
    ctx.train(64 - k)
    sim_s = _median_s(lambda: (ctx._async.clear(), _async(ctx, 64, k, 2, True)), a.repeat)  # not the cached one
    print(f"one async simulation:     {sim_s * 1e3:8.1f} ms (η = 2, {len(ctx.lengths)} cohorts per batch)")


if __name__ == "__main__":
    main()
