"""RL page: one RL post-training step, synchronous vs asynchronous (llmcalc.rl.step.rl_step).

Timelines of sync colocated and fully async one above the other (rows: rollout pool, trainer; bars: generate,
score, log-probs, train, sync; gaps are idle), the regimes' table, and throughput against the rollout/trainer
split and against the staleness bound η. The page only draws what ``rl_step`` returns.
"""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from . import panels, state
from .charts import category_axis, fast, title_lines

PHASES = ["generate", "score", "log-probs", "train", "sync"]
# the regimes table's columns as people read them: header and unit for panels.human
RL_UNITS = {"step (s)": ("step", "s"), "generate (s)": ("generate", "s"), "log-probs (s)": ("log-probs", "s"),
            "train (s)": ("train", "s"), "sync (s)": ("sync", "s"), "trained tokens/s": ("trained tokens/s", "token/s"),
            "generated tokens/s": ("generated tokens/s", "token/s"), "rollout busy": ("rollout busy", "%"),
            "trainer busy": ("trainer busy", "%"), "rollout idle (s)": ("rollout idle", "s"),
            "trainer idle (s)": ("trainer idle", "s"), "staleness mean": ("staleness mean (steps)", ""),
            "staleness max": ("staleness max (steps)", ""), "speedup vs sync": ("speed-up vs sync", "×")}
ETAS = (0, 1, 2, 4, 8, None)


def _inputs(dev: str = "GPU") -> dict:
    specs = (("rl_gpus", st.number_input, dict(label=f"{dev}s (total)", step=8)),
             ("rl_prompts", st.number_input, dict(label="prompts per step (P)", step=64)),
             ("rl_samples", st.number_input, dict(label="samples per prompt (G)", step=1)),
             ("rl_prompt", st.number_input, dict(label="prompt tokens", step=128)),
             ("rl_mean", st.number_input, dict(label="mean response tokens", step=500)),
             ("rl_cv", st.number_input, dict(label="response cv (tail weight)", step=0.1, format="%.3g")),
             ("rl_cap", st.number_input, dict(label="max response tokens", step=1024)),
             ("rl_eta", st.selectbox, dict(label="staleness η", options=["0", "1", "2", "4", "8", "inf"])),
             ("rl_algo", st.selectbox, dict(label="algorithm", options=["grpo", "ppo"])),
             ("rl_rtp", st.number_input, dict(label="rollout engine TP", step=1)),
             ("rl_split", st.number_input, dict(label=f"rollout {dev}s (0 = best split)", step=8)),
             ("rl_partial", st.toggle, dict(label="interruptible rollouts")))
    c = st.columns(4)
    for i, (name, draw, kw) in enumerate(specs):
        with c[i % 4]:
            panels.field(name, draw, **kw)
    return params(state.store())


def params(s: dict) -> dict:
    """rl_step's inputs from the page's URL state."""
    return dict(gpus=int(s["rl_gpus"]), prompts=int(s["rl_prompts"]), samples=int(s["rl_samples"]),
                prompt_len=int(s["rl_prompt"]), mean=float(s["rl_mean"]), cv=float(s["rl_cv"]),
                cap=float(s["rl_cap"]), eta=None if s["rl_eta"] == "inf" else int(s["rl_eta"]), algo=s["rl_algo"],
                rollout_tp=int(s["rl_rtp"]), rollout_gpus=int(s["rl_split"]) or None,
                partial=bool(s["rl_partial"]))


def answer(model, hardware, s: dict, run=None) -> tuple[str, str]:
    x = params(s)
    dev = state.device_word(hardware)
    r = (run or _run)(model, hardware, x)
    d = r.data
    best = d["best_regime"]
    step = d["regimes"][best]["step_s"]
    q = f"Synchronous or asynchronous RL for {model.display_name} on {x['gpus']:,} {dev}s?"
    speed = None if best == "sync_colocated" else d["speedup"].get(best)  # the base needs no "1.00×" beside it
    g = d["regimes"][best]  # the question is also how to split: a split regime's answer says its split
    where = ("" if best == "sync_colocated" else
             f" on {g['rollout_gpus']:,} rollout + {g['trainer_gpus']:,} trainer {dev}s")
    text = (f"{best.replace('_', ' ')}{where}: {panels.human(step, 's')} per step"
            + (f", {float(speed):.2f}× the synchronous colocated step rate" if speed is not None else ""))
    return q, text


