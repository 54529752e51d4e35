"""Drawing helpers every page shares.

- :func:`human` / :func:`exact`: figures for people (``5.48 M$``, ``16.1 GB``, ``1.2 × 10⁶ days``) and
  the exact figure for tooltips and downloads;
- :func:`field`: an input bound to URL state, with its limits taken from the URL field (typed limits
  equal link limits) and a slot right under it for a message about that input;
- :func:`section`: one part of a page that computes on its own; a user error inside it is shown beside
  the input it concerns, in the page's own words, with the values that would work, and the rest of the
  page keeps rendering;
- :func:`answer`: the page's question and its one-line answer, drawn above the inputs;
- :func:`show_result`: metrics, the figure table, every warning and assumption, the derivation.
"""

from __future__ import annotations

import json
import math
import re
from contextlib import contextmanager
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from ..core.errors import LlmcalcError
from ..core.results import Figure, Result
from ..core.units import fmt
from . import state

# ---------------------------------------------------------------- numbers for people

_SUP = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def sci(x: float) -> str:
    """1.2 × 10⁶: a mantissa with 2 significant digits and a superscript power of ten."""
    if x == 0 or not math.isfinite(x):
        return str(x)
    e = int(math.floor(math.log10(abs(x))))
    m = x / 10**e
    if round(m, 1) >= 10:
        m, e = m / 10, e + 1
    return f"{m:.2g} × 10{str(e).translate(_SUP)}"


def _money(v: float) -> str:
    a = abs(v)
    for f, p in ((1e12, "T$"), (1e9, "B$"), (1e6, "M$"), (1e3, "k$")):
        if a >= f:
            return f"{v / f:.3g} {p}" if a < f * 1e3 or p != "T$" else f"{sci(v)} $"
    return f"${v:.2f}" if a >= 0.01 or v == 0 else f"${v:.2g}"


