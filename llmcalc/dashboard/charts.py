"""Altair charts (Altair ships with Streamlit, so the dashboard needs no extra dependency).

Each function takes numbers the calculators produced (SI units) and returns a chart; it computes
nothing but the unit conversion for the axis (bytes -> GiB, s -> ms) and, for the roofline, the
min(peak, intensity·bandwidth) envelope that defines the picture.
"""

from __future__ import annotations

import functools
import textwrap

import altair as alt
import numpy as np
import pandas as pd
from altair.utils.schemapi import debug_mode

GIB = 2**30

# The two memory lines' colours, and the memory components' colours: Vega's tableau20 less its reds and greys, so no
# component reads as the usable (red) or physical (grey) line.
LINE_COLOURS = {"usable": "red", "physical": "#888888"}
COMPONENT_COLOURS = ["#4c78a8", "#f58518", "#54a24b", "#b279a2", "#eeca3b", "#9ecae9", "#ffbf79", "#88d27a",
                     "#b79a20", "#439894", "#83bcb6", "#d67195", "#fcbfd2", "#d6a5c9", "#9e765f", "#d8b5a5"]

# One row of a horizontal bar chart, in pixels: the chart's height is this step per category (Vega-Lite adds the
# title, axes and legend to it), never a total that those eat into.
ROW_PX = 28


def unchecked(chart):
    """The chart, serialised without a Vega-Lite schema check when Streamlit calls ``chart.to_dict()``.

    That check costs ~0.1 s a chart (jsonschema over the whole spec) on every run of a page (issue #11:
    re-render <= 1 s); the specs here are fixed code, checked against the schema by the test suite instead
    (tests/test_app.py, every page's charts)."""
    object.__setattr__(chart, "to_dict", functools.partial(type(chart).to_dict, chart, validate=False))
    return chart


def title_lines(title, width: int = 44):
    """A chart title as lines of at most ``width`` characters: Vega draws a title on one line and cuts it at the
    chart's edge (user test: "training days vs GPUs (DP scaled; each point its own step model, …" lost its end
    in a half-width column, on a phone and in print). A list (one item a line) or a short title is left as is."""
    return textwrap.wrap(title, width) if isinstance(title, str) and len(title) > width else title


def category_axis(**kw) -> alt.Axis:
    """The axis of a bar chart's categories: every label drawn. Streamlit's theme sets ``labelOverlap: true`` on
    every axis, which on a band axis hides every other label once a row is shorter than a label (Vega's parity
    strategy), leaving bars without names."""
    return alt.Axis(labelOverlap=False, **kw)


def row_height() -> alt.Step:
    """The height of a horizontal bar chart: :data:`ROW_PX` per category. Streamlit sizes charts with
    ``autosize: fit``, in which a number is the whole chart, title lines, axes and legend included: a 106 px chart of
    2 rows under a two-line title kept no plot at all (bars 0 px high, both labels on one row), and 28 px a row
    less a fixed allowance left rows shorter than their labels whenever a title or legend outgrew it."""
    return alt.Step(ROW_PX)


def memory_colours(components) -> alt.Scale:
    """The one colour scale of a memory chart, components and lines together. The bars and the lines are layers,
    and layers share a scale in Vega-Lite: a domain of the two lines alone leaves every component outside it,
    undrawn (issue: memory charts showed only the lines). The legend lists the components (``values``); the
    lines are named in the axis or chart title."""
    comps = list(dict.fromkeys(components))
    if clash := set(comps) & set(LINE_COLOURS):
        raise ValueError(f"memory component named like a capacity line: {sorted(clash)}")
    if len(comps) > len(COMPONENT_COLOURS):
        raise ValueError(f"{len(comps)} memory components, colours for {len(COMPONENT_COLOURS)}")
    return alt.Scale(domain=comps + list(LINE_COLOURS),
                     range=COMPONENT_COLOURS[:len(comps)] + list(LINE_COLOURS.values()))


def fast(build):
    """A chart builder run without Altair's debug mode (each object schema-checked as it is made) and whose
    chart Streamlit serialises unchecked (:func:`unchecked`). Channels are given as objects (``alt.X(...)``,
    ``alt.Tooltip(...)``), not shorthand strings: Altair turns each string into an object by hashing its whole
    schema (~17 ms a string); the spec is the same either way."""
    @functools.wraps(build)
    def wrapper(*args, **kwargs):
        with debug_mode(False):
            return unchecked(build(*args, **kwargs))
    return wrapper