def _run(model, hardware, x: dict, **over):
    from ..rl.lengths import lognormal
    from ..rl.step import rl_step

    kw = dict(gpus=x["gpus"], prompts=x["prompts"], samples=x["samples"], prompt_len=x["prompt_len"],
              response=lognormal(x["mean"], x["cv"], x["cap"]), algo=x["algo"], staleness=x["eta"],
              rollout_gpus=x["rollout_gpus"], rollout_tp=x["rollout_tp"], partial=x["partial"])
    kw.update(over)
    return rl_step(model, hardware, **kw)


@fast
def timeline_chart(bars: list[dict], title) -> alt.Chart:
    df = pd.DataFrame(bars)
    return alt.Chart(df, title=title_lines(title)).mark_bar().encode(
        x=alt.X("start_s:Q", title="seconds (two steady-state steps)"), x2=alt.X2("end_s:Q"),
        y=alt.Y("row:N", title=None, sort=["rollout pool", "trainer"], axis=category_axis()),
        # legend below: beside the bars it took the width a phone's plot needs (and a two-line title pushed it
        # off the edge); one row on a wide screen, three columns on a narrow one
        color=alt.Color("phase:N", sort=PHASES, scale=alt.Scale(domain=PHASES), legend=alt.Legend(
            orient="bottom", columns=alt.ExprRef(f"containerSize()[0] < 600 ? 3 : {len(PHASES)}"))),
        tooltip=[alt.Tooltip("row"), alt.Tooltip("phase"), alt.Tooltip("start_s:Q", format=",.1f"),
                 alt.Tooltip("end_s:Q", format=",.1f")],
    ).properties(height=90)


def render(model, hardware, s: dict) -> None:
    st.header(f"RL post-training: {model.display_name} on {hardware.display_name}")
    top = st.empty()
    st.caption("One GRPO/PPO step: rollouts (continuous batching, drained to the longest sample) → score → "
               "log-probs → policy update → weight sync, synchronous or asynchronous.")
    x = _inputs(state.device_word(hardware))
    run = lambda *a: panels.memo(_run, *a)  # noqa: E731 - one rl_step call for the answer and the sections
    panels.answer_or_pointer(lambda: answer(model, hardware, s, run), top)
    # the probe for "values that work here" runs rl_step's checks only (no simulation): ≤ 1 s for every candidate
    with panels.section("Regimes", s, lambda y: _run(model, hardware, params(y), check_only=True)):
        regimes(model, hardware, x, run(model, hardware, x))


def eta_chart(model, hardware, x: dict, k: int, dev: str) -> None:
    eta_rows = []
    for eta in ETAS:
        g = _run(model, hardware, x, staleness=eta, rollout_gpus=k, regime="async").data["regimes"]["fully_async"]
        eta_rows.append({"η": "inf" if eta is None else str(eta), "trained tokens/s": g["trained_tokens_per_s"],
                         "staleness mean": g["staleness_mean"]})
    df = pd.DataFrame(eta_rows)
    st.altair_chart(eta_bars(df, f"fully async throughput against η ({k} rollout {dev}s)"), width="stretch")


@fast
def eta_bars(df: pd.DataFrame, title: str) -> alt.Chart:
    return alt.Chart(df, title=title_lines(title)).mark_bar().encode(
        # labels of 1-3 characters read level (the theme turned "0 1 2 4 8 inf" on their side)
        x=alt.X("η:N", sort=None, axis=category_axis(labelAngle=0)), y=alt.Y("trained tokens/s:Q"),
        tooltip=[alt.Tooltip(c) for c in ("η", "trained tokens/s", "staleness mean")])


def timeline_title(name: str, g: dict) -> str:
    """A timeline's title states the step its two steps add up to and each pool's idle (the gaps) per step, so
    the chart can be read against the table (timeline_chart wraps it into short lines)."""
    return (f"{name.replace('_', ' ')}: {panels.human(g['step_s'], 's')} per step; idle per step: rollout "
            f"{panels.human(g['rollout_idle_s'], 's')}, trainer {panels.human(g['trainer_idle_s'], 's')}")


@fast
def timelines(charts: list[alt.Chart]) -> alt.VConcatChart:
    return alt.vconcat(*charts).resolve_scale(x="shared")


