"""A vs B: two scenarios side by side (e.g. H100 vs MI300X, TP=8 vs TP=4×PP=2), with deltas.

Scenario A is the sidebar's model and hardware plus the shared layout; scenario B has its own copies
(``model_b``, ``hw_b``, ``tp_b`` …). Both go through :func:`headline`, which only calls calculators.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from ..core.catalogue import load_hardware, load_model, names
from ..core.results import Figure
from . import charts, headline, panels, state


def inputs(suffix: str, where) -> None:
    with where:
        if suffix:
            state.widget("model" + suffix, st.selectbox, label="model", options=names("models"))
            state.widget("hw" + suffix, st.selectbox, label="hardware", options=names("hardware"))
            state.widget("dtype" + suffix, st.selectbox, label="precision", options=state.DTYPES)
        else:
            st.caption("model, hardware and precision: from the sidebar")
        c = st.columns(3)
        for col, k in zip(c, ("tp", "pp", "dp"), strict=True):
            with col:
                state.widget(k + suffix, st.number_input, label=k.upper(), min_value=1, step=1)


def scenario_figures(model, hardware, scen: dict) -> tuple[list[Figure], list, list[str]]:
    """Headline figures of one scenario, the Results they come from, and what could not be computed."""
    pairs, errors = headline.results(model, hardware, scen)
    figs = [r[k] for r, keys in pairs for k in keys if k in r.keys()]
    return figs, [r for r, _ in pairs], errors


def render(model, hardware, s: dict) -> None:
    st.header("A vs B")
    a_col, b_col = st.columns(2)
    a_col.subheader(f"A: {model.display_name} on {hardware.display_name}")
    b_head = b_col.empty()  # filled once B's own selectboxes have been read
    inputs("", a_col)
    inputs("_b", b_col)
    scen_b = state.scenario(s, "_b")
    model_b, hw_b = load_model(scen_b["model"]), load_hardware(scen_b["hw"])
    b_head.subheader(f"B: {model_b.display_name} on {hw_b.display_name}")
    sides = {"A": scenario_figures(model, hardware, state.scenario(s)),
             "B": scenario_figures(model_b, hw_b, scen_b)}
    for label, col in (("A", a_col), ("B", b_col)):
        with col:
            for msg in sides[label][2]:
                st.error(f"scenario {label}, {msg}")
            for r in sides[label][1]:
                if r.data.get("fits") is not None and not np.all(r.data["fits"]):
                    st.error(f"scenario {label} does not fit in memory: {r.title}")
    st.subheader("deltas")
    st.caption("B shares A's workload (sequence, batches, recompute, ZeRO, prompt and output lengths)")
    table = delta_table(sides["A"][0], sides["B"][0])
    left, right = st.columns([3, 2])
    left.dataframe(table.drop(columns="ratio"), hide_index=True, width="stretch",
                   height=panels.table_height(len(table)))
    right.altair_chart(charts.breakdown_bar(dict(zip(table["figure"], table["ratio"], strict=True)), "B / A"),
                       width="stretch")
    st.subheader("derivations")
    for label, col in zip(("A", "B"), st.columns(2), strict=True):
        with col:
            for r in sides[label][1]:
                panels.explain_panel(r, f"{label}-{r.title}")
                panels.collect(r)


def delta_table(a: list[Figure], b: list[Figure]) -> pd.DataFrame:
    """Figures present on both sides, with B − A and B / A (a ratio of SI values, no formula)."""
    b_by_key = {f.key: f for f in b}
    rows = []
    for fa in a:
        fb = b_by_key.get(fa.key)
        if fb is None or np.ndim(fa.value) or np.ndim(fb.value):
            continue
        va, vb = float(fa.value), float(fb.value)
        # a difference of percentages is in percentage points, not a percentage of A
        diff = f"{(vb - va) * 100:+.3g} pp" if fa.unit == "%" else Figure(fa.key, vb - va, fa.unit).text()
        rows.append({"figure": fa.name, "A": fa.text(), "B": fb.text(), "B − A": diff,
                     "B / A": f"{vb / va:.3g}×" if va else "—", "ratio": vb / va if va else np.nan})
    return pd.DataFrame(rows, columns=["figure", "A", "B", "B − A", "B / A", "ratio"])
