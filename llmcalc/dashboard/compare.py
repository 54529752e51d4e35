"""A vs B: two scenarios side by side (e.g. H100 vs MI300X, TP=8 vs TP=4×PP=2), each with its own model,
hardware (catalogue or uploaded file), precision, layout and workload; deltas say which side is better.

Scenario A is the sidebar's model and hardware plus the shared fields; scenario B has its own copies
(``model_b``, ``hw_b``, ``tp_b``, ``seq_b`` …). Both go through :func:`headline.results`, which only
calls calculators.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import streamlit as st

from ..core.catalogue import load_hardware, load_model, names
from ..core.errors import LlmcalcError
from ..core.results import Figure
from . import charts, headline, panels, state

WORKLOAD = (("seq", "sequence (tokens)"), ("mbs", "micro-batch"), ("gbs", "global batch (seqs)"),
            ("batch", "inference batch"), ("prompt", "prompt tokens"), ("gen", "output tokens"))


def inputs(suffix: str, where) -> tuple:
    """One side's inputs; returns that side's uploads (model, hardware) or Nones."""
    up = hw_up = None
    with where:
        if suffix:
            panels.field("model" + suffix, st.selectbox, label="model", options=names("models"))
            up = st.file_uploader("…or upload a config.json / model YAML for B", type=["json", "yaml", "yml"],
                                  key="upload_b")
            panels.field("hw" + suffix, st.selectbox, label="hardware", options=names("hardware"))
            hw_up = st.file_uploader("…or upload a hardware YAML for B", type=["yaml", "yml"], key="upload_hw_b")
            panels.field("dtype" + suffix, st.selectbox, label="precision", options=state.DTYPES)
        else:
            st.caption("model, hardware (or uploads) and precision: from the sidebar")
        c = st.columns(3)
        for col, k in zip(c, ("tp", "pp", "dp"), strict=True):
            with col:
                panels.field(k + suffix, st.number_input, label=f"{k.upper()}{' (B)' * bool(suffix)}", step=1)
        with st.expander("workload" + (" of B" if suffix else " of A")):
            c = st.columns(3)
            for i, (k, label) in enumerate(WORKLOAD):
                with c[i % 3]:
                    panels.field(k + suffix, st.number_input, label=label + (" (B)" if suffix else ""), step=1)
            panels.field("kv_dtype" + suffix, st.selectbox, label="KV-cache precision" + (" (B)" if suffix else ""),
                         options=state.DTYPES)
            panels.field("price" + suffix, st.number_input, label="price per device-hour, USD (0 = catalogue)"
                         + (" (B)" if suffix else ""), step=0.5, format="%.3g")
    return up, hw_up


def scenario_figures(model, hardware, scen: dict) -> tuple[list[Figure], list, list[str]]:
    """Headline figures of one scenario, the Results they come from, and what could not be computed."""
    pairs, errors = headline.results(model, hardware, scen)
    figs = [r[k] for r, keys in pairs for k in keys if k in r.keys()]
    return figs, [r for r, _ in pairs], errors


def side_b(s: dict, up, hw_up):
    from .uploads import uploaded_hardware, uploaded_model

    model = uploaded_model(up) if up is not None else load_model(s["model_b"])
    hw = uploaded_hardware(hw_up) if hw_up is not None else load_hardware(s["hw_b"])
    return model, hw


def render(model, hardware, s: dict) -> None:
    st.header("A vs B")
    top = st.empty()
    a_col, b_col = st.columns(2)
    a_head = a_col.empty()
    b_head = b_col.empty()  # filled once B's own inputs have been read
    inputs("", a_col)
    up, hw_up = inputs("_b", b_col)
    a_head.subheader(f"A: {model.display_name} on {hardware.display_name}")
    try:
        model_b, hw_b = side_b(s, up, hw_up)
    except LlmcalcError as e:
        b_col.error(f"scenario B: {panels.in_page_words(str(e))}")
        return
    b_head.subheader(f"B: {model_b.display_name} on {hw_b.display_name}")
    sides = {"A": scenario_figures(model, hardware, state.scenario(s)),
             "B": scenario_figures(model_b, hw_b, state.scenario(s, "_b"))}
    for label, col, hw in (("A", a_col, hardware), ("B", b_col, hw_b)):
        w = panels.device_words(hw)  # a TPU side's messages say 'chip' (user test: "needs 2.80 TB per GPU")
        with col:
            for msg in sides[label][2]:
                st.error(w(f"scenario {label}, {panels.in_page_words(msg, '_b' if label == 'B' else '')}"))
            for r in sides[label][1]:
                if r.data.get("fits") is not None and not np.all(r.data["fits"]):
                    st.error(w(f"scenario {label} does not fit in memory: {r.title}"))
    # a figure timed on a layout that does not fit is hypothetical: shown, never called better or worse (user test:
    # DeepSeek-V3 on 8 GB200 without room for its KV was "B better" on TPOT); the memory it needs is real
    unfit: dict[str, set] = {}
    for label in ("A", "B"):
        for r in sides[label][1]:
            if r.data.get("fits") is not None and not np.all(r.data["fits"]):
                for k in r.keys():
                    if k != "memory/total":
                        unfit.setdefault(k, set()).add(label)
    table = shared_words(delta_table(sides["A"][0], sides["B"][0], unfit), hardware, hw_b)
    panels.answer("Is B better than A?", verdict(table), where=top)
    with panels.section("Deltas (green: B better, red: B worse)"):
        panels.dataframe(styled(table.drop(columns=["ratio"])), hide_index=True, width="stretch",
                         height=panels.table_height(len(table)))
        shown = table.dropna(subset=["ratio"])
        st.altair_chart(charts.ratio_bars(shown), width="stretch")
    with panels.section("Derivations"):
        for label, col in zip(("A", "B"), st.columns(2), strict=True):
            with col:
                for r in sides[label][1]:
                    panels.explain_panel(r, f"{label}-{r.title}")
                    panels.notes(r)
                    panels.collect(r)


def delta_table(a: list[Figure], b: list[Figure], unfit: dict[str, set] | None = None) -> pd.DataFrame:
    """Figures present on both sides, with B − A, B / A (a ratio of SI values, no formula) and which is better;
    ``unfit``: figure key -> the sides on which it comes from a layout that does not fit (no verdict then)."""
    unfit = unfit or {}
    b_by_key = {f.key: f for f in b}
    rows = []
    for fa in a:
        fb = b_by_key.get(fa.key)
        if fb is None or np.ndim(fa.value) or np.ndim(fb.value):
            continue
        va, vb = float(fa.value), float(fb.value)
        # a difference of percentages is in percentage points, not a percentage of A
        # (the same sign as every other row: "−0.0415 pp", not an ASCII hyphen)
        diff = f"{(vb - va) * 100:+.3g} pp".replace("-", "−") if fa.unit == "%" else _signed(vb - va, fa.unit)
        better = ""
        if vb != va and (fa.key in headline.LOWER_IS_BETTER or fa.key in headline.HIGHER_IS_BETTER):
            b_wins = (vb < va) == (fa.key in headline.LOWER_IS_BETTER)
            better = "B better" if b_wins else "B worse"
        if fa.key in unfit:
            sides = sorted(unfit[fa.key])
            better = f"none: {' and '.join(sides)} {'does' if len(sides) == 1 else 'do'} not fit"
        rows.append({"figure": fa.name, "A": panels.human(va, fa.unit), "B": panels.human(vb, fb.unit),
                     "B − A": diff, "B / A": f"{vb / va:.3g}×" if va else "—", "verdict": better,
                     "ratio": vb / va if va else np.nan})
    return pd.DataFrame(rows, columns=["figure", "A", "B", "B − A", "B / A", "verdict", "ratio"])


def shared_words(table: pd.DataFrame, hw_a, hw_b) -> pd.DataFrame:
    """The engine's 'GPU' in the delta table as each side calls its device: A's and B's columns in their own word,
    the figure names and differences in the word both share ('chip' for two TPUs, 'device' for a TPU against a
    GPU)."""
    wa, wb = panels.device_words(hw_a), panels.device_words(hw_b)
    words = {state.device_word(hw_a), state.device_word(hw_b)}
    both = wa if words == {"chip"} else (lambda t: re.sub(r"\bGPU(s?)\b", r"device\1", t)) if len(words) > 1 \
        else (lambda t: t)
    return table.assign(**{"figure": table["figure"].map(both), "A": table["A"].map(wa), "B": table["B"].map(wb),
                           "B − A": table["B − A"].map(both)})


def _signed(v: float, unit: str) -> str:
    text = panels.human(abs(v), unit)
    return ("+" if v > 0 else "−" if v < 0 else "±") + text


def styled(df: pd.DataFrame):
    def colour(row):
        c = {"B better": "color: #0a8a3a; font-weight: 600", "B worse": "color: #c62828; font-weight: 600"}.get(
            row["verdict"], "")
        return [c if col in ("B − A", "B / A", "verdict") else "" for col in row.index]

    return df.style.apply(colour, axis=1)


def verdict(table: pd.DataFrame) -> str:
    """The answer line: the compared figures where B differs, each with its ratio and which side wins."""
    parts = [f"{r['figure']} {r['B / A']} ({r['verdict'].replace('B ', '')})" for _, r in table.iterrows()
             if r["verdict"]]
    better = sum(table["verdict"] == "B better")
    worse = sum(table["verdict"] == "B worse")
    head = f"B is better on {better}, worse on {worse} of {better + worse} figures"
    return head + (": " + "; ".join(parts[:3]) + ("…" if len(parts) > 3 else "") if parts else "")