def human(value, unit: str) -> str:
    """A short text for a metric: no binary twin for bytes, compact money, powers of ten for huge numbers."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return str(value)
    if not math.isfinite(v):
        return "—"
    if unit == "B":
        return fmt(v, "B").split(" (")[0]  # 16.1 GB; the GiB figure is in the tooltip
    if unit in ("USD", "$"):
        return _money(v)
    if unit == "USD/h":
        return _money(v) + "/h"
    if unit == "s" and abs(v) >= 1e4 * 86400:
        return f"{sci(v / 86400)} days"
    if unit == "days":
        return f"{sci(v)} days" if abs(v) >= 1e4 else f"{fmt(v, '')} days"
    text = fmt(v, unit)
    number = text.split(" ")[0]
    if len(number.replace(",", "").replace(".", "")) > 6:  # 1,376,610,070 -> 1.4 × 10⁹
        return f"{sci(v)} {unit}".rstrip()
    if v != 0 and _reads_zero(number):  # user test: 4e-11 token/s on a 1 FLOP/s upload read "0.000 token/s"
        return f"{sci(v * 100)}%" if unit == "%" else f"{sci(v)} {unit}".rstrip()
    return text


def _reads_zero(number: str) -> bool:
    try:
        return float(number.replace(",", "").rstrip("%")) == 0
    except ValueError:
        return False


# engine field names read by people: suffix -> (words, unit for human()); the longest matching suffix wins
_SUFFIXES = (("_usd_per_million_output_tokens", " ($ per million output tokens)", "USD"),
             ("tokens_per_s_per_gpu", " (tokens/s per device)", "token/s"),
             ("tokens_per_s_per_request", " (tokens/s per request)", "token/s"),
             ("tokens_per_s", " (tokens/s)", "token/s"), ("flops_per_gpu", " (FLOP per device)", "FLOP"),
             ("bytes_per_gpu", " (bytes per device)", "B"), ("bytes_per_rank", "bytes per rank", "B"),
             ("flop_per_byte", " (FLOP/B)", "FLOP/B"),
             ("flops_per_s", " (FLOP/s)", "FLOP/s"), ("_bytes", "", "B"), ("_usd", " ($)", "USD"), ("_s", "", "s"))
_WORDS = {"ttft": "TTFT", "tpot": "TPOT", "e2e": "end-to-end", "mfu": "MFU", "hfu": "HFU", "gpus": "devices",
          "tp": "TP", "pp": "PP", "dp": "DP", "ep": "EP", "cp": "CP", "kv": "KV"}


def column_words(name: str) -> tuple[str, str | None]:
    """A readable header and the unit of an engine column name: 'ttft_s' -> ('TTFT', 's'),
    'tokens_per_s_per_gpu' -> ('output tokens/s per device', 'token/s'); other names get spaces."""
    unit = None
    stem = name
    for suffix, words, u in _SUFFIXES:
        if name.endswith(suffix):
            stem, unit = name[: -len(suffix)], u
            tail = words
            break
    else:
        tail = ""
    head = " ".join(_WORDS.get(w, w) for w in stem.strip("_").split("_") if w)
    return ((head + tail).strip() if head else tail.strip(" ()")) or name, unit


def people_table(df: pd.DataFrame, units: dict[str, tuple[str, str | None]] | None = None) -> pd.DataFrame:
    """The table as people read it: every number through :func:`human` with its unit (13.1 ms, 4.6 × 10⁶
    token/s, 50.5%), headers in words ('TTFT', not 'ttft_s'). ``units``: column -> (header, unit) where the
    name alone does not say it. The raw SI table stays for charts and CSV downloads (the exact figures)."""
    units = units or {}
    out = {}
    for c in df.columns:
        header, unit = units.get(c) or column_words(str(c))
        col = df[c]
        if pd.api.types.is_bool_dtype(col):
            out[header] = col.map({True: "yes", False: "no"})
        elif pd.api.types.is_numeric_dtype(col) and not unit and np.all(np.mod(col.dropna(), 1) == 0):
            out[header] = [f"{int(v):,}" if np.isfinite(v) else "—" for v in col]  # counts: 8, not 8.00
        elif pd.api.types.is_numeric_dtype(col) and (unit is not None or pd.api.types.is_float_dtype(col)):
            out[header] = [human(v, unit or "") if v is not None else "—" for v in col]
        elif col.dtype == object and unit is not None:
            out[header] = [human(v, unit) if isinstance(v, (int, float)) else ("—" if v is None else v) for v in col]
        else:
            out[header] = col
    return pd.DataFrame(out)


def exact(value, unit: str) -> str:
    """The exact figure (tooltips, downloads): every digit of a count, 6 significant digits otherwise."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return str(value)
    body = f"{int(v):,}" if v.is_integer() and abs(v) < 1e18 else f"{v:,.6g}"
    extra = f" = {v / 2**30:,.4g} GiB" if unit == "B" and abs(v) >= 2**20 else ""
    return f"{body} {unit}{extra}".strip()


_GPU = re.compile(r"\bGPU(s?)\b")


def chip_words(result: Result | None):
    """A function that puts the device word of ``result``'s hardware into engine text: the engine writes 'GPU'
    (labels, units, notes); a TPU is a 'chip' (Google's word). Identity for GPUs and hardware-free results."""
    name = (result.data.get("hardware") if result is not None and isinstance(result.data, dict) else None)
    tpu = st.session_state.get("_llmcalc_device_word") == "chip"  # the page's hardware, where the result names none
    if isinstance(name, str):
        from ..core.catalogue import load_hardware

        try:
            tpu = state.device_word(load_hardware(name)) == "chip"
        except LlmcalcError:  # an uploaded hardware file: its own name, not in the catalogue
            tpu = name.lower().startswith("tpu")
    return (lambda text: _GPU.sub(lambda m: "chip" + m.group(1), text)) if tpu else (lambda text: text)


def device_words(hardware):
    """:func:`chip_words` for a scenario's hardware: engine text about a TPU says 'chip' (the A vs B page's
    messages, where the two sides may differ)."""
    tpu = state.device_word(hardware) == "chip"
    return (lambda text: _GPU.sub(lambda m: "chip" + m.group(1), text)) if tpu else (lambda text: text)


def metric(where, f: Figure, label: str | None = None, words=None) -> None:
    """One st.metric: the human text, and in its tooltip the exact figure and its derivation."""
    w = words or (lambda text: text)
    where.metric(w(label or f.name), w(human(f.value, f.unit)),
                 help=w(f"exact: {exact(f.value, f.unit)}\n\n```\n{f.explain()}\n```"))


# ---------------------------------------------------------------- page furniture