@fast
def breakdown_bar(parts: dict[str, float], unit_label: str, scale: float = 1.0) -> alt.Chart:
    """Horizontal bars, one per component, in the order given."""
    df = pd.DataFrame({"component": list(parts), unit_label: [v / scale for v in parts.values()]})
    return alt.Chart(df).mark_bar().encode(
        x=alt.X(f"{unit_label}:Q"), y=alt.Y("component:N", sort=None, title=None, axis=category_axis()),
        tooltip=[alt.Tooltip("component"), alt.Tooltip(f"{unit_label}:Q", format=",.3~f")]
    ).properties(height=row_height())


def capacity_lines(usable_bytes: float, capacity_bytes: float) -> pd.DataFrame:
    """The two memory lines: usable (what the fit verdict compares against: physical less the reserve) in red,
    and the physical capacity in grey, each labelled."""
    return pd.DataFrame({"GiB": [usable_bytes / GIB, capacity_bytes / GIB],
                         "label": [f"usable {usable_bytes / GIB:,.1f} GiB (the fit verdict's limit)",
                                   f"physical {capacity_bytes / GIB:,.1f} GiB"],
                         "line": ["usable", "physical"]})


@fast
def memory_stack(parts: dict[str, float], capacity_bytes: float, title: str, usable_bytes: float) -> alt.Chart:
    """Memory components stacked in one bar, against a red tick at the usable memory (the fit verdict's
    limit) and a grey one at the physical capacity."""
    lines = capacity_lines(usable_bytes, capacity_bytes)
    df = pd.DataFrame({"bar": title, "component": list(parts), "GiB": [v / GIB for v in parts.values()],
                       "order": range(len(parts))})
    y = alt.Y("bar:N", title=None, axis=category_axis())
    colour = memory_colours(parts)
    bars = alt.Chart(df).mark_bar().encode(
        y=y, x=alt.X("sum(GiB):Q", title=f"GiB (red: usable {usable_bytes / GIB:,.1f}, grey: physical "
                                         f"{capacity_bytes / GIB:,.1f})"),
        color=alt.Color("component:N", scale=colour,
                        legend=alt.Legend(orient="bottom", columns=2, values=list(parts))),
        order=alt.Order("order:Q"), tooltip=[alt.Tooltip("component"), alt.Tooltip("GiB:Q", format=",.2f")])
    cap = lines.assign(bar=title)
    # a tick, not a rule: a rule without y collapses the band scale when layered (seen in Streamlit 1.67)
    tick = alt.Chart(cap).mark_tick(thickness=3, size=60).encode(
        y=y, x=alt.X("GiB:Q"), tooltip=[alt.Tooltip("label")], color=alt.Color("line:N", scale=colour, legend=None))
    return bars + tick


@fast
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
        tooltip=[alt.Tooltip("workload"), alt.Tooltip("FLOP/B:Q", format=",.1f"),
                 alt.Tooltip("TFLOP/s:Q", format=",.1f")])
    labels = dots.mark_text(align="left", dx=8, dy=-8).encode(text=alt.Text("workload:N"))
    ridge_df = pd.DataFrame({"FLOP/B": [ridge], "label": [f"ridge {ridge:,.0f} FLOP/B"]})
    ridge_rule = alt.Chart(ridge_df).mark_rule(strokeDash=[4, 4]).encode(x=alt.X("FLOP/B:Q"),
                                                                         tooltip=[alt.Tooltip("label")])
    return (line + ridge_rule + dots + labels).properties(height=320)


@fast
def lines(df: pd.DataFrame, x: str, y: str, color: str | None = None, log_x: bool = False,
          log_y: bool = False, title: str = "") -> alt.Chart:
    """A line chart with points of long-form ``df`` (one line per ``color`` value)."""
    enc = dict(x=alt.X(f"{x}:Q", scale=alt.Scale(type="log" if log_x else "linear")),
               y=alt.Y(f"{y}:Q", scale=alt.Scale(type="log" if log_y else "linear")),
               tooltip=[alt.Tooltip(c) for c in df.columns])
    if color:
        enc["color"] = alt.Color(f"{color}:N", legend=alt.Legend(orient="bottom"))
    return alt.Chart(df, title=title_lines(title)).mark_line(point=True).encode(**enc).properties(height=260)


