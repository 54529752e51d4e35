"""Model page: exact parameter breakdown and the per-block FLOPs table in einsum notation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from ..core.units import fmt
from ..model.params import param_breakdown
from . import charts, panels, state


def render(model, hardware, s: dict) -> None:
    st.header(f"Model: {model.display_name}")
    params = param_breakdown(model)
    panels.show_result(params, "params", metrics=("total", "active"), table=False)
    parts = {f.name: f.value for f in params.figures if f.key not in ("total", "active")}
    total = params.value("total")
    st.caption(f"exactly {int(total):,} parameters, {int(params.value('active')):,} active per token")
    table = pd.DataFrame({"component": list(parts), "parameters": [int(v) for v in parts.values()],
                          "share": [f"{v / total:.1%}" for v in parts.values()]})
    left, right = st.columns([1, 1])
    left.dataframe(table, hide_index=True, width="stretch", height=panels.table_height(len(table)),
                   column_config={"parameters": st.column_config.NumberColumn(format="localized")})
    right.altair_chart(charts.breakdown_bar(parts, "billions of parameters", 1e9), width="stretch")
    flops_table(model, s)


def flops_table(model, s: dict) -> None:
    st.subheader("Forward FLOPs per block (einsum notation)")
    from ..model import flops
    c1, c2, c3 = st.columns(3)
    with c1:
        batch = state.widget("batch", st.number_input, label="batch B (sequences)", min_value=1, step=1)
    with c2:
        seq = state.widget("seq", st.number_input, label="sequence L (tokens)", min_value=1, step=256)
    with c3:
        causal = state.widget("causal", st.toggle, label="causal attention (Megatron-LM counter)")
    r = flops.forward_flops(model, batch=batch, seq=seq, causal=causal)
    panels.show_result(r, "flops", metrics=("forward", "train_step", "exact_over_six_nd"), table=False)
    df = matmul_table(r.data["per_layer"])
    st.dataframe(df, hide_index=True, width="stretch", height=panels.table_height(len(df)),
                 column_config={"FLOP per layer": st.column_config.NumberColumn(format="%.3e")})
    panels.csv_download(df, "forward-flops", "dl_flops")


def matmul_table(per_layer: dict) -> pd.DataFrame:
    """One row per matmul of each block type, as flops.forward_flops lists them in data['per_layer']."""
    rows = [{"block": block, "layers": v["layers"], "matmul": mm["label"], "einsum": mm["einsum"],
             "formula": mm["formula"], "per layer": fmt(mm["flops"], "FLOP"),
             "FLOP per layer": float(np.sum(mm["flops"]))}
            for block, v in per_layer.items() for mm in v["matmuls"]]
    return pd.DataFrame(rows, columns=["block", "layers", "matmul", "einsum", "formula", "per layer",
                                       "FLOP per layer"])