CSS = """
<style>
/* metrics wrap instead of truncating ("168 MB (160 …"): values and labels may take two lines */
[data-testid="stMetricValue"], [data-testid="stMetricValue"] > div { white-space: normal !important;
  overflow: visible !important; text-overflow: clip !important; font-size: 1.75rem; line-height: 1.2; }
[data-testid="stMetricLabel"], [data-testid="stMetricLabel"] * { white-space: normal !important;
  overflow: visible !important; text-overflow: clip !important; }
.llmcalc-answer { font-size: 1.15rem; line-height: 1.4; padding: .5rem .8rem; margin: 0 0 .25rem 0;
  border-left: .3rem solid #ff4b4b; background: rgba(128,128,128,.08); border-radius: .3rem; }
.llmcalc-answer .q { opacity: .75; }
.llmcalc-better { color: #0a8a3a; font-weight: 600; }
.llmcalc-worse { color: #c62828; font-weight: 600; }
/* printing: st.dataframe draws on a canvas, which a printout cuts at the frame's width and height; each table
   has a plain-HTML twin (panels.dataframe) that only print shows. Inputs' furniture and the sidebar are left out. */
[data-testid="stElementContainer"]:has(.llmcalc-print) { display: none; }
.llmcalc-print table { border-collapse: collapse; width: 100%; font-size: .72rem; line-height: 1.25; }
.llmcalc-print th, .llmcalc-print td { border: 1px solid #bbb; padding: .1rem .3rem; text-align: left;
  vertical-align: top; overflow-wrap: break-word; }
.llmcalc-print thead { display: table-header-group; }
.llmcalc-print tr { break-inside: avoid; }
@media print {
  [data-testid="stElementContainer"]:has(.llmcalc-print) { display: block; }
  [data-testid="stElementContainer"]:has([data-testid="stDataFrame"]) { display: none; }
  [data-testid="stSidebar"], [data-testid="stHeader"], [data-testid="stToolbar"], [data-testid="stDecoration"],
  [data-testid="stDownloadButton"], [data-testid="stFileUploader"], [data-testid="stElementToolbar"] {
    display: none !important; }
  .block-container { max-width: 100% !important; padding: 0 !important; }
}
/* phones: less padding above the page so the answer line shows on the first screen */
@media (max-width: 640px) { .block-container { padding-top: 3rem !important; } }
@media (min-width: 641px) { .block-container { padding-top: 2.5rem !important; } }
</style>
"""


def style() -> None:
    """The page's CSS. st.html, not st.markdown(unsafe_allow_html=True): a style-only st.html takes no place on
    the page, and HTML markdown makes the browser fetch and run a markdown-to-HTML plugin (rehype-raw) before
    it draws (issue #11: first paint)."""
    st.html(CSS)


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def answer(question: str, text: str, where=None) -> None:
    """The page's question and its answer in one line (``where``: a placeholder drawn above the inputs)."""
    st.session_state["_llmcalc_answer"] = f"{question} {text}"
    # st.html: drawn as soon as it arrives (HTML markdown would wait for the browser's rehype-raw plugin)
    (where or st).html(f'<div class="llmcalc-answer" data-testid="llmcalc-answer"><span class="q">'
                       f'{_esc(question)}</span> <b>{_esc(text)}</b></div>')


# ---------------------------------------------------------------- inputs with their own message slot

_FIELDS = "_llmcalc_fields"
_SECTIONS = "_llmcalc_sections"
_RESULTS = "_llmcalc_results"


def start_run() -> None:
    st.session_state[_RESULTS] = []
    st.session_state[_FIELDS] = {}
    st.session_state[_SECTIONS] = {}
    st.session_state["_llmcalc_answer"] = ""
    st.session_state["_llmcalc_warned"] = set()
    st.session_state["_llmcalc_memo"] = {}


def memo(fn, *args):
    """``fn(*args)`` once per run: a page's answer line and its sections share one calculator call.
    Arguments are specs and the state dict; the key is their repr (specs are frozen pydantic models)."""
    cache = st.session_state.setdefault("_llmcalc_memo", {})
    key = (fn.__module__, fn.__name__, repr(args))
    if key not in cache:
        cache[key] = fn(*args)
    return cache[key]


