"""Inference page: how fast one deployment answers; its memory per device, where each operator sits on the
roofline, and what a larger batch buys (points that do not fit in memory greyed out)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from . import charts, panels, presets, state


def inputs(dev: str = "GPU") -> None:
    c = st.columns(3)
    specs = (("batch", st.number_input, dict(label="batch (requests)", step=1)),
             ("prompt", st.number_input, dict(label="prompt tokens", step=128)),
             ("gen", st.number_input, dict(label="output tokens", step=64)),
             ("tp", st.number_input, dict(label=f"TP ({dev}s per replica)", step=1)),
             ("kv_dtype", st.selectbox, dict(label="KV-cache precision", options=state.DTYPES)),
             ("roofline", st.toggle, dict(label="pure roofline (efficiency 1)")))
    for i, (name, draw, kw) in enumerate(specs):
        with c[i % 3]:
            panels.field(name, draw, **kw)


def deployment(model, hardware, s: dict):
    from ..core.efficiency import DEFAULT_EFFICIENCY, ROOFLINE
    from ..inference.latency import Deployment

    return Deployment(model, hardware, tp=int(s["tp"]), weights=s["dtype"], kv_dtype=s["kv_dtype"],
                      activations=state.activations(s),
                      eff=ROOFLINE if s["roofline"] else DEFAULT_EFFICIENCY)


def latency_result(model, hardware, s: dict):
    from ..inference import latency as inf

    return inf.latency(deployment(model, hardware, s), batch=int(s["batch"]), prompt=int(s["prompt"]),
                       output=int(s["gen"]))


def answer(model, hardware, s: dict, lat=latency_result) -> tuple[str, str]:
    dev = state.device_word(hardware)
    tp = int(s["tp"])
    q = (f"How fast does {model.display_name} answer on {tp} {hardware.display_name} {dev}{'s' * (tp > 1)} "
         f"(batch {int(s['batch'])}, {int(s['prompt']):,} → {int(s['gen']):,} tokens)?")
    r = lat(model, hardware, s)
    ttft, tpot = r["ttft_s"], r["tpot_mean_s"]
    text = (f"first token in {panels.human(ttft.value, 's')}, then {1 / float(tpot.value):,.3g} tokens/s per request "
            f"(TPOT {panels.human(tpot.value, 's')})")
    if int(s["gen"]) == 1:  # no token after the first: no decode rate to claim (user test: "then 177 tokens/s")
        text = f"its one output token in {panels.human(ttft.value, 's')} (prefill only, no decode)"
    if not np.all(r.data["fits"]):
        text += f" — but it does not fit in {dev} memory"
    return q, text


def render(model, hardware, s: dict) -> None:
    dev = state.device_word(hardware)
    st.header(f"Inference: {model.display_name} on {hardware.display_name}")
    top = st.empty()
    presets.picker("inference")
    inputs(dev)
    if state.precision_words(s):
        st.info(state.precision_words(s))
    lat = lambda *a: panels.memo(latency_result, *a)  # noqa: E731 - one latency call for the whole page
    panels.answer_or_pointer(lambda: answer(model, hardware, s, lat), top)
    probe = lambda x: latency_result(model, hardware, x)  # noqa: E731
    with panels.section("Latency", s, probe):
        r = lat(model, hardware, s)
        panels.show_result(r, "latency", metrics=("ttft_s", "tpot_mean_s", "e2e_s", "tokens_per_s_per_gpu"))
        knee = r.data["compute_bound_batch"]
        st.caption(f"decode is {r.data['decode_bound']}-bound at batch {int(s['batch'])}"
                   + (f"; it turns compute-bound from batch {knee:,}" if knee else ""))
    left, right = st.columns(2)
    with left, panels.section(f"Memory per {dev}", s, probe):
        memory(model, hardware, s, dev, lat(model, hardware, s))
    with right, panels.section("Roofline: every operator of a layer", s, probe):
        roofline(model, hardware, s)
    with panels.section("Batch sweep", s, probe):
        batch_sweep(model, hardware, s, dev)


def memory(model, hardware, s: dict, dev: str, lat) -> None:
    from ..inference import kv as kvc

    d = lat.data
    batch = int(s["batch"])
    parts = {"weights": d["weight_bytes_per_gpu"], "KV cache (batch, at prompt + output)": d["kv_bytes_per_gpu"]}
    usable = kvc.fit(model, hardware, s["dtype"], None, s["kv_dtype"], int(s["tp"]),
                     reserve=d["reserve"]).value("usable_bytes_per_gpu")  # what the fit verdict compares against
    st.altair_chart(charts.memory_stack(parts, hardware.memory_bytes, f"memory per {dev}", usable), width="stretch")
    if not np.all(d["fits"]):
        st.error(f"Does not fit: weights + KV exceed the {hardware.display_name}'s memory less the "
                 f"{d['reserve']:.0%} reserve at batch {batch}; raise TP, lower the batch or quantise.")
    kv = kvc.kv_cache(model, context=int(s["prompt"]) + int(s["gen"]), batch=batch, kv_dtype=s["kv_dtype"],
                      tp=int(s["tp"]))
    panels.show_result(kv, "kv", metrics=("bytes_per_token_uncapped", "bytes_per_gpu"), table=True, per_row=2)


def roofline(model, hardware, s: dict) -> None:
    from ..inference import latency as inf
    from ..inference.operators import layer_operators

    dep = deployment(model, hardware, s)
    batch, prompt, gen = int(s["batch"]), int(s["prompt"]), int(s["gen"])
    ops = layer_operators(dep, batch, prompt, gen)
    pre = inf.step(dep, batch, prompt, prompt, prefill=True)
    dec = inf.step(dep, batch, 1, prompt + 1, prefill=False)
    whole = [{"op": f"whole {name} step", "phase": name, "intensity": float(x["intensity_flop_per_byte"]),
              "flops_per_s": float(x["attained_flops_per_s"])} for name, x in (("prefill", pre), ("decode", dec))]
    st.altair_chart(charts.op_roofline(dep.peak_flops_per_s, hardware.memory_bw_bytes_per_s, ops.rows, whole),
                    width="stretch")
    st.caption(f"each point: one operator of a {ops.block} layer at batch {batch} (prefill over the "
               f"{prompt:,}-token prompt, decode of one token at context {prompt + 1:,}), placed at its "
               "intensity and the roof min(peak, intensity × bandwidth); diamonds: the whole step as "
               "llmcalc.inference.latency attains it. " + ops.note)
    df = pd.DataFrame(ops.rows)
    with st.expander("operators as a table"):
        panels.dataframe(panels.people_table(df), hide_index=True, width="stretch")
    panels.csv_download(df, "operators", "dl_ops")


def batch_sweep(model, hardware, s: dict, dev: str = "GPU") -> None:
    from ..inference import sweeps

    dep = deployment(model, hardware, s)
    prompt, gen = int(s["prompt"]), int(s["gen"])
    max_batch = state.widget("max_batch", st.select_slider, label="largest batch in the sweep",
                             options=[2**i for i in range(1, 13)])
    batches = np.array(sorted({2**i for i in range(int(np.log2(max_batch)) + 1)} | {int(s["batch"])}))
    out = sweeps.batch_sweep(dep, batches, prompt, gen)  # one vectorised call
    df = pd.DataFrame(out["columns"])
    knee = out["knee"]
    st.caption(f"knee: batch {knee['batch']} ({knee['reason']}); largest batch whose KV fits beside the weights: "
               f"{out['max_batch_that_fits']:,}" if knee["batch"] else
               f"knee: {knee['reason']}; largest batch that fits: {out['max_batch_that_fits']:,}")
    fits = df["fits"].astype(bool)
    f, unit = charts.unit_for(np.concatenate([df.loc[fits, "ttft_s"], df.loc[fits, "tpot_mean_s"]])
                              if fits.any() else df["tpot_mean_s"], "s")
    df["current"] = df["batch"] == int(s["batch"])
    lat = pd.concat([pd.DataFrame({"batch": df["batch"], f"latency ({unit})": df[c] / f, "latency": name,
                                   "fits": fits, "current": df["current"]})
                     for c, name in (("ttft_s", "TTFT"), ("tpot_mean_s", "TPOT (mean)"))])
    c1, c2 = st.columns(2)
    c1.altair_chart(charts.sweep(lat, "batch", f"latency ({unit})", "current", fits="fits", knee=knee["batch"],
                                 color="latency", title="latency vs batch (grey: does not fit)"), width="stretch")
    tput = df[["batch", "tokens_per_s_per_gpu", "fits", "current"]].rename(
        columns={"tokens_per_s_per_gpu": f"output tokens/s per {dev}"})
    c2.altair_chart(charts.sweep(tput, "batch", f"output tokens/s per {dev}", "current", fits="fits",
                                 knee=knee["batch"], log_y=False,
                                 title=f"throughput vs batch (ring: batch {int(s['batch'])})"), width="stretch")
    for a in out["assumptions"]:
        if a.split(":")[0].isupper():
            panels.warn_once(a)
    panels.dataframe(panels.people_table(df.drop(columns="current")), hide_index=True, width="stretch")
    panels.csv_download(df.drop(columns="current"), "batch-sweep", "dl_batch_sweep")