@fast
def split_line(df: pd.DataFrame, x: str, y: str, chosen: int) -> alt.LayerChart:
    """The bound against the split, and a rule at the split the step chose: the fastest of the bound's best three
    once simulated, not always the bound's peak (Mixtral-8x7B, rollout TP 2: peak 20, chosen 24)."""
    line = alt.Chart(df).mark_line(point=True).encode(
        # whole devices: Vega's default ticks read "2.0 2.5 3.0 … rollout GPUs" for candidates 2, 4, 6, 8
        x=alt.X(f"{x}:Q", axis=alt.Axis(tickMinStep=1, format="d")), y=alt.Y(f"{y}:Q"))
    rule = alt.Chart(pd.DataFrame({x: [chosen]})).mark_rule(strokeDash=[4, 3], color="grey").encode(
        x=alt.X(f"{x}:Q"), tooltip=[alt.Tooltip(f"{x}:Q", title="chosen split")])
    return alt.layer(line, rule, title=title_lines(f"async throughput against the split (dashed: chosen, {chosen})"))


def staleness_in_one(table: pd.DataFrame) -> pd.DataFrame:
    """Mean and max staleness in one column, "1.66 / 4", as the CLI's "lag mean/max": with each pool's idle
    seconds, 15 columns ran past an A4 page's width in print (the CSV keeps both figures)."""
    mean, top = RL_UNITS["staleness mean"][0], RL_UNITS["staleness max"][0]
    both = table[mean].astype(str) + " / " + table[top].astype(str)
    out = table.drop(columns=[top]).rename(columns={mean: "staleness mean / max (steps)"})
    out["staleness mean / max (steps)"] = both
    return out


def regimes(model, hardware, x: dict, r) -> None:
    d = r.data
    dev = state.device_word(hardware)
    panels.notes(r)
    rows = []
    for name, g in d["regimes"].items():
        b = g["breakdown_s"]
        rows.append({"regime": name.replace("_", " "), "step (s)": g["step_s"], "generate (s)": b["generate_s"],
                     "log-probs (s)": b["logprob_s"], "train (s)": b["train_s"] + b["critic_s"],
                     "sync (s)": b["sync_s"], "trained tokens/s": g["trained_tokens_per_s"],
                     "generated tokens/s": g["generated_tokens_per_s"],
                     "rollout busy": g["rollout_utilisation"], "trainer busy": g["trainer_utilisation"],
                     # per step, as the issue asks beside utilisation (the seconds the timelines' gaps show)
                     "rollout idle (s)": g["rollout_idle_s"], "trainer idle (s)": g["trainer_idle_s"],
                     "staleness mean": g["staleness_mean"], "staleness max": g["staleness_max"],
                     "speedup vs sync": d["speedup"].get(name)})
    panels.dataframe(staleness_in_one(panels.people_table(pd.DataFrame(rows), RL_UNITS)), hide_index=True,
                     width="stretch")
    panels.csv_download(pd.DataFrame(rows), "rl-regimes", "dl_rl_regimes")  # the exact SI values
    k = d["split"]["rollout_gpus"]
    split = (f"split: {k} rollout + {d['split']['trainer_gpus']} trainer {dev}s"
             + (" (of the three splits with the highest async throughput bound, the fastest simulated)"
                 if d["split"]["searched"] else "")) if k is not None else \
        f"no rollout/trainer split fits on these {dev}s (see the warning above): synchronous colocated only"
    # the mean the step uses (after the cap), which tokens/s are computed from, beside the longest
    st.caption(f"{split}; mean response {d['response_mean']:,.0f} tokens (after the cap), expected longest "
               f"{d['response_expected_max']:,.0f} tokens")
    charts = [timeline_chart(d["timeline"][n], timeline_title(n, d["regimes"][n]))
              for n in ("sync_colocated", "fully_async") if n in d["timeline"]]
    if charts:
        st.altair_chart(timelines(charts), width="stretch")
    c1, c2 = st.columns(2)
    if d["split"]["searched"] and d["split"]["bound_s"] is not None:  # None: no split fits (colocated only)
        tokens = (d["response_mean"] + d["prompt_len"]) * d["batch"]
        df = pd.DataFrame({f"rollout {dev}s": d["split"]["candidates"],
                           "trained tokens/s (bound)": tokens / d["split"]["bound_s"]})
        c1.altair_chart(split_line(df, f"rollout {dev}s", "trained tokens/s (bound)", k), width="stretch")
    if k is None:  # the η chart times the split regime
        panels.explain_panel(r, "rl")
        panels.collect(r)
        return
    # six more event simulations (0.2-1.4 s): computed only while the user has this expander open (lazy)
    box = c2.expander(f"fully async throughput against η ({k} rollout {dev}s)", key="rl_eta_open",
                      on_change="rerun")
    with box:
        if box.open:
            eta_chart(model, hardware, x, k, dev)
        else:
            st.caption("open to simulate the fully async regime at η = 0, 1, 2, 4, 8 and ∞")
    panels.explain_panel(r, "rl")
    panels.collect(r)
