"""RL page: one RL post-training step, synchronous vs asynchronous (llmcalc.rl.step.rl_step).

Timelines of sync colocated and fully async one above the other (rows: rollout pool, trainer; bars: generate,
score, log-probs, train, sync; gaps are idle), the regimes' table, and throughput against the rollout/trainer
split and against the staleness bound η. The page only draws what ``rl_step`` returns.
"""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from . import panels

PHASES = ["generate", "score", "log-probs", "train", "sync"]
ETAS = (0, 1, 2, 4, 8, None)


def _inputs() -> dict:
    c = st.columns(4)
    gpus = c[0].number_input("GPUs (total)", min_value=2, value=64, step=8, key="rl_gpus")
    prompts = c[1].number_input("prompts per step (P)", min_value=1, value=512, step=64, key="rl_prompts")
    samples = c[2].number_input("samples per prompt (G)", min_value=1, value=16, step=1, key="rl_samples")
    prompt_len = c[3].number_input("prompt tokens", min_value=1, value=512, step=128, key="rl_prompt")
    c = st.columns(4)
    mean = c[0].number_input("mean response tokens", min_value=1, value=3000, step=500, key="rl_mean")
    cv = c[1].number_input("response cv (tail weight)", min_value=0.0, value=1.0, step=0.1, format="%.2f",
                           key="rl_cv")
    cap = c[2].number_input("max response tokens", min_value=1, value=8192, step=1024, key="rl_cap")
    eta = c[3].selectbox("staleness η", options=["0", "1", "2", "4", "8", "inf"], index=2, key="rl_eta")
    c = st.columns(4)
    algo = c[0].selectbox("algorithm", options=["grpo", "ppo"], key="rl_algo")
    rtp = c[1].number_input("rollout engine TP", min_value=1, value=1, step=1, key="rl_rtp")
    split = c[2].number_input("rollout GPUs (0 = best split)", min_value=0, value=0, step=8, key="rl_split")
    partial = c[3].toggle("interruptible rollouts", value=True, key="rl_partial")
    return dict(gpus=int(gpus), prompts=int(prompts), samples=int(samples), prompt_len=int(prompt_len),
                mean=float(mean), cv=float(cv), cap=float(cap), eta=None if eta == "inf" else int(eta), algo=algo,
                rollout_tp=int(rtp), rollout_gpus=int(split) or None, partial=bool(partial))


def _run(model, hardware, x: dict, **over):
    from ..rl.lengths import lognormal
    from ..rl.step import rl_step

    kw = dict(gpus=x["gpus"], prompts=x["prompts"], samples=x["samples"], prompt_len=x["prompt_len"],
              response=lognormal(x["mean"], x["cv"], x["cap"]), algo=x["algo"], staleness=x["eta"],
              rollout_gpus=x["rollout_gpus"], rollout_tp=x["rollout_tp"], partial=x["partial"])
    kw.update(over)
    return rl_step(model, hardware, **kw)


def timeline_chart(bars: list[dict], title: str) -> alt.Chart:
    df = pd.DataFrame(bars)
    return alt.Chart(df, title=title).mark_bar().encode(
        x=alt.X("start_s:Q", title="seconds (two steady-state steps)"), x2="end_s:Q",
        y=alt.Y("row:N", title=None, sort=["rollout pool", "trainer"]),
        color=alt.Color("phase:N", sort=PHASES, scale=alt.Scale(domain=PHASES)),
        tooltip=["row", "phase", alt.Tooltip("start_s:Q", format=",.1f"), alt.Tooltip("end_s:Q", format=",.1f")],
    ).properties(height=90)


def render(model, hardware, s: dict) -> None:
    st.header(f"RL post-training: {model.display_name} on {hardware.display_name}")
    st.caption("One GRPO/PPO step: rollouts (continuous batching, drained to the longest sample) → score → "
               "log-probs → policy update → weight sync, synchronous or asynchronous. These inputs are local to "
               "this page (not in the link).")
    x = _inputs()
    r = _run(model, hardware, x)
    d = r.data
    for a in r.assumptions:
        st.caption("· " + a)
    rows = []
    for name, g in d["regimes"].items():
        b = g["breakdown_s"]
        rows.append({"regime": name.replace("_", " "), "step (s)": g["step_s"], "generate (s)": b["generate_s"],
                     "log-probs (s)": b["logprob_s"], "train (s)": b["train_s"] + b["critic_s"],
                     "sync (s)": b["sync_s"], "trained tokens/s": g["trained_tokens_per_s"],
                     "generated tokens/s": g["generated_tokens_per_s"],
                     "rollout busy": g["rollout_utilisation"], "trainer busy": g["trainer_utilisation"],
                     "staleness mean": g["staleness_mean"], "staleness max": g["staleness_max"],
                     "speedup vs sync": d["speedup"].get(name, 1.0 if name == "sync_colocated" else None)})
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
    st.caption(f"split: {d['split']['rollout_gpus']} rollout + {d['split']['trainer_gpus']} trainer GPUs"
               + (" (best by the async throughput bound)" if d["split"]["searched"] else "")
               + f"; expected longest response {d['response_expected_max']:,.0f} tokens (Blom)")
    charts = [timeline_chart(d["timeline"][n], n.replace("_", " ")) for n in ("sync_colocated", "fully_async")
              if n in d["timeline"]]
    if charts:
        st.altair_chart(alt.vconcat(*charts).resolve_scale(x="shared"), width="stretch")
    c1, c2 = st.columns(2)
    if d["split"]["searched"]:
        tokens = (d["response_mean"] + d["prompt_len"]) * d["batch"]
        df = pd.DataFrame({"rollout GPUs": d["split"]["candidates"],
                           "trained tokens/s (bound)": tokens / d["split"]["bound_s"]})
        c1.altair_chart(alt.Chart(df, title="async throughput against the split").mark_line(point=True).encode(
            x="rollout GPUs:Q", y="trained tokens/s (bound):Q"), width="stretch")
    k = d["split"]["rollout_gpus"]
    eta_rows = []
    for eta in ETAS:
        g = _run(model, hardware, x, staleness=eta, rollout_gpus=k, regime="async").data["regimes"]["fully_async"]
        eta_rows.append({"η": "inf" if eta is None else str(eta), "trained tokens/s": g["trained_tokens_per_s"],
                         "staleness mean": g["staleness_mean"]})
    df = pd.DataFrame(eta_rows)
    c2.altair_chart(alt.Chart(df, title=f"fully async throughput against η ({k} rollout GPUs)").mark_bar().encode(
        x=alt.X("η:N", sort=None), y="trained tokens/s:Q", tooltip=["η", "trained tokens/s", "staleness mean"]),
        width="stretch")
    panels.explain_panel(r, "rl")
    panels.collect(r)
