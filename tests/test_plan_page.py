"""The dashboard's Plan page (headless AppTest): it shows what llmcalc.training.plan says, keeps its inputs in
the URL, and renders on every catalogue accelerator."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import pytest
from conftest import app_run

from llmcalc.core.catalogue import load_hardware, load_model, names
from llmcalc.core.units import fmt
from llmcalc.dashboard import state
from llmcalc.training.plan import plan_training

AppTest = pytest.importorskip("streamlit.testing.v1").AppTest
APP = str(Path(__file__).resolve().parent.parent / "app.py")


run_app = partial(app_run, 60)  # conftest.app_run, 60 s per script run


def test_plan_page_table_is_the_planner_ranking():
    at = run_app(page="plan", model="llama-3.1-8b", hw="h100-sxm", plan_gpus="64,128", gbs=256, seq=4096)
    r = plan_training(load_model("llama-3.1-8b"), load_hardware("h100-sxm"), gpus=[64, 128], global_batch=256,
                      seq=4096, top=20, tokens=15e12)
    table = at.dataframe[0].value
    assert list(table["layout"]) == [row["layout"] for row in r.data["ranked"]]
    assert at.header[0].value.startswith("Plan: Llama-3.1-8B")
    step = next(m.value for m in at.metric if m.label == "step time")
    assert step == fmt(r.data["best"]["step_time_s"], "s")  # the breakdown shown is the top row's


def test_choosing_what_to_draw_does_not_rerun_the_planner(monkeypatch):
    """Issue #11: the layout to break down and the chart only choose what to draw; the planner (seconds for the
    MoE models) runs again only when one of its own inputs changes."""
    import llmcalc.training.plan as planner
    from llmcalc.dashboard import plan as page

    calls = []
    real = planner.plan_training
    monkeypatch.setattr(planner, "plan_training", lambda *a, **k: calls.append(k["global_batch"]) or real(*a, **k))
    monkeypatch.setattr(page, "_PLANS", type(page._PLANS)())
    at = run_app(page="plan", model="gpt2", hw="h100-sxm", plan_gpus="8,16", gbs=64, seq=1024)
    assert calls == [64]
    at.selectbox(key="w_plan_pick").set_value(2).run()
    at.radio(key="w_plan_chart").set_value("days").run()
    assert not at.exception and calls == [64]
    assert at.subheader[-1].value.startswith("#2:")  # the breakdown follows the pick
    at.number_input(key="w_gbs").set_value(128).run()
    assert not at.exception and calls == [64, 128]
    at.number_input(key="w_gbs").set_value(64).run()  # back to a plan already made
    assert not at.exception and calls == [64, 128]


def test_plan_page_url_state_round_trip():
    s, notes = state.decode({"page": "plan", "plan_gpus": "512,1024", "objective": "cost", "plan_pick": "3"})
    assert not notes and (s["page"], s["plan_gpus"], s["objective"], s["plan_pick"]) == ("plan", "512,1024", "cost", 3)
    assert state.encode(s) == {"page": "plan", "plan_gpus": "512,1024", "objective": "cost", "plan_pick": "3"}
    _, notes = state.decode({"objective": "fastest"})
    assert notes and "objective" in notes[0]


def test_plan_page_bad_gpu_list_is_one_message():
    at = run_app(page="plan", plan_gpus="64,abc")
    assert at.error and "GPU counts" in at.error[0].value


@pytest.mark.parametrize("hw", names("hardware"))
def test_plan_page_renders_on_every_accelerator(hw):
    at = run_app(page="plan", hw=hw, plan_gpus="8,16")
    assert at.header and (at.dataframe or at.warning)


def test_gpu_counts_no_layout_can_split_say_why_not_more_gpus():
    """User test: ?page=plan&plan_gpus=1000000000 warned "No layout fits … More GPUs, a smaller global batch or
    shorter sequences": more GPUs cannot help, DP cannot exceed the 512 sequences of the global batch. Now the
    planner's own reason (as `llmcalc plan -n 1e9`), under the GPU counts input, and the answer line points there."""
    at = run_app(page="plan", model="llama-3.1-8b", plan_gpus="1000000000")
    assert not any("More GPUs" in w.value for w in at.warning)
    msg = at.error[0].value
    assert msg.startswith("“GPU counts (comma list)” 1000000000: no parallel layout of Llama-3.1-8B splits")
    assert msg.endswith("so at most 8·32·16·512 = 2,097,152 GPUs")  # tp ≤ 8 KV heads, 32 layers, cp 16, dp 512
    assert at.session_state["_llmcalc_answer"].startswith("No answer yet: fix “GPU counts (comma list)”")


def test_plan_table_memory_reads_as_the_breakdowns_metric():
    """User test: the ranked table said "40.2 GiB" for layout #1 while its breakdown below said "peak per GPU
    (worst stage) 43.1 GB": the same bytes in two units side by side. The table now uses the metric's GB."""
    at = run_app(page="plan", model="llama-3.1-8b", hw="h100-sxm")
    first = at.dataframe[0].value.iloc[0]
    peak = next(m.value for m in at.metric if m.label.startswith("peak per GPU"))
    assert first["memory"] == peak and peak.endswith(" GB")
