"""Training page: Chinchilla sizing, time and cost, memory per GPU, communication ledger, step time and MFU."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from ..core.units import parse_count
from . import charts, panels, state

GPU_SWEEP = np.array([2**i for i in range(3, 16)])  # 8 … 32,768 GPUs for the days-vs-GPUs chart


def layout_inputs(dev: str = "GPU") -> None:
    c = st.columns(8)
    for col, (name, label) in zip(c, (("tp", "TP"), ("pp", "PP"), ("dp", "DP"), ("cp", "CP"), ("ep", "EP"),
                                      ("mbs", "micro-batch"), ("gbs", "global batch (seqs)"),
                                      ("seq", "sequence")), strict=True):
        with col:
            state.widget(name, st.number_input, label=label, min_value=1, step=1)
    c = st.columns(4)
    with c[0]:
        state.widget("zero", st.selectbox, label="ZeRO stage (over DP×CP)", options=[0, 1, 2, 3])
    with c[1]:
        state.widget("recompute", st.selectbox, label="activation recompute", options=["none", "selective", "full"])
    with c[2]:
        state.widget("sp", st.toggle, label="sequence parallel (with TP)")
    with c[3]:
        st.caption(f"{dev}s = TP·PP·DP·CP; EP lives inside DP (Megatron-Core)")


def make_layout(s: dict):
    from ..training.layout import Layout

    return Layout(tp=int(s["tp"]), pp=int(s["pp"]), dp=int(s["dp"]), ep=int(s["ep"]), cp=int(s["cp"]),
                  sp=bool(s["sp"]), zero=int(s["zero"]))


def render(model, hardware, s: dict) -> None:
    st.header(f"Training: {model.display_name} on {hardware.display_name}")
    scaling_and_cost(model, hardware, s)
    st.subheader("Parallel layout (one step)")
    layout_inputs(state.device_word(hardware))
    layout = make_layout(s)
    st.caption(f"{layout.gpus:,} {state.device_word(hardware)}s of {hardware.display_name}")
    memory(model, hardware, layout, s)
    step_time(model, hardware, layout, s)
    comms(model, hardware, layout, s)


def scaling_and_cost(model, hardware, s: dict) -> None:
    from ..model import scaling
    from ..training import cost
    left, right = st.columns(2)
    with left:
        st.subheader("Chinchilla: compute-optimal tokens")
        r = scaling.chinchilla(model)
        panels.show_result(r, "chinchilla", metrics=("size/rule20/tokens", "size/approach3/tokens"), table=True,
                           per_row=2)
    with right:
        st.subheader("Time and cost")
        c = st.columns(3)
        with c[0]:
            text = state.widget("tokens", st.text_input, label="training tokens (e.g. 15T, 300B)")
        with c[1]:
            gpus = state.widget("gpus", st.number_input, label=f"{state.device_word(hardware)}s", min_value=1,
                                step=64)
        with c[2]:
            mfu = state.widget("mfu", st.number_input, label="MFU", min_value=0.01, max_value=1.0, step=0.05)
        kw = dict(tokens=parse_count(text), hardware=hardware, mfu=mfu, recompute=s["recompute"], dtype=s["dtype"])
        r = cost.training_cost(model, gpus=int(gpus), **kw)
        panels.show_result(r, "cost", metrics=("days", "gpu_hours", "cost"), table=True, per_row=2)
        sweep = cost.training_cost(model, gpus=GPU_SWEEP, **kw)  # one vectorised call
        df = pd.DataFrame({"GPUs": GPU_SWEEP, "days": sweep.data["days"], "GPU-hours": sweep.data["gpu_hours"],
                           "cost USD": sweep.data.get("cost_usd", np.full(GPU_SWEEP.shape, np.nan))})
        st.altair_chart(charts.lines(df, "GPUs", "days", log_x=True, log_y=True,
                                     title=f"training days vs GPU count (MFU {mfu:g})"), width="stretch")
        panels.csv_download(df, "days-vs-gpus", "dl_days")


def memory(model, hardware, layout, s: dict) -> None:
    from ..training import memory as mem
    dev = state.device_word(hardware)
    st.subheader(f"Memory per {dev}")
    r = mem.training_memory(model, hardware, layout, micro_batch=int(s["mbs"]), seq=int(s["seq"]),
                            recompute=s["recompute"], global_batch=int(s["gbs"]))
    d = r.data
    stage = d[f"{d['worst_stage']}_stage"]
    parts = {"weights": stage["weights_bytes"], "gradients": stage["grads_bytes"],
             "optimizer states": stage["optimizer_bytes"], "activations": stage["activations_bytes"]}
    st.altair_chart(charts.memory_stack(parts, hardware.memory_bytes, f"{d['worst_stage']} pipeline stage"),
                    width="stretch")
    if not d["fits"]:
        st.error(f"Does not fit: {r['memory/total'].text()} per {dev} on the {d['worst_stage']} stage exceeds the "
                 f"{hardware.display_name}'s {d['usable_bytes'] / 2**30:,.1f} GiB usable ({d['reserve']:.0%} of "
                 f"{d['memory_bytes'] / 2**30:,.1f} GiB reserved); raise TP/PP, ZeRO or recompute, or lower the "
                 "micro-batch.")
    panels.show_result(r, "memory", metrics=("memory/total", "memory/headroom"), per_row=2)


def comms(model, hardware, layout, s: dict) -> None:
    from ..training import comms as comm
    st.subheader("Communication ledger")
    r = comm.comm_ledger(model, hardware, layout, micro_batch=int(s["mbs"]), seq=int(s["seq"]),
                         global_batch=int(s["gbs"]), recompute=s["recompute"])
    rows = pd.DataFrame([row for row in r.data["rows"] if np.any(row["count"])])
    if rows.empty:
        st.info(f"No collectives: a single {state.device_word(hardware)} communicates nothing.")
    else:
        per = rows.groupby("parallelism", sort=False)["time_s"].sum().reset_index()  # drawing, not a formula
        per["ms per step"] = per["time_s"] * 1e3
        left, right = st.columns([1, 2])
        left.altair_chart(charts.bars(per[["parallelism", "ms per step"]], "parallelism", "ms per step",
                                      title="communication time per parallelism (before overlap)"), width="stretch")
        right.dataframe(rows.drop(columns=["source"], errors="ignore"), hide_index=True, width="stretch",
                        height=panels.table_height(len(rows)))
        panels.csv_download(rows, "comm-ledger", "dl_comms")
    panels.show_result(r, "comms", metrics=("comm/total_time",), table=False)


def step_time(model, hardware, layout, s: dict) -> None:
    from ..training import step
    st.subheader("Step time and MFU")
    r = step.training_step(model, hardware, layout, global_batch=int(s["gbs"]), micro_batch=int(s["mbs"]),
                           seq=int(s["seq"]), recompute=s["recompute"], dtype=s["dtype"])
    if r.data["fits"] is False:  # the same verdict as the memory panel: never a plain MFU for a layout that cannot run
        st.error(r.title.split(" — Training step")[0])
    panels.show_result(r, "step", metrics=("time/step", "throughput/tokens_per_s", "mfu", "hfu"))
