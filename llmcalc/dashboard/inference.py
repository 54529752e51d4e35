"""Inference page: KV cache, prefill/decode latency on the roofline, and a batch sweep."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from . import charts, panels, state


def inputs(dev: str = "GPU") -> None:
    c = st.columns(6)
    with c[0]:
        state.widget("batch", st.number_input, label="batch (requests)", min_value=1, step=1)
    with c[1]:
        state.widget("prompt", st.number_input, label="prompt tokens", min_value=1, step=128)
    with c[2]:
        state.widget("gen", st.number_input, label="output tokens", min_value=1, step=64)
    with c[3]:
        state.widget("tp", st.number_input, label=f"TP ({dev}s per replica)", min_value=1, step=1)
    with c[4]:
        state.widget("kv_dtype", st.selectbox, label="KV-cache precision", options=state.DTYPES)
    with c[5]:
        state.widget("roofline", st.toggle, label="pure roofline (efficiency 1)")


def deployment(model, hardware, s: dict):
    from ..core.efficiency import DEFAULT_EFFICIENCY, ROOFLINE
    from ..inference.latency import Deployment

    return Deployment(model, hardware, tp=int(s["tp"]), weights=s["dtype"], kv_dtype=s["kv_dtype"],
                      activations=state.activations(s),
                      eff=ROOFLINE if s["roofline"] else DEFAULT_EFFICIENCY)


def render(model, hardware, s: dict) -> None:
    st.header(f"Inference: {model.display_name} on {hardware.display_name}")
    dev = state.device_word(hardware)
    inputs(dev)
    from ..inference import kv as kvc
    from ..inference import latency as inf
    dep = deployment(model, hardware, s)
    batch, prompt, gen = int(s["batch"]), int(s["prompt"]), int(s["gen"])

    st.subheader("Latency")
    lat = inf.latency(dep, batch=batch, prompt=prompt, output=gen)
    panels.show_result(lat, "latency", metrics=("ttft_s", "tpot_mean_s", "e2e_s", "tokens_per_s_per_gpu"))
    knee = lat.data["compute_bound_batch"]
    st.caption(f"decode is {lat.data['decode_bound']}-bound at batch {batch}; it turns compute-bound from batch "
               f"{knee:,}" if knee else f"decode is {lat.data['decode_bound']}-bound at batch {batch}")

    left, right = st.columns(2)
    with left:
        st.subheader(f"Memory per {dev}")
        d = lat.data
        parts = {"weights": d["weight_bytes_per_gpu"], "KV cache (batch, at prompt + output)": d["kv_bytes_per_gpu"]}
        st.altair_chart(charts.memory_stack(parts, hardware.memory_bytes, title=f"memory per {dev}"),
                        width="stretch")
        if not np.all(d["fits"]):
            st.error(f"Does not fit: weights + KV exceed the {hardware.display_name}'s memory less the "
                     f"{d['reserve']:.0%} reserve at batch {batch}; raise TP, lower the batch or quantise.")
        kv = kvc.kv_cache(model, context=prompt + gen, batch=batch, kv_dtype=s["kv_dtype"], tp=dep.tp)
        # per device, beside the per-device chart; two per row so the labels are not cut off
        panels.show_result(kv, "kv", metrics=("bytes_per_token_uncapped", "bytes_per_gpu"), table=True, per_row=2)
    with right:
        st.subheader("Roofline: prefill and decode")
        st.altair_chart(roofline_chart(inf, dep, batch, prompt), width="stretch")
        st.caption("points sit at the FLOP/s each step attains at this batch (roof × efficiency, plus "
                   "TP communication), from llmcalc.inference.step")
    batch_sweep(dep, prompt, gen, dev)


def roofline_chart(inf, dep, batch: int, prompt: int):
    pre = inf.step(dep, batch, prompt, prompt, prefill=True)
    dec = inf.step(dep, batch, 1, prompt + 1, prefill=False)
    points = [{"label": f"{name} (batch {batch})", "intensity": float(x["intensity_flop_per_byte"]),
               "flops_per_s": float(x["attained_flops_per_s"])} for name, x in (("prefill", pre),
                                                                                        ("decode", dec))]
    return charts.roofline(dep.peak_flops_per_s, dep.hw.memory_bw_bytes_per_s, points)


def batch_sweep(dep, prompt: int, gen: int, dev: str = "GPU") -> None:
    st.subheader("Batch sweep")
    from ..inference import sweeps
    max_batch = state.widget("max_batch", st.select_slider, label="largest batch in the sweep",
                             options=[2**i for i in range(1, 13)])
    batches = np.array([2**i for i in range(int(np.log2(max_batch)) + 1)])
    out = sweeps.batch_sweep(dep, batches, prompt, gen)  # one vectorised call
    df = pd.DataFrame(out["columns"])
    df["TTFT ms"], df["TPOT ms"] = df["ttft_s"] * 1e3, df["tpot_mean_s"] * 1e3
    knee = out["knee"]
    st.caption(f"knee: batch {knee['batch']} ({knee['reason']}); largest batch whose KV fits beside the weights: "
               f"{out['max_batch_that_fits']:,}" if knee["batch"] else
               f"knee: {knee['reason']}; largest batch that fits: {out['max_batch_that_fits']:,}")
    lat = df.melt("batch", ["TTFT ms", "TPOT ms"], "latency", "ms")
    c1, c2 = st.columns(2)
    c1.altair_chart(charts.lines(lat, "batch", "ms", "latency", log_x=True, log_y=True, title="latency vs batch"),
                    width="stretch")
    c2.altair_chart(charts.lines(df[["batch", "tokens_per_s_per_gpu", "fits"]], "batch", "tokens_per_s_per_gpu",
                                 log_x=True, title=f"throughput (output tokens/s per {dev}) vs batch"),
                    width="stretch")
    st.dataframe(df, hide_index=True, width="stretch")
    panels.csv_download(df, "batch-sweep", "dl_batch_sweep")
