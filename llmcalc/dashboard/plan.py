"""Plan page: every training layout for one or more GPU counts, ranked (llmcalc.training.plan), with the best
layout per count on a chart and the selected layout's step and memory breakdown. All numbers come from the
planner; this page only draws them."""

from __future__ import annotations

import threading
from collections import OrderedDict

import pandas as pd
import streamlit as st

from ..core.errors import LlmcalcError
from ..core.units import parse_count
from . import charts, panels, state

TOP = 20


def gpu_counts(text: str) -> list[int]:
    """'64,128,256' -> [64, 128, 256]; a clear error otherwise."""
    try:
        out = sorted({int(x) for x in text.replace(" ", "").split(",") if x})
    except ValueError:
        raise LlmcalcError(f"--gpus expects whole numbers separated by commas, e.g. 64,128,256; got {text!r}") \
            from None
    if not out or min(out) < 1 or len(out) > 16:
        raise LlmcalcError(f"--gpus expects 1 to 16 positive counts, got {text!r}")
    return out


def inputs(dev: str) -> None:
    c = st.columns(6)
    specs = (("plan_gpus", st.text_input, dict(label=f"{dev} counts (comma list)")),
             ("gbs", st.number_input, dict(label="global batch (seqs)", min_value=1, step=64)),
             ("seq", st.number_input, dict(label="sequence", min_value=1, step=512)),
             ("objective", st.selectbox, dict(label="objective", options=["time", "cost", "mfu"])),
             ("tokens", st.text_input, dict(label="token budget (e.g. 1T)")),
             ("price", st.number_input, dict(label=f"price (USD per {dev}-hour, 0 = catalogue)", min_value=0.0,
                                             step=0.5, format="%.3g")))
    for col, (name, draw, kw) in zip(c, specs, strict=True):
        with col:
            panels.field(name, draw, **kw)


def _rows(rows: list[dict], dev: str) -> pd.DataFrame:
    return pd.DataFrame([{"#": i + 1, "layout": r["layout"], f"{dev}s": r["gpus"], "step s": r["step_time_s"],
                          "MFU %": 100 * r["mfu"], "memory GiB": r["memory_bytes"] / 2**30,
                          "bubble s": r["bubble_s"], "exposed comm s": r["exposed_comm_s"], "days": r["days"],
                          "cost USD": r["cost_usd"]} for i, r in enumerate(rows)])


PEOPLE = {"step s": ("step", "s"), "MFU %": ("MFU (with attention)", None), "memory GiB": ("memory", None),
          "bubble s": ("pipeline bubble", "s"), "exposed comm s": ("exposed communication", "s"),
          "days": ("days", "days"), "cost USD": ("cost", "USD")}


def people(table: pd.DataFrame) -> pd.DataFrame:
    """The planner's rows as people read them (13.1 ms, 50.5%, 5.48 M$); the CSV keeps the SI table."""
    t = table.copy()
    if "MFU %" in t:
        t["MFU %"] = [f"{v:.1f}%" for v in t["MFU %"]]
    if "memory GiB" in t:  # in GB, as the breakdown's "peak per GPU" metric below says it (user test: 40.2 GiB in
        # the table beside 43.1 GB for the same layout); the CSV keeps GiB, as its header says
        t["memory GiB"] = [panels.human(v * 2**30, "B") for v in t["memory GiB"]]
    return panels.people_table(t, PEOPLE)


def _plan(model, hardware, s: dict):
    """The planner's result for the page's inputs (and the GPU counts it used, and a note if it changed them)."""
    from ..training.plan import nothing_divides, plan_training

    dev = state.device_word(hardware)
    dtype = "fp8" if s["dtype"] == "fp8" and "fp8" in hardware.peak_flops_per_s else "bf16"
    kw = dict(global_batch=int(s["gbs"]), seq=int(s["seq"]), dtype=dtype)
    counts = gpu_counts(s["plan_gpus"])
    dom = hardware.scale_up.domain_size
    note = ""
    if hardware.span_limit is not None and max(counts) > dom:  # no network recorded: one scale-up domain at most
        note = (f"{hardware.display_name} records no scale-out link: planning {dom} {dev}s (one scale-up "
                f"domain) instead of {', '.join(map(str, counts))}")
        counts = sorted({c for c in counts if c <= dom} | {dom})
    try:
        tokens = parse_count(s["tokens"])
    except LlmcalcError as e:
        raise LlmcalcError(f"--tokens: {e}") from None
    r = plan_training(model, hardware, gpus=counts, objective=s["objective"], top=TOP, tokens=tokens,
                      price_usd_per_hour=float(s["price"]) or None, **kw)
    if r.data["divisible"] == 0:  # nothing to time, so not memory (user test: 10⁹ GPUs were told "more GPUs")
        raise LlmcalcError(f"--gpus {s['plan_gpus']}: " + nothing_divides(
            model, counts, global_batch=kw["global_batch"], seq=kw["seq"], pins=None))
    return r, kw, note


