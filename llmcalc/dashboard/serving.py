"""Serving page: the capacity plan (replicas, GPUs, $ per million tokens) for a load and latency targets."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from . import charts, panels, state

LOAD_FACTORS = (0.1, 0.25, 0.5, 1, 2, 4, 10)  # loads around the chosen one for the GPUs-vs-load chart


def inputs(dev: str = "GPU") -> None:
    c = st.columns(7)
    specs = (("rate", st.number_input, dict(label="load (requests/s)", min_value=0.001, format="%.3g")),
             ("prompt", st.number_input, dict(label="prompt tokens", min_value=1, step=128)),
             ("gen", st.number_input, dict(label="output tokens", min_value=1, step=64)),
             ("ttft_slo", st.number_input, dict(label="TTFT target (s)", min_value=0.001, format="%.3g")),
             ("tpot_slo", st.number_input, dict(label="TPOT target (s)", min_value=0.00001, format="%.3g")),
             ("kv_dtype", st.selectbox, dict(label="KV-cache precision", options=state.DTYPES)),
             ("price", st.number_input, dict(label=f"price (USD per {dev}-hour, 0 = catalogue)", min_value=0.0,
                                             step=0.5, format="%.3g")))
    for col, (name, draw, kw) in zip(c, specs, strict=True):
        with col:
            state.widget(name, draw, **kw)


def plan(srv, model, hardware, s: dict, qps: float):
    return srv.serve(model, hardware, prompt=int(s["prompt"]), output=int(s["gen"]), ttft_s=float(s["ttft_slo"]),
                     tpot_s=float(s["tpot_slo"]), qps=qps, weights=s["dtype"], kv_dtype=s["kv_dtype"],
                     activations=state.activations(s), price_usd_per_hour=float(s["price"]) or None)


def render(model, hardware, s: dict) -> None:
    st.header(f"Serving: {model.display_name} on {hardware.display_name}")
    dev = state.device_word(hardware)
    inputs(dev)
    from ..inference import serving as srv
    r = plan(srv, model, hardware, s, float(s["rate"]))
    keys = [k for k in ("replicas", "gpus", "tp", "concurrency", "usd_per_million_output_tokens") if k in r.keys()]
    panels.show_result(r, "serving", metrics=tuple(keys))
    for note in r.assumptions:
        st.caption("· " + note)
    loads = np.array(LOAD_FACTORS) * float(s["rate"])
    rows = []
    for q in loads:  # serve() searches TP degrees, so each load is its own call
        d = plan(srv, model, hardware, s, float(q)).data
        rows.append({"requests/s": q, f"{dev}s": d["gpus"], "replicas": d["replicas"], "TP": d["tp"],
                     "$ per M output tokens": d["usd_per_million_output_tokens"]})
    df = pd.DataFrame(rows)
    st.altair_chart(charts.lines(df, "requests/s", f"{dev}s", log_x=True, log_y=True,
                                 title=f"{dev}s needed against load (same targets)"), width="stretch")
    st.dataframe(df, hide_index=True, width="stretch")
    panels.csv_download(df, "gpus-vs-load", "dl_serving")
