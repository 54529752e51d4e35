"""Drawing helpers every page shares: a Result as a table with its derivation, downloads, sweeps as CSV."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from ..core.results import Result


def figure_rows(result: Result) -> pd.DataFrame:
    """One row per scalar figure: label, formatted value, SI value, unit (array figures are left to charts)."""
    rows = [{"figure": f.name, "value": f.text(), "SI value": float(f.value), "unit": f.unit}
            for f in result.figures if np.ndim(f.value) == 0]
    return pd.DataFrame(rows, columns=["figure", "value", "SI value", "unit"])


def show_result(result: Result, key: str, metrics: tuple[str, ...] = (), table: bool = True,
                per_row: int = 4) -> None:
    """Headline metrics, the figure table, and a "formula" panel with the CLI's --explain text.

    A metric the result does not carry (a cost without a price: 13 of 16 accelerators have none) is left out;
    the result's assumptions say why."""
    metrics = tuple(k for k in metrics if k in result)
    for start in range(0, len(metrics), per_row):
        row = metrics[start:start + per_row]
        for col, k in zip(st.columns(per_row), row, strict=False):
            f = result[k]
            col.metric(f.name, f.text(), help=f.explain())
    if table:
        with st.expander(f"all figures of “{result.title}”", expanded=not metrics):
            st.dataframe(figure_rows(result), hide_index=True, width="stretch",
                         column_config={"SI value": st.column_config.NumberColumn(format="%.4g")})
    explain_panel(result, key)
    collect(result)


def explain_panel(result: Result, key: str) -> None:
    """Every figure's derivation: the same text as ``--explain`` on the command line."""
    with st.expander(f"formula: how each figure of “{result.title}” is derived"):
        st.code(result.explain(), language=None)


def table_height(rows: int, cap: int = 600) -> int:
    """Pixels for a dataframe showing every row (up to ``cap``), instead of Streamlit's 10-row default."""
    return min(cap, 35 * rows + 40)


# ---------------------------------------------------------------- downloads

_RESULTS = "_llmcalc_results"


def start_run() -> None:
    st.session_state[_RESULTS] = []


def collect(result: Result) -> None:
    """Remember a Result drawn in this run, for the scenario download."""
    st.session_state.setdefault(_RESULTS, []).append(result)


def _json_default(o: Any):
    if hasattr(o, "tolist"):
        return o.tolist()
    if hasattr(o, "model_dump"):
        return o.model_dump(mode="json")
    return str(o)


def scenario_texts(state: dict, url_query: str, results: list[Result]) -> tuple[str, str]:
    """The scenario (inputs, its link, and every Result drawn) as JSON and as YAML text."""
    import yaml

    payload = {"scenario": state, "url_query": url_query, "results": [r.as_dict() for r in results]}
    text = json.dumps(payload, indent=2, default=_json_default)
    return text, yaml.safe_dump(json.loads(text), sort_keys=False, width=110)


def scenario_downloads(state: dict, url_query: str, where=st) -> None:
    as_json, as_yaml = scenario_texts(state, url_query, st.session_state.get(_RESULTS, []))
    where.download_button("scenario as JSON", as_json, file_name="llmcalc-scenario.json", mime="application/json",
                          key="dl_json")
    where.download_button("scenario as YAML", as_yaml, file_name="llmcalc-scenario.yaml", mime="application/x-yaml",
                          key="dl_yaml")


def csv_download(df: pd.DataFrame, name: str, key: str) -> None:
    st.download_button(f"download {name} as CSV", df.to_csv(index=False), file_name=f"llmcalc-{name}.csv",
                       mime="text/csv", key=key)