# what _plan reads from the page's state: the key of a plan, so inputs that only choose what to draw (the chart,
# the layout to break down) re-run the page without re-running the planner
PLAN_INPUTS = ("dtype", "gbs", "seq", "plan_gpus", "tokens", "objective", "price")
KEEP = 16  # plans kept (least recently used dropped first), shared by every run and session of this process
_PLANS: OrderedDict[str, tuple] = OrderedDict()
_PLANS_LOCK = threading.Lock()  # Streamlit runs each session's script on its own thread


def planned(model, hardware, s: dict):
    """:func:`_plan`, computed once per model, hardware and planner inputs (issue #11: the planner searches
    thousands of layouts, seconds for the MoE models; picking another layout or chart must not repeat it).
    A user error is not kept: it is raised again, as cheaply as the first time."""
    key = repr((model, hardware, tuple(s[k] for k in PLAN_INPUTS)))
    with _PLANS_LOCK:
        if key in _PLANS:
            _PLANS.move_to_end(key)
            return _PLANS[key]
    out = _plan(model, hardware, s)
    with _PLANS_LOCK:
        _PLANS[key] = out
        while len(_PLANS) > KEEP:
            _PLANS.popitem(last=False)
    return out


def answer(model, hardware, s: dict, plan=_plan) -> tuple[str, str]:
    dev = state.device_word(hardware)
    r = plan(model, hardware, s)[0]
    q = f"Which layout trains {model.display_name} best ({r.data['objective']}) on {s['plan_gpus']} {dev}s?"
    if not r.data["ranked"]:
        return q, f"none fits ({r.title})"
    b = r.data["ranked"][0]
    return q, (f"{b['layout']} on {b['gpus']:,} {dev}s: step {panels.human(b['step_time_s'], 's')}, "
               f"MFU {b['mfu']:.1%} (with attention)"
               + (f", {panels.human(b['days'], 'days')}" if b.get("days") is not None else ""))


def render(model, hardware, s: dict) -> None:
    dev = state.device_word(hardware)
    st.header(f"Plan: {model.display_name} on {hardware.display_name}")
    top = st.empty()
    inputs(dev)
    panels.answer_or_pointer(lambda: answer(model, hardware, s, planned), top)  # one planner run per input
    with panels.section("Ranked layouts", s):  # no probing: each planner run searches thousands of layouts
        ranked(model, hardware, s, planned(model, hardware, s), dev)


def ranked(model, hardware, s: dict, planned, dev: str) -> None:
    from ..training.plan import best_breakdown

    r, kw, note = planned
    if note:
        st.warning(note)
    panels.notes(r)
    d = r.data
    if not d["ranked"]:
        st.warning(f"No layout fits: {r.title}. More {dev}s, a smaller global batch or shorter sequences.")
        return
    st.subheader(f"Top {len(d['ranked'])} layouts by {d['objective']}")
    table = _rows(d["ranked"], dev)
    panels.dataframe(people(table), hide_index=True, width="stretch", height=panels.table_height(len(table)))
    panels.csv_download(table, "plan", "dl_plan")
    left, right = st.columns(2)
    with left:
        per = _rows(d["per_gpus"], dev)
        y = state.widget("plan_chart", st.radio, label="chart", options=["step s", "cost USD", "days"],
                         horizontal=True)
        if per[y].isna().any():
            st.info("no price: give one to chart cost")
            y = "step s"
        st.altair_chart(charts.lines(per[[f"{dev}s", y, "layout"]], f"{dev}s", y, log_x=True,
                                     title=f"best layout per {dev} count"), width="stretch")
    with right:
        st.markdown("**Best per ZeRO stage** (what sharding more state costs here)")
        panels.dataframe(people(_rows(list(d["best_per_zero"].values()), dev).drop(columns=["#"])), hide_index=True,
                         width="stretch")
        st.markdown("**Best per TP degree**")
        panels.dataframe(people(_rows(list(d["best_per_tp"].values()), dev).drop(columns=["#"])), hide_index=True,
                         width="stretch")
    pick = state.widget("plan_pick", st.selectbox, label="layout to break down",
                        options=list(range(1, len(d["ranked"]) + 1)),
                        format_func=lambda i: f"#{i}: {d['ranked'][i - 1]['layout']} on {d['ranked'][i - 1]['gpus']}")
    row = d["ranked"][int(pick) - 1]
    step, mem = best_breakdown(model, hardware, row, **kw)
    st.subheader(f"#{pick}: {row['layout']} on {row['gpus']:,} {dev}s")
    panels.show_result(step, "plan_step",
                       metrics=("time/step", "throughput/tokens_per_s", "mfu", "pipeline/bubble_fraction"))
    md = mem.data
    stage = md[f"{md['worst_stage']}_stage"]
    parts = {"weights": stage["weights_bytes"], "gradients": stage["grads_bytes"],
             "optimizer states": stage["optimizer_bytes"], "activations": stage["activations_bytes"],
             "ZeRO-3 gathered": stage["zero3_gathered_bytes"]}
    st.altair_chart(charts.memory_stack(parts, hardware.memory_bytes, f"{md['worst_stage']} pipeline stage",
                                        md["usable_bytes"]), width="stretch")
    panels.show_result(mem, "plan_memory", metrics=("memory/total", "memory/headroom"), per_row=2)
