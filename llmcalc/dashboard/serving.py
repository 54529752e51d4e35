"""Serving page: how many devices a load needs within latency targets, what a million tokens costs, how
that moves with the load, and which accelerators serve it cheapest (several on one chart)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from ..core.catalogue import load_hardware, names
from ..core.errors import LlmcalcError, NoDeploymentError
from . import charts, panels, presets, state

LOAD_FACTORS = (0.1, 0.25, 0.5, 1, 2, 4, 10)  # loads around the chosen one for the devices-vs-load chart
DEFAULT_SET = ("h100-sxm", "h200-sxm", "a100-sxm-80gb", "mi300x", "tpu-v5e")


def inputs(dev: str = "GPU") -> None:
    c = st.columns(4)
    specs = (("rate", st.number_input, dict(label="load (requests/s)", format="%.3g")),
             ("prompt", st.number_input, dict(label="prompt tokens", step=128)),
             ("gen", st.number_input, dict(label="output tokens", step=64)),
             ("kv_dtype", st.selectbox, dict(label="KV-cache precision", options=state.DTYPES)),
             ("ttft_slo", st.number_input, dict(label="TTFT target (s)", format="%.3g")),
             ("tpot_slo", st.number_input, dict(label="TPOT target (s)", format="%.3g")),
             ("price", st.number_input, dict(label=f"price (USD per {dev}-hour, 0 = catalogue)", step=0.5,
                                             format="%.3g")))
    for i, (name, draw, kw) in enumerate(specs):
        with c[i % 4]:
            panels.field(name, draw, **kw)


def plan(model, hardware, s: dict, qps: float | None = None, price: float | None = None):
    from ..inference import serving as srv

    p = float(s["price"]) if price is None else price
    return srv.serve(model, hardware, prompt=int(s["prompt"]), output=int(s["gen"]), ttft_s=float(s["ttft_slo"]),
                     tpot_s=float(s["tpot_slo"]), qps=float(s["rate"]) if qps is None else qps, weights=s["dtype"],
                     kv_dtype=s["kv_dtype"], activations=state.activations(s), price_usd_per_hour=p or None)


def across_nodes(model, hardware, s: dict):
    """When no single-node replica serves the model (serve's NoDeploymentError): `llmcalc plan-serve`'s cheapest
    deployment (TP×PP across nodes, EP), at the page's targets, load, precision and KV precision."""
    from ..inference.plan_serve import plan_serve

    return plan_serve(model, hardware, prompt=int(s["prompt"]), output=int(s["gen"]), ttft_s=float(s["ttft_slo"]),
                      tpot_s=float(s["tpot_slo"]), qps=float(s["rate"]), weights=[s["dtype"]],
                      kv_dtypes=[s["kv_dtype"]], price_usd_per_hour=float(s["price"]) or None)


def single_node(model, hardware, s: dict, plan_=plan):
    """serve()'s plan, or the NoDeploymentError that says no single-node replica serves this model."""
    try:
        return plan_(model, hardware, s)
    except NoDeploymentError as e:
        return e


def wider(hardware) -> str:
    """Where plan-serve looks past serve's TP-only family: across nodes, or within one scale-up domain when the
    hardware records no scale-out link (llmcalc.inference.plan_serve.candidates)."""
    return "across nodes" if hardware.scale_out is not None else "within one scale-up domain (TP×PP, EP)"


def lacking(hardware) -> str:
    """Why serve found nothing, in words true of both cases (with no network, plan-serve stays in one node)."""
    return "no single-node replica" if hardware.scale_out is not None else "no TP-only replica"


def answer(model, hardware, s: dict, plan_=plan, across=across_nodes) -> tuple[str, str]:
    dev = state.device_word(hardware)
    q = (f"How many {hardware.display_name} {dev}s serve {float(s['rate']):g} req/s of {model.display_name} "
         f"within TTFT {float(s['ttft_slo']):g} s and TPOT {float(s['tpot_slo']) * 1e3:g} ms?")
    r = single_node(model, hardware, s, plan_)
    if isinstance(r, NoDeploymentError):
        try:
            b = across(model, hardware, s).data["ranked"][0]
        except LlmcalcError:  # not across nodes either (targets no deployment meets): the single-node reason
            return q, f"none: {panels.in_page_words(str(r)).split(' (')[0]}"
        text = f"{int(b['gpus']):,} {dev}s {wider(hardware)}: {b['config']} ({lacking(hardware)} serves it)"
        if b.get("usd_per_million_output") is not None:
            text += f", {panels.human(b['usd_per_million_output'], 'USD')} per million output tokens"
        return q, text
    d = r.data
    text = f"{int(d['gpus']):,} {dev}{'s' * (d['gpus'] > 1)} ({int(d['replicas']):,} × TP {int(d['tp'])})"
    if d.get("usd_per_million_output_tokens") is not None:
        text += f", {panels.human(d['usd_per_million_output_tokens'], 'USD')} per million output tokens"
    return q, text


def render(model, hardware, s: dict) -> None:
    dev = state.device_word(hardware)
    st.header(f"Serving: {model.display_name} on {hardware.display_name}")
    top = st.empty()
    presets.picker("serving")
    inputs(dev)
    if state.precision_words(s):
        st.info(state.precision_words(s))
    here = lambda *a: panels.memo(plan, *a)  # noqa: E731 - one capacity plan for the answer and the section
    across = lambda *a: panels.memo(across_nodes, *a)  # noqa: E731
    panels.answer_or_pointer(lambda: answer(model, hardware, s, here, across), top)
    probe = lambda x: plan(model, hardware, x)  # noqa: E731
    try:
        one = single_node(model, hardware, s, here)
    except LlmcalcError:  # a bad input: the sections below say which, beside it
        one = None
    if isinstance(one, NoDeploymentError):  # said once, with plan-serve's answer; the per-load charts need a replica
        with panels.section(f"Capacity plan ({wider(hardware)}: {lacking(hardware)} serves this model)"):
            try:
                r = across(model, hardware, s)
            except LlmcalcError as e:
                st.error(panels.in_page_words(str(one)))
                st.caption(f"{wider(hardware).capitalize()} (`llmcalc plan-serve`) neither: "
                           f"{panels.in_page_words(str(e))}")
                r = None
            if r is not None:
                st.warning(panels.in_page_words(str(one)))
                panels.show_result(r, "serving-across", metrics=("gpus", "replicas", "ttft_s", "tpot_s"))
                st.caption(f"Cheapest deployment {wider(hardware)}: {r.data['ranked'][0]['config']} (`llmcalc "
                           "plan-serve`, this page's targets, load and precision). The charts against load and the "
                           f"latency percentiles need a {lacking(hardware)[3:]}; see `llmcalc plan-serve` for its "
                           "alternatives.")
        with panels.section("Which accelerator serves this load cheapest?"):
            accelerators(model, hardware, s)
        return
    with panels.section("Capacity plan", s, probe):
        r = here(model, hardware, s)
        keys = [k for k in ("gpus", "replicas", "tp", "concurrency", "ttft_s", "ttft_p99_s", "tpot_s",
                            "usd_per_million_output_tokens") if k in r.keys()]
        panels.show_result(r, "serving", metrics=tuple(keys))
        if "usd_per_million_output_tokens" not in r.keys():
            st.info(f"No catalogue price for the {hardware.display_name}: enter a price per {dev}-hour above.")
    with panels.section(f"{dev}s against load", s, probe):
        load_chart(model, hardware, s, dev)
    with panels.section("Latency percentiles against load (one replica)", s, probe):
        latency_chart(model, hardware, s, here(model, hardware, s).data)
    with panels.section("Which accelerator serves this load cheapest?"):
        accelerators(model, hardware, s)


def load_chart(model, hardware, s: dict, dev: str) -> None:
    loads = np.array(LOAD_FACTORS) * float(s["rate"])
    rows = []
    for q in loads:  # serve() searches TP degrees, so each load is its own call
        try:
            d = plan(model, hardware, s, float(q)).data
        except LlmcalcError as e:
            st.caption(f"{q:g} req/s: {panels.in_page_words(str(e))}")
            continue
        rows.append({"requests/s": q, f"{dev}s": d["gpus"], "replicas": d["replicas"], "TP": d["tp"],
                     "$ per M output tokens": d["usd_per_million_output_tokens"],
                     "current": bool(np.isclose(q, float(s["rate"]))), "fits": True})
    df = pd.DataFrame(rows)
    if df.empty:
        return
    st.altair_chart(charts.sweep(df, "requests/s", f"{dev}s", "current", fits="fits",
                                 title=f"{dev}s needed against load (same targets; ring: this load)"),
                    width="stretch")
    panels.csv_download(df.drop(columns=["current", "fits"]), "gpus-vs-load", "dl_serving")


# shares of the replica's highest sustainable rate (qps_max), denser where the queue's tail climbs; each point is
# one continuous_batching call (~7 ms), so ten keep the chart ~0.07 s of the page's re-render
LATENCY_LOADS = np.array([0.05, 0.2, 0.4, 0.6, 0.75, 0.85, 0.9, 0.95, 0.98, 1.0])


def latency_chart(model, hardware, s: dict, d: dict) -> None:
    """TTFT p50/p99 (M/D/1 wait before prefill) and TPOT of one replica of the plan's TP against its load, up
    to the highest rate it sustains; the ring marks this load's share per replica, the rule the plan's capacity."""
    from ..inference.batching import latency_vs_load
    from ..inference.latency import Deployment

    dep = Deployment(model, hardware, int(d["tp"]), s["dtype"], None, s["kv_dtype"], state.activations(s))
    prompt, gen, here_q = int(s["prompt"]), int(s["gen"]), float(d["qps_per_replica_at_load"])
    q_max = latency_vs_load(dep, prompt, gen, [here_q])["qps_max"]
    rates = np.unique(np.append(LATENCY_LOADS * q_max, min(here_q, q_max)))
    c = latency_vs_load(dep, prompt, gen, rates)
    x = "requests/s per replica"
    series = {"TTFT p50": c["ttft_p50_s"], "TTFT p99": c["ttft_p99_s"], "TPOT (mean)": c["tpot_s"]}
    f, unit = charts.unit_for(np.concatenate(list(series.values())), "s")
    df = pd.DataFrame([{x: q, f"latency ({unit})": v / f, "latency": name, "seconds": v,
                        "current": bool(np.isclose(q, here_q)), "fits": True}
                       for name, vals in series.items() for q, v in zip(c["qps"], vals, strict=True)
                       if np.isfinite(v)])
    if df.empty:
        return
    st.altair_chart(charts.sweep(df, x, f"latency ({unit})", "current", fits="fits", color="latency",
                                 log_x=False, knee=float(d["qps_per_replica"]), knee_label="capacity within targets",
                                 title=f"TP {int(d['tp'])} replica up to its highest sustainable rate "
                                       f"{q_max:,.3g} req/s (ring: this load, {here_q:,.3g} req/s per replica)"),
                    width="stretch")
    st.caption("TTFT = prefill + one decode step + the wait before prefill, an M/D/1 queue (mean exact for Poisson "
               "arrivals; p50 and p99 from a heavy-traffic exponential tail, Kingman 1962). TPOT is the mean "
               "prefill-stretched step: the model gives no TPOT percentile.")
    panels.csv_download(df.drop(columns=["current", "fits"]), "latency-vs-load", "dl_latency")


def accelerators(model, hardware, s: dict) -> None:
    """One serve() call per chosen accelerator; the chart puts them side by side."""
    options = names("hardware")
    default = [h for h in DEFAULT_SET if h in options]
    if hardware.name in options and hardware.name not in default:
        default = [hardware.name, *default]
    chosen = st.multiselect("accelerators to compare (catalogue prices; those without a price show devices only)",
                            options, default=default, key="serve_set")
    rows = []
    for name in chosen:
        hw = load_hardware(name)
        try:
            d = plan(model, hw, s, price=0.0).data
        except NoDeploymentError:
            rows.append({"accelerator": hw.display_name, "devices": np.nan, "$ per M output tokens": np.nan,
                         "note": f"{lacking(hw)} serves it ({wider(hw)}: llmcalc plan-serve)"})
            continue
        except LlmcalcError as e:
            rows.append({"accelerator": hw.display_name, "devices": np.nan, "$ per M output tokens": np.nan,
                         "note": panels.in_page_words(str(e))[:160]})
            continue
        rows.append({"accelerator": hw.display_name, "devices": float(d["gpus"]), "TP": d["tp"],
                     "$ per M output tokens": d["usd_per_million_output_tokens"],
                     "note": "" if d["usd_per_million_output_tokens"] is not None else "no catalogue price"})
    if not rows:
        return
    df = pd.DataFrame(rows)
    c1, c2 = st.columns(2)
    c1.altair_chart(charts.bars(df.dropna(subset=["devices"]), "accelerator", "devices", horizontal=True,
                                title="devices needed for this load"), width="stretch")
    priced = df.dropna(subset=["$ per M output tokens"]) if "$ per M output tokens" in df else df.iloc[0:0]
    if not priced.empty:
        c2.altair_chart(charts.bars(priced, "accelerator", "$ per M output tokens", horizontal=True,
                                    title=["$ per million output tokens", "(catalogue prices)"]), width="stretch")
    panels.dataframe(panels.people_table(df, {"devices": ("devices", ""), "TP": ("TP", ""),
                                              "$ per M output tokens": ("$ per million output tokens", "USD")}),
                     hide_index=True, width="stretch")