def field(name: str, draw, label: str, where=None, **kwargs):
    """Draw the input for state ``name`` and an empty slot under it for messages about it.

    Number inputs get the URL field's bounds, so what can be typed is what a link may carry.
    """
    f = state.FIELDS[name]
    if getattr(draw, "__name__", "") == "number_input":
        kind = type(f.default)
        if f.lo is not None:
            kwargs.setdefault("min_value", kind(f.lo))
        if f.hi is not None:
            kwargs.setdefault("max_value", kind(f.hi))
    where = where or st
    value = state.widget(name, draw, label=label, **kwargs)
    st.session_state.setdefault(_FIELDS, {})[name] = {"label": label, "slot": where.empty()}
    return value


# CLI option names in calculator messages -> the state field a page draws for it
FLAG_FIELDS = {"--tp": "tp", "--pp": "pp", "--dp": "dp", "--ep": "ep", "--cp": "cp", "--micro-batch": "mbs",
               "--global-batch": "gbs", "--seq": "seq", "--zero": "zero", "--recompute": "recompute",
               "--tokens": "tokens", "--batch": "batch", "--prompt": "prompt", "--output": "gen",
               "--kv-dtype": "kv_dtype", "--weights": "dtype", "--activations": "dtype", "--qps": "rate",
               "--ttft": "ttft_slo", "--tpot": "tpot_slo", "--price": "price", "--context": "prompt",
               # the plan and RL pages' own inputs (a page draws one of the candidates)
               "--gpus": ("plan_gpus", "rl_gpus"), "--objective": "objective", "--prompts": "rl_prompts",
               "--samples": "rl_samples", "--prompt-len": "rl_prompt", "--response-len": "rl_mean",
               "--max-response": "rl_cap", "--staleness": "rl_eta", "--algo": "rl_algo", "--rollout-tp": "rl_rtp",
               "--rollout-gpus": "rl_split", "--lora-rank": "lora_rank", "--lora-targets": "lora_targets",
               "--base-bits": "base_bits"}


def _field_for(flag: str, suffix: str = "") -> str | None:
    """The drawn field a CLI option stands for on this page (None if the page draws none of them)."""
    drawn = st.session_state.get(_FIELDS, {})
    names = FLAG_FIELDS.get(flag) or ()
    for name in (names,) if isinstance(names, str) else names:
        if name + suffix in drawn:
            return name + suffix
    return None


_FLAG = re.compile(r"--[a-z][a-z-]*")


def _blame(msg: str) -> str | None:
    """The field a calculator message is about: the first CLI option it names, or the precision for a
    missing peak (``H100 has no int4 peak``)."""
    drawn = st.session_state.get(_FIELDS, {})
    for flag in _FLAG.findall(msg):
        name = _field_for(flag)
        if name:
            return name
    if re.search(r"has no \w+ peak", msg) and "dtype" in drawn:
        return "dtype"
    return None


def in_page_words(msg: str, suffix: str = "") -> str:
    """A calculator message with its CLI option names replaced by the labels this page draws
    (``suffix='_b'``: scenario B's inputs on the A vs B page); an option the page does not draw is named as the
    CLI's (the RL page has no trainer inputs, yet its advice read "raise --train-tp" as if it had)."""
    drawn = st.session_state.get(_FIELDS, {})

    def sub(m: re.Match) -> str:
        name = _field_for(m[0], suffix)
        return f"“{drawn[name]['label']}”" if name else f"the CLI's {m[0]}"

    return _FLAG.sub(sub, msg)


def _candidates(name: str, current) -> list:
    f = state.FIELDS[name]
    if f.choices:
        return list(f.choices)
    if isinstance(f.default, bool) or not isinstance(f.default, (int, float)):
        return []
    lo, hi = f.lo or 0, f.hi or 1 << 20
    powers = [2**i for i in range(0, 21) if lo <= 2**i <= hi]
    near = [int(current) + d for d in (-2, -1, 1, 2) if lo <= int(current) + d <= hi]
    return sorted(set(powers[:12] + near + ([int(lo)] if isinstance(f.default, int) else [])))


def _works(name: str, s: dict, compute) -> list:
    """The values of ``name`` for which ``compute`` succeeds, everything else unchanged (at most 8)."""
    ok = []
    for c in _candidates(name, s[name]):
        if c == s[name]:
            continue
        try:
            compute({**s, name: c})
        except LlmcalcError:
            continue
        except Exception:  # noqa: BLE001 - a probe must never break the page; the message stands alone
            continue
        ok.append(c)
        if len(ok) >= 8:
            break
    return ok