@fast
def bars(df: pd.DataFrame, category: str, value: str, color: str | None = None, title: str | list[str] = "",
         horizontal: bool = False) -> alt.Chart:
    """Bars of ``value`` per ``category`` (e.g. communication time per parallelism). ``horizontal``: one row
    per category with its whole name (long names such as accelerators' are never cut); a list ``title`` is
    one line per item (narrow columns cut a long one-line title)."""
    cat = category_axis(labelAngle=0) if not horizontal else category_axis(labelLimit=400)
    enc = dict(tooltip=[alt.Tooltip(c) for c in df.columns])
    enc["x" if not horizontal else "y"] = alt.X(f"{category}:N", sort=None, title=None, axis=cat) if not horizontal \
        else alt.Y(f"{category}:N", sort=None, title=None, axis=cat)
    enc["y" if not horizontal else "x"] = alt.Y(f"{value}:Q") if not horizontal else alt.X(f"{value}:Q")
    if color:
        enc["color"] = alt.Color(f"{color}:N")
    height = 260 if not horizontal else row_height()
    return alt.Chart(df, title=title_lines(title)).mark_bar().encode(**enc).properties(height=height)


def unit_for(values, unit: str) -> tuple[float, str]:
    """A divisor and label that make ``values`` (SI seconds or bytes) read well: ms vs s, GB vs TB."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v) & (v > 0)]
    mid = float(np.median(v)) if v.size else 1.0
    steps = {"s": [(86400, "days"), (3600, "h"), (1, "s"), (1e-3, "ms"), (1e-6, "µs")],
             "B": [(1e12, "TB"), (1e9, "GB"), (1e6, "MB"), (1e3, "kB"), (1, "B")]}[unit]
    for f, label in steps:
        if mid >= f:
            return f, label
    return steps[-1]


@fast
def sweep(df: pd.DataFrame, x: str, y: str, current: str, fits: str | None = None, knee: float | None = None,
          unit: str = "", log_x: bool = True, log_y: bool = True, title: str = "", color: str | None = None,
          knee_label: str = "knee") -> alt.Chart:
    """A sweep as points and a line: points that do not fit are grey (and off the line), the current
    choice is ringed, the knee (if given) is a dashed rule."""
    d = df.copy()
    d["fits?"] = np.where(d[fits], "fits", "does not fit") if fits else "fits"
    sx = alt.Scale(type="log" if log_x else "linear")
    sy = alt.Scale(type="log" if log_y else "linear")
    ax = alt.X(f"{x}:Q", scale=sx, axis=alt.Axis(format=",.4~g"))
    ay = alt.Y(f"{y}:Q", scale=sy, title=f"{y}" + (f" ({unit})" if unit and unit not in y else ""),
               axis=alt.Axis(format=",.3~g"))
    tip = [alt.Tooltip(c, format=",.4~g") if pd.api.types.is_float_dtype(d[c]) else alt.Tooltip(c) for c in d.columns]
    base = alt.Chart(d, title=title_lines(title))
    line_enc = dict(x=ax, y=ay)
    if color:
        line_enc["color"] = alt.Color(f"{color}:N", legend=alt.Legend(orient="bottom"))
    line = base.transform_filter(alt.datum["fits?"] == "fits").mark_line().encode(**line_enc)
    pts = base.mark_point(filled=True, size=60).encode(
        x=ax, y=ay, tooltip=tip,
        color=alt.Color("fits?:N", scale=alt.Scale(domain=["fits", "does not fit"], range=["#1f77b4", "#bbbbbb"]),
                        legend=alt.Legend(orient="bottom", title=None)) if not color else
        alt.Color(f"{color}:N"),
        opacity=alt.OpacityValue(**alt.condition(alt.datum["fits?"] == "fits", alt.value(1), alt.value(0.35))))
    ring = base.transform_filter(alt.datum[current]).mark_point(size=260, color="#d62728", strokeWidth=2.5).encode(
        x=ax, y=ay, tooltip=tip)
    layers = [line, pts, ring]
    if knee:
        kd = pd.DataFrame({x: [knee], "label": [f"{knee_label}: {x} {knee:,.4g}"]})
        layers.append(alt.Chart(kd).mark_rule(strokeDash=[4, 4], color="#555").encode(
            x=alt.X(f"{x}:Q"), tooltip=[alt.Tooltip("label")]))
    # 340: with the chart title, the x axis and a legend below, 280 left a ~95 px plot, shorter than a y-axis title
    # such as "output tokens/s per GPU", which then pushed the chart title above the frame (cut in half)
    return alt.layer(*layers).properties(height=340)


@fast
def memory_layouts(df: pd.DataFrame, capacity_bytes: float, dev: str, usable_bytes: float) -> alt.Chart:
    """Memory per device for several layouts side by side (stacked by component), against the usable memory
    (red: the fit verdict's limit) and the physical capacity (grey, dashed)."""
    d = df.assign(GiB=df["bytes"] / GIB)
    order = list(dict.fromkeys(d["component"]))
    colour = memory_colours(order)
    bars = alt.Chart(d, title=[f"memory per {dev} by layout", f"(red: usable {usable_bytes / GIB:,.1f} GiB; "
                                                              f"grey: physical {capacity_bytes / GIB:,.1f} GiB)"]
                     ).mark_bar().encode(
        x=alt.X("layout:N", sort=None, title=None, axis=category_axis(labelAngle=0, labelLimit=200)),
        y=alt.Y("sum(GiB):Q", title=f"GiB per {dev}"),
        # one legend row: the chart is page-wide, and each legend row comes out of its fixed height; two a row on
        # a narrow screen (a phone's one row ran ~80 px off the edge, "activations" cut)
        color=alt.Color("component:N", scale=colour,
                        legend=alt.Legend(orient="bottom", values=order, columns=alt.ExprRef(
                            f"containerSize()[0] < 600 ? {min(2, len(order))} : {len(order)}"))),
        order=alt.Order("component_order:Q"),
        tooltip=[alt.Tooltip("layout"), alt.Tooltip("component"), alt.Tooltip("GiB:Q", format=",.2f")]
    ).transform_calculate(
        component_order=f"indexof({order!r}, datum.component)")
    cap = alt.Chart(capacity_lines(usable_bytes, capacity_bytes)).mark_rule(strokeWidth=2).encode(
        y=alt.Y("GiB:Q"), tooltip=[alt.Tooltip("label")], color=alt.Color("line:N", scale=colour, legend=None),
        strokeDash=alt.StrokeDash("line:N", scale=alt.Scale(domain=["usable", "physical"], range=[[1, 0], [4, 4]]),
                                  legend=None))
    return (bars + cap).properties(height=300)


@fast
def op_roofline(peak_flops_per_s: float, bw_bytes_per_s: float, ops: list[dict], steps: list[dict]) -> alt.Chart:
    """Per-operator roofline: every operator of a layer as a point (shape: phase), the whole steps as diamonds.

    ``ops``: dicts with op, phase, intensity_flop_per_byte, attained_flops_per_s (from
    llmcalc.inference.operators); ``steps``: op, phase, intensity, flops_per_s (from inference.step)."""
    pts = pd.DataFrame({"operator": [o["op"].split(": ", 1)[-1] for o in ops], "phase": [o["phase"] for o in ops],
                        "FLOP/B": [o["intensity_flop_per_byte"] for o in ops],
                        "TFLOP/s": [o["attained_flops_per_s"] / 1e12 for o in ops],
                        "bound": [o["bound"] for o in ops]})
    whole = pd.DataFrame({"operator": [p["op"] for p in steps], "phase": [p["phase"] for p in steps],
                          "FLOP/B": [p["intensity"] for p in steps],
                          "TFLOP/s": [p["flops_per_s"] / 1e12 for p in steps]})
    ridge = peak_flops_per_s / bw_bytes_per_s
    allx = np.concatenate([pts["FLOP/B"].to_numpy(float), whole["FLOP/B"].to_numpy(float), [ridge]])
    allx = allx[np.isfinite(allx) & (allx > 0)]
    xs = np.geomspace(max(allx.min() / 3, 1e-3), allx.max() * 3, 200)
    roof = pd.DataFrame({"FLOP/B": xs, "TFLOP/s": np.minimum(peak_flops_per_s, xs * bw_bytes_per_s) / 1e12})
    x = alt.X("FLOP/B:Q", scale=alt.Scale(type="log"), title="arithmetic intensity (FLOP per byte of HBM traffic)",
              axis=alt.Axis(format=",.3~g"))
    y = alt.Y("TFLOP/s:Q", scale=alt.Scale(type="log"), title="attainable TFLOP/s per device",
              axis=alt.Axis(format=",.3~g"))
    line = alt.Chart(roof).mark_line(color="gray").encode(x=x, y=y)
    tip = [alt.Tooltip("operator"), alt.Tooltip("phase"), alt.Tooltip("bound"),
           alt.Tooltip("FLOP/B:Q", format=",.3~g"), alt.Tooltip("TFLOP/s:Q", format=",.3~g")]
    dots = alt.Chart(pts).mark_point(size=70, filled=True, opacity=0.8).encode(
        # the phase legend above the plot: beside the two-column operator legend below, it ran off the chart's right
        # edge ("prefill" cut at 1300 px wide, the whole legend on a phone)
        x=x, y=y, shape=alt.Shape("phase:N", legend=alt.Legend(orient="top")),
        color=alt.Color("operator:N", legend=alt.Legend(orient="bottom", columns=2, labelLimit=260)), tooltip=tip)
    steps_l = alt.Chart(whole).mark_point(shape="diamond", size=200, filled=False, color="black",
                                          strokeWidth=2).encode(
        x=x, y=y, tooltip=[alt.Tooltip("operator"), alt.Tooltip("phase"), alt.Tooltip("FLOP/B:Q", format=",.3~g")])
    ridge_rule = alt.Chart(pd.DataFrame({"FLOP/B": [ridge], "label": [f"ridge {ridge:,.0f} FLOP/B"]})).mark_rule(
        strokeDash=[4, 4]).encode(x=alt.X("FLOP/B:Q"), tooltip=[alt.Tooltip("label")])
    return (line + ridge_rule + dots + steps_l).properties(height=440)  # the phase legend above takes ~50 px


@fast
def ratio_bars(df: pd.DataFrame) -> alt.Chart:
    """B / A per figure on a log axis around 1, coloured by which side is better (grey: no better side).

    Each bar runs from 1 to the ratio (``x2``), never from 0: a log scale has no zero (Vega-Lite otherwise
    stacks bars from 0 and draws nothing). Ratios that are not positive (a headroom that changes sign) have no
    place on a log axis and stay in the table only. A tick marks each ratio, so a figure where B equals A (a bar
    of no length) still shows, grey, at 1."""
    r = pd.to_numeric(df["ratio"], errors="coerce").astype(float)
    keep = np.isfinite(r) & (r > 0)
    who = df.loc[keep, "verdict"].where(df.loc[keep, "verdict"].isin(["B better", "B worse"]), "no better side")
    d = df[keep].assign(**{"B / A (×)": r[keep], "one": 1.0, "who": who})  # grey too: a side that does not fit
    x = alt.X("B / A (×):Q", scale=alt.Scale(type="log", zero=False), axis=alt.Axis(format=",.3~g"), title="B / A (×)")
    base = alt.Chart(d).encode(
        # labels up to 400 px, at most 45% of the chart's width: on a phone (390 px) a fixed 400 left the bars
        # no room at all (labels only, cut; legend and axis off the edge)
        y=alt.Y("figure:N", sort=None, title=None,
                axis=category_axis(labelLimit=alt.ExprRef("min(400, max(80, containerSize()[0] * 0.45))"))), x=x,
        color=alt.Color("who:N", scale=alt.Scale(domain=["B better", "B worse", "no better side"],
                                                 range=["#2e9d4f", "#d33c3c", "#999999"]),
                        # two a row below 400 px: on a phone "no better side" ran off the edge
                        legend=alt.Legend(orient="bottom", title=None,
                                          columns=alt.ExprRef("containerSize()[0] < 400 ? 2 : 3"))),
        tooltip=[alt.Tooltip(c) for c in ("figure", "A", "B", "B / A", "verdict")])
    # a tick at the ratio too: a figure where B equals A (1×) has a bar of no length
    return (base.mark_bar().encode(x2=alt.X2("one:Q")) + base.mark_tick(thickness=2)).properties(height=row_height())
