"""Model page: exact parameter breakdown, and every matmul of a forward pass in einsum notation (the LM
head included, so the table's rows add up to the headline)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from ..model.params import param_breakdown
from . import charts, panels


def flops_result(model, s: dict):
    from ..model import flops

    return flops.forward_flops(model, batch=int(s["batch"]), seq=int(s["seq"]), causal=bool(s["causal"]))


def answer(model, hardware, s: dict) -> tuple[str, str]:
    p = param_breakdown(model)
    total, active = p.value("total"), p.value("active")
    q = f"How big is {model.display_name}?"
    text = f"{panels.human(total, 'param')}" + (f" ({panels.human(active, 'param')} active per token)"
                                                 if active != total else "")
    f = flops_result(model, s)
    text += (f"; a forward pass over {int(s['batch'])} × {int(s['seq']):,} tokens costs "
             f"{panels.human(f.value('forward'), 'FLOP')}")
    return q, text


def render(model, hardware, s: dict) -> None:
    st.header(f"Model: {model.display_name}")
    top = st.empty()
    c1, c2, c3 = st.columns(3)
    with c1:
        panels.field("batch", st.number_input, label="batch B (sequences)", step=1)
    with c2:
        panels.field("seq", st.number_input, label="sequence L (tokens)", step=256)
    with c3:
        panels.field("causal", st.toggle, label="causal attention (Megatron-LM counter)")
    panels.answer_or_pointer(lambda: answer(model, hardware, s), top)
    with panels.section("Parameters"):
        params_section(model)
    with panels.section("Forward FLOPs per matmul (einsum notation)", s, lambda x: flops_result(model, x)):
        flops_table(model, s)


def params_section(model) -> None:
    params = param_breakdown(model)
    panels.show_result(params, "params", metrics=("total", "active"), table=False, per_row=2)
    parts = {f.name: f.value for f in params.figures if f.key not in ("total", "active")}
    total = params.value("total")
    st.caption(f"exactly {int(total):,} parameters, {int(params.value('active')):,} active per token")
    table = pd.DataFrame({"component": list(parts), "parameters": [int(v) for v in parts.values()],
                          "share": [f"{v / total:.1%}" for v in parts.values()]})
    left, right = st.columns([1, 1])
    panels.dataframe(table, where=left, hide_index=True, width="stretch", height=panels.table_height(len(table)),
                     column_config={"parameters": st.column_config.NumberColumn(format="localized")})
    right.altair_chart(charts.breakdown_bar(parts, "billions of parameters", 1e9), width="stretch")


def flops_table(model, s: dict) -> None:
    r = flops_result(model, s)
    panels.show_result(r, "flops", metrics=("forward", "train_step", "exact_over_six_nd"), table=False, per_row=3)
    df = matmul_table(r.data["per_layer"], r["lm_head"])
    panels.dataframe(df, hide_index=True, width="stretch", height=panels.table_height(len(df)),
                     column_config={"FLOP per layer": st.column_config.NumberColumn(format="%.4e"),
                                    "FLOP, all layers": st.column_config.NumberColumn(format="%.4e")})
    st.caption(f"rows add up to the forward pass: {panels.exact(df['FLOP, all layers'].sum(), 'FLOP')} "
               f"(= {panels.human(r.value('forward'), 'FLOP')})")
    panels.csv_download(df, "forward-flops", "dl_flops")


def matmul_table(per_layer: dict, lm_head=None) -> pd.DataFrame:
    """One row per matmul of each block type (flops.forward_flops' data['per_layer']), plus the LM head."""
    rows = [{"block": block, "layers": v["layers"], "matmul": mm["label"], "einsum": mm["einsum"],
             "formula": mm["formula"], "per layer": panels.human(np.sum(mm["flops"]), "FLOP"),
             "FLOP per layer": float(np.sum(mm["flops"])), "FLOP, all layers": float(np.sum(mm["flops"])) * v["layers"]}
            for block, v in per_layer.items() for mm in v["matmuls"]]
    if lm_head is not None:
        v = float(np.sum(lm_head.value))
        rows.append({"block": "output", "layers": 1, "matmul": lm_head.name, "einsum": lm_head.shape,
                     "formula": lm_head.formula, "per layer": panels.human(v, "FLOP"), "FLOP per layer": v,
                     "FLOP, all layers": v})
    return pd.DataFrame(rows, columns=["block", "layers", "matmul", "einsum", "formula", "per layer",
                                       "FLOP per layer", "FLOP, all layers"])