def _limits(name: str) -> str:
    f = state.FIELDS[name]
    if f.choices:
        return "choices: " + ", ".join(map(str, f.choices))
    if f.lo is not None or f.hi is not None:
        return f"range {f.show(f.lo)} to {f.show(f.hi)}"
    return ""


@contextmanager
def section(title: str | None, s: dict | None = None, probe=None, key: str | None = None):
    """A part of the page that computes on its own: a user error inside it stops only this part.

    The message goes beside the input it is about (in this page's words, with the values that work here,
    found by re-running ``probe(state)`` with other values of that input); the section says where to look.
    """
    key = key or title or "section"
    box = st.container()
    sections = st.session_state.setdefault(_SECTIONS, {})
    sections[key] = "ok"
    with box:
        if title:
            st.subheader(title)
        try:
            yield box
        except LlmcalcError as e:
            sections[key] = "error"
            msg = in_page_words(str(e))
            name = _blame(str(e))
            if name is None:
                st.error(msg)
                return
            slot = st.session_state[_FIELDS][name]
            label = slot["label"]
            hint = ""
            if probe is not None and s is not None and _candidates(name, s[name]):
                ok = _works(name, s, probe)
                hint = ("; values that work here: " + ", ".join(state.FIELDS[name].show(v) for v in ok)
                        if ok else f"; no nearby value works ({_limits(name)})")
            elif _limits(name):
                hint = f" ({_limits(name)})"
            text = msg if f"“{label}”" in msg else f"{label}: {msg}"
            slot["slot"].error(text + hint)
            st.error(f"Not computed: see the message under “{label}”.")


def answer_or_pointer(compute, where) -> None:
    """The answer line from ``compute() -> (question, answer)``; when an input is wrong, the line says where."""
    try:
        q, a = compute()
    except LlmcalcError as e:
        name = _blame(str(e))
        label = st.session_state[_FIELDS][name]["label"] if name else None
        answer("No answer yet:", f"fix “{label}” (message below it)" if label else in_page_words(str(e)),
               where=where)
        return
    answer(q, a, where=where)


def section_status() -> dict[str, str]:
    return dict(st.session_state.get(_SECTIONS, {}))


# ---------------------------------------------------------------- results


def figure_rows(result: Result) -> pd.DataFrame:
    """One row per scalar figure: label, human value, exact value, unit (array figures are left to charts)."""
    rows = [{"figure": f.name, "value": human(f.value, f.unit), "exact": exact(f.value, f.unit),
             "SI value": float(f.value), "unit": f.unit}
            for f in result.figures if np.ndim(f.value) == 0]
    return pd.DataFrame(rows, columns=["figure", "value", "exact", "SI value", "unit"])


def warn_once(text: str) -> None:
    """st.warning, once per run: the same warning from two results of one page is shown once."""
    shown = st.session_state.setdefault("_llmcalc_warned", set())
    if text not in shown:
        st.warning(text)
        shown.add(text)


def notes(result: Result) -> None:
    """Every warning and assumption the calculator returned: warnings stand out, the rest are listed."""
    w = chip_words(result)
    warn = [a for a in result.assumptions if a.split(":")[0].isupper()]  # WARNING: …, OVERLOADED: …
    for a in warn:  # in the page's words, as the messages under inputs (the RL page showed "--rollout-gpus")
        warn_once(in_page_words(w(a)))
    rest = [a for a in result.assumptions if a not in warn]
    if rest:
        with st.expander(w(f"assumptions of “{result.title}” ({len(rest)})")):
            st.markdown("\n".join(f"- {_esc(w(a))}" for a in rest))


def show_result(result: Result, key: str, metrics: tuple[str, ...] = (), table: bool = True,
                per_row: int = 4) -> None:
    """Headline metrics, warnings and assumptions, the figure table, and the derivation panel.

    A metric the result does not carry (a cost without a price: 13 of 16 accelerators have none) is left out;
    the result's assumptions say why."""
    metrics = tuple(k for k in metrics if k in result.keys())
    for start in range(0, len(metrics), per_row):
        row = metrics[start:start + per_row]
        for col, k in zip(st.columns(per_row), row, strict=False):
            metric(col, result[k], words=chip_words(result))
    notes(result)
    if table:
        w = chip_words(result)
        rows = figure_rows(result)
        for c in ("figure", "value", "exact", "unit"):
            rows[c] = rows[c].map(w)
        with st.expander(w(f"all figures of “{result.title}”"), expanded=not metrics):
            dataframe(rows, hide_index=True, width="stretch",
                      column_config={"SI value": st.column_config.NumberColumn(format="%.6g")})
    explain_panel(result, key)
    collect(result)


