"""Altair charts (Altair ships with Streamlit, so the dashboard needs no extra dependency).

Each function takes numbers the calculators produced (SI units) and returns a chart; it computes
nothing but the unit conversion for the axis (bytes -> GiB, s -> ms) and, for the roofline, the
min(peak, intensity·bandwidth) envelope that defines the picture.
"""

from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd

GIB = 2**30


def breakdown_bar(parts: dict[str, float], unit_label: str, scale: float = 1.0) -> alt.Chart:
    """Horizontal bars, one per component, in the order given."""
    df = pd.DataFrame({"component": list(parts), unit_label: [v / scale for v in parts.values()]})
    return alt.Chart(df).mark_bar().encode(
        x=alt.X(f"{unit_label}:Q"), y=alt.Y("component:N", sort=None, title=None),
        tooltip=["component", alt.Tooltip(f"{unit_label}:Q", format=",.3~f")]).properties(height=28 * len(df) + 20)


def memory_stack(parts: dict[str, float], capacity_bytes: float, title: str = "memory per GPU") -> alt.Chart:
    """Memory components stacked in one bar, against a red tick at the device's capacity."""
    cap_label = f"capacity {capacity_bytes / GIB:,.1f} GiB"
    df = pd.DataFrame({"bar": title, "component": list(parts), "GiB": [v / GIB for v in parts.values()],
                       "order": range(len(parts))})
    y = alt.Y("bar:N", title=None)
    bars = alt.Chart(df).mark_bar().encode(
        y=y, x=alt.X("sum(GiB):Q", title=f"GiB (red: {cap_label})"),
        color=alt.Color("component:N", sort=list(parts), legend=alt.Legend(orient="bottom", columns=2)),
        order="order:Q", tooltip=["component", alt.Tooltip("GiB:Q", format=",.2f")])
    cap = pd.DataFrame({"bar": [title], "GiB": [capacity_bytes / GIB], "label": [cap_label]})
    # a tick, not a rule: a rule without y collapses the band scale when layered (seen in Streamlit 1.67)
    tick = alt.Chart(cap).mark_tick(color="red", thickness=3, size=60).encode(y=y, x="GiB:Q", tooltip=["label"])
    return bars + tick


def roofline(peak_flops_per_s: float, bw_bytes_per_s: float, points: list[dict]) -> alt.Chart:
    """Attainable FLOP/s = min(peak, intensity·bandwidth) on log-log axes, with the workloads placed on it.

    ``points``: dicts with ``label``, ``intensity`` (FLOP/B) and ``flops_per_s`` (attainable, TFLOP/s shown).
    """
    ridge = peak_flops_per_s / bw_bytes_per_s
    lo = min([ridge / 100, *[p["intensity"] / 3 for p in points]] or [ridge / 100])
    hi = max([ridge * 100, *[p["intensity"] * 3 for p in points]] or [ridge * 100])
    xs = np.geomspace(max(lo, 1e-3), hi, 200)
    roof = pd.DataFrame({"FLOP/B": xs, "TFLOP/s": np.minimum(peak_flops_per_s, xs * bw_bytes_per_s) / 1e12})
    x = alt.X("FLOP/B:Q", scale=alt.Scale(type="log"), title="arithmetic intensity (FLOP/B)")
    y = alt.Y("TFLOP/s:Q", scale=alt.Scale(type="log"), title="attainable TFLOP/s")
    line = alt.Chart(roof).mark_line(color="gray").encode(x=x, y=y)
    pts = pd.DataFrame({"workload": [p["label"] for p in points], "FLOP/B": [p["intensity"] for p in points],
                        "TFLOP/s": [p["flops_per_s"] / 1e12 for p in points]})
    dots = alt.Chart(pts).mark_point(size=120, filled=True).encode(
        x=x, y=y, color=alt.Color("workload:N", legend=alt.Legend(orient="bottom")),
        tooltip=["workload", alt.Tooltip("FLOP/B:Q", format=",.1f"), alt.Tooltip("TFLOP/s:Q", format=",.1f")])
    labels = dots.mark_text(align="left", dx=8, dy=-8).encode(text="workload:N")
    ridge_df = pd.DataFrame({"FLOP/B": [ridge], "label": [f"ridge {ridge:,.0f} FLOP/B"]})
    ridge_rule = alt.Chart(ridge_df).mark_rule(strokeDash=[4, 4]).encode(x="FLOP/B:Q", tooltip=["label"])
    return (line + ridge_rule + dots + labels).properties(height=320)


def lines(df: pd.DataFrame, x: str, y: str, color: str | None = None, log_x: bool = False,
          log_y: bool = False, title: str = "") -> alt.Chart:
    """A line chart with points of long-form ``df`` (one line per ``color`` value)."""
    enc = dict(x=alt.X(f"{x}:Q", scale=alt.Scale(type="log" if log_x else "linear")),
               y=alt.Y(f"{y}:Q", scale=alt.Scale(type="log" if log_y else "linear")),
               tooltip=[c for c in df.columns])
    if color:
        enc["color"] = alt.Color(f"{color}:N", legend=alt.Legend(orient="bottom"))
    return alt.Chart(df, title=title).mark_line(point=True).encode(**enc).properties(height=260)


def bars(df: pd.DataFrame, category: str, value: str, color: str | None = None, title: str = "") -> alt.Chart:
    """Vertical bars of ``value`` per ``category`` (e.g. communication time per parallelism)."""
    enc = dict(x=alt.X(f"{category}:N", sort=None, title=None, axis=alt.Axis(labelAngle=0)), y=alt.Y(f"{value}:Q"),
               tooltip=[c for c in df.columns])
    if color:
        enc["color"] = alt.Color(f"{color}:N")
    return alt.Chart(df, title=title).mark_bar().encode(**enc).properties(height=260)
