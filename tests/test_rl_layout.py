"""The RL trainer's layout: which trainer sizes an EP layout allows, and what the user is told otherwise.

The rule checked here is Megatron-Core's (parallel_state.py; llmcalc.training.layout): the expert-parallel group
is carved out of the data-parallel ranks, so ep must divide dp = trainer GPUs / (tp·pp), i.e. the trainer's GPU
count must be a multiple of tp·pp·ep. A layout that breaks it used to reach the communication ledger with an
expert-data-parallel group of dp·tp/(tp·ep) = 0 ranks and surface the collective model's internal message.
"""

import math
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llmcalc import load_hardware, load_model
from llmcalc.core.errors import LlmcalcError
from llmcalc.core.specs import MoE
from llmcalc.rl.lengths import lognormal
from llmcalc.rl.step import rl_step

H100 = load_hardware("h100-sxm")
MIXTRAL = load_model("mixtral-8x7b")
GPT2 = load_model("gpt2")
# a small MoE (GPT-2 with 8 experts of its own MLP width, top-2) so that EP layouts fit on a handful of GPUs
TINY_MOE = GPT2.model_copy(update={"name": "gpt2-moe8", "display_name": "GPT-2 MoE-8",
                                   "moe": MoE(n_experts=8, top_k=2, d_ff_expert=3072)})
# every option the rl command takes, read from its CLI definition (the user's names, not the engine's)
RL_OPTIONS = set(re.findall(r'"(--[a-z-]+)"', (Path(__file__).parents[1] / "llmcalc/cli/rl.py").read_text()))
INTERNAL = "a collective needs at least 1 rank"


def _assert_rl_error(msg: str) -> None:
    assert msg and "\n" not in msg, msg
    assert INTERNAL not in msg, msg
    named = set(re.findall(r"--[a-z][a-z-]*", msg))
    assert named and named <= RL_OPTIONS, (named - RL_OPTIONS, msg)  # e.g. no training-only --ep/--dp/--tp


def test_searched_split_leaves_only_trainers_whose_dp_ep_divides():
    """--gpus 64 --rollout-tp 2 --train-ep 8 (the reported case): trainer sizes 64 − K with 8 | (64 − K), i.e.
    K ∈ {8, 16, …, 56} (even K, as engines are 2 GPUs); every candidate the search timed is one of these."""
    r = rl_step(MIXTRAL, H100, gpus=64, prompts=64, samples=8, prompt_len=256, response=lognormal(2000, 1.0),
                rollout_tp=2, train_ep=8)
    cand = [int(k) for k in r.data["split"]["candidates"]]
    assert cand and set(cand) <= set(range(8, 64, 8)), cand
    assert (64 - r.data["split"]["rollout_gpus"]) % 8 == 0
    for name, x in r.data["regimes"].items():
        assert math.isfinite(x["step_s"]) and x["step_s"] > 0, name
    # the vectorised search's pick is timed as the scalar path times that split when it is given
    k = r.data["split"]["rollout_gpus"]
    g = rl_step(MIXTRAL, H100, gpus=64, prompts=64, samples=8, prompt_len=256, response=lognormal(2000, 1.0),
                rollout_tp=2, train_ep=8, rollout_gpus=k)
    for name in r.data["regimes"]:
        assert g.data["regimes"][name]["step_s"] == pytest.approx(r.data["regimes"][name]["step_s"], rel=1e-12)


def test_given_split_with_ep_not_dividing_dp_names_rl_options():
    """16 GPUs, 4 for rollout: trainer dp = 12 / (1·1) = 12, which --train-ep 8 does not divide."""
    with pytest.raises(LlmcalcError) as e:
        rl_step(TINY_MOE, H100, gpus=16, rollout_gpus=4, prompts=8, samples=4, prompt_len=256,
                response=lognormal(500, 1.0), train_ep=8, regime="async")
    _assert_rl_error(str(e.value))
    assert "--train-ep 8 must divide" in str(e.value) and "data parallelism 12" in str(e.value)
    assert "multiple of --train-tp·--train-pp·--train-ep = 8" in str(e.value)