def explain_panel(result: Result, key: str) -> None:
    """Every figure's derivation: the same text as ``--explain`` on the command line, drawn when the user opens
    the panel (see :func:`_formula`)."""
    w = chip_words(result)
    _formula(w(f"formula: how each figure of “{result.title}” is derived"), result, w, key)


@st.fragment
def _formula(label: str, result: Result, words, key: str) -> None:
    """A formula panel whose code block is drawn only while it is open (issue #11: first paint).

    A closed panel holds no element; an open one draws ``st.code``, whose syntax highlighter is the largest
    script a page makes the browser load and run (~1.5 MB). Opening re-runs this fragment only (Streamlit
    re-calls it with the same arguments), not the page; the open state is kept under ``formula_<key>``."""
    box = st.expander(label, key=f"formula_{key}", on_change="rerun")
    with box:
        if box.open:
            st.code(words(result.explain()), language=None)


def _cell(v) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "—"
    if isinstance(v, (bool, np.bool_)):
        return "yes" if v else "no"
    if isinstance(v, (int, np.integer)):
        return f"{int(v):,}"
    if isinstance(v, (float, np.floating)):
        return f"{int(v):,}" if float(v).is_integer() and abs(v) < 1e15 else f"{float(v):.4g}"
    return str(v)


def print_table(df) -> str:
    """Every row and column of ``df`` (a DataFrame, a Styler or a list of row dicts) as a plain HTML table that
    only printing shows (see CSS): the printout's text, not a canvas cut at the frame."""
    data = getattr(df, "data", df)  # a Styler's frame
    data = data if isinstance(data, pd.DataFrame) else pd.DataFrame(data)
    head = "".join(f"<th>{_esc(str(c))}</th>" for c in data.columns)
    body = "".join("<tr>" + "".join(f"<td>{_esc(_cell(v))}</td>" for v in row) + "</tr>"
                   for row in data.itertuples(index=False, name=None))
    return f'<div class="llmcalc-print"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def dataframe(df, where=None, **kwargs) -> None:
    """``st.dataframe(df, **kwargs)`` for the screen and its :func:`print_table` twin for printing (user test: a
    printed plan showed 16 of its 20 layouts and 7 of 11 columns, the canvas cut at the frame)."""
    where = where or st
    where.dataframe(df, **kwargs)
    where.html(print_table(df))


def table_height(rows: int, cap: int = 600) -> int:
    """Pixels for a dataframe showing every row (up to ``cap``), instead of Streamlit's 10-row default."""
    return min(cap, 35 * rows + 40)


# ---------------------------------------------------------------- downloads


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
    """The scenario (inputs, its link, and every Result drawn, exact SI values) as JSON and as YAML text."""
    import yaml

    payload = {"scenario": state, "url_query": url_query, "results": [r.as_dict() for r in results]}
    text = json.dumps(payload, indent=2, default=_json_default)
    return text, yaml.safe_dump(json.loads(text), sort_keys=False, width=110)


def scenario_downloads(state: dict, url_query: str, where=st) -> None:
    """The two scenario files, written when the user clicks (Streamlit calls ``data`` then, on its own thread):
    serialising every Result of the page on each run cost a re-render up to ~0.1 s (issue #11). The closures
    hold this run's state and Results, so a click downloads the view it was made on."""
    state, results = dict(state), list(st.session_state.get(_RESULTS, []))
    where.download_button("scenario as JSON", lambda: scenario_texts(state, url_query, results)[0],
                          file_name="llmcalc-scenario.json", mime="application/json", key="dl_json")
    where.download_button("scenario as YAML", lambda: scenario_texts(state, url_query, results)[1],
                          file_name="llmcalc-scenario.yaml", mime="application/x-yaml", key="dl_yaml")


def csv_download(df: pd.DataFrame, name: str, key: str) -> None:
    st.download_button(f"download {name} as CSV", df.to_csv(index=False), file_name=f"llmcalc-{name}.csv",
                       mime="text/csv", key=key)