@pytest.mark.parametrize("model, kw, words", [
    (GPT2, {"train_ep": 2}, "--train-ep 2 given but GPT-2"),  # dense: no experts to split
    (TINY_MOE, {"train_ep": 3}, "--train-ep 3 does not divide the 8 experts"),
    (GPT2, {"train_tp": 5}, "--train-tp 5 does not divide the 12 attention heads"),
    (GPT2, {"train_pp": 16}, "--train-pp 16 cannot split the 12 layers"),  # more stages than layers
])
def test_layout_errors_independent_of_gpu_count_use_rl_names(model, kw, words):
    with pytest.raises(LlmcalcError) as e:
        rl_step(model, H100, gpus=16, prompts=8, samples=4, prompt_len=256, response=lognormal(500, 1.0), **kw)
    _assert_rl_error(str(e.value))
    assert words in str(e.value)


@st.composite
def _rl_case(draw):
    """rl inputs, mostly whole engines and whole trainer groups of power-of-two sizes (so that most cases are
    timed), some not: any --gpus, any --rollout-gpus, a tp/pp/ep that divides nothing, EP on a dense model."""
    name = draw(st.sampled_from(["gpt2", "gpt2-moe8", "qwen2.5-7b", "mixtral-8x7b"]))
    moe = name in ("gpt2-moe8", "mixtral-8x7b")
    rtp = draw(st.sampled_from([1, 2, 4] if name != "mixtral-8x7b" else [2, 4, 1]))
    tp = draw(st.sampled_from([1, 2, 4, 3]))
    pp = draw(st.sampled_from([1, 2, 4, 5]))
    ep = draw(st.sampled_from([1, 2, 4, 8, 3] if moe else [1, 1, 1, 2]))
    gpus = draw(st.one_of(st.sampled_from([8, 16, 24, 32, 48, 64]), st.integers(1, 64)))
    rollout = draw(st.one_of(st.none(), st.integers(1, max(gpus // rtp - 1, 1)).map(lambda n: n * rtp),
                             st.integers(1, max(gpus - 1, 1))))
    return name, gpus, rollout, tp, pp, ep, rtp


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=_rl_case(), regime=st.sampled_from(["sync", "async", "all"]))
def test_any_trainer_layout_is_figures_or_one_rl_error(case, regime):
    """Generated --gpus, --rollout-gpus (none: the split is searched), --train-tp/-pp/-ep, --rollout-tp, dense and
    MoE models.
    Never the collective model's internal message, never another exception: finite non-negative figures, or
    one line naming only rl options."""
    name, gpus, rollout, tp, pp, ep, rtp = case
    m = {"gpt2": GPT2, "gpt2-moe8": TINY_MOE, "mixtral-8x7b": MIXTRAL}.get(name) or load_model(name)
    try:
        r = rl_step(m, H100, gpus=gpus, rollout_gpus=rollout, prompts=8, samples=4, prompt_len=128,
                    response=lognormal(400, 1.0), rollout_tp=rtp, train_tp=tp, train_pp=pp, train_ep=ep,
                    regime=regime)
    except LlmcalcError as e:
        _assert_rl_error(str(e))
        return
    for reg, x in r.data["regimes"].items():
        assert math.isfinite(x["step_s"]) and x["step_s"] > 0, reg
        assert all(math.isfinite(v) and v >= 0 for v in x["breakdown_s"].values()), reg
        assert x["trainer_gpus"] % (tp * pp * ep) == 0, reg  # only whole tp·pp·ep trainers are timed


@pytest.mark.parametrize("args, rc", [
    ("--gpus 64 --prompts 64 --response-len 2000,1.0 --rollout-tp 2 --train-ep 8", 0),
    ("--gpus 32 --train-tp 2 --train-ep 4 --prompts 64 --response-len 2000,1.0 --rollout-tp 2", 0),
    ("--gpus 16 --rollout-gpus 4 --rollout-tp 2 --train-ep 8 --prompts 8 --response-len 500,1.0 --regime async", 2),
])
def test_cli_reported_cases(args, rc):
    p = subprocess.run([sys.executable, "-m", "llmcalc", "rl", "mixtral-8x7b", "-H", "h100-sxm", *args.split()],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == rc, p.stderr
    assert "Traceback" not in p.stderr and INTERNAL not in p.stderr + p.stdout
    if rc == 2:
        line = p.stderr.strip()
        assert line.startswith("error: ")
        _assert_rl_error(line.removeprefix("error: "))
