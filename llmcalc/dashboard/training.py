"""Training page: one story. The parallel layout gives a step time and MFU; the training time and cost
follow from them (not from a separate MFU guess); memory, communication and Chinchilla sit beside it.

Each part is a :func:`panels.section`: a layout the model rejects stops the parts that need it, with
the message beside the input, and the rest of the page still renders.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from ..core.errors import LlmcalcError
from ..core.units import parse_count
from . import charts, panels, presets, state

DP_SWEEP = np.array([2**i for i in range(0, 16)])  # the days-vs-GPUs chart scales the layout's DP


def layout_inputs(dev: str = "GPU") -> None:
    c = st.columns(4)
    names = (("tp", "TP (tensor parallel)"), ("pp", "PP (pipeline stages)"), ("dp", "DP (data parallel)"),
             ("cp", "CP (context parallel)"), ("ep", "EP (expert parallel)"), ("mbs", "micro-batch (seqs)"),
             ("gbs", "global batch (seqs)"), ("seq", "sequence (tokens)"))
    for i, (name, label) in enumerate(names):
        with c[i % 4]:
            panels.field(name, st.number_input, label=label, step=1)
    c = st.columns(4)
    with c[0]:
        panels.field("zero", st.selectbox, label="ZeRO stage (over DP×CP)", options=[0, 1, 2, 3])
    with c[1]:
        panels.field("recompute", st.selectbox, label="activation recompute", options=["none", "selective", "full"])
    with c[2]:
        panels.field("sp", st.toggle, label="sequence parallel (with TP)")
    with c[3]:
        st.caption(f"{dev}s = TP·PP·DP·CP; EP lives inside DP (Megatron-Core)")


def lora_inputs() -> None:
    c = st.columns(3)
    with c[0]:
        panels.field("lora_rank", st.number_input, label="LoRA rank (0 = full training)", step=8)
    with c[1]:
        panels.field("lora_targets", st.text_input, label="LoRA targets (of q,k,v,o,gate,up,down)")
    with c[2]:
        panels.field("base_bits", st.selectbox, label="frozen base bits (4 = QLoRA NF4)", options=[16, 8, 4])


def lora(s: dict):
    """The LoRA adapters typed on the page, or None for full training (rank 0)."""
    from ..training.memory import LoRA

    if int(s["lora_rank"]) == 0:
        return None
    return LoRA(int(s["lora_rank"]), tuple(t.strip() for t in str(s["lora_targets"]).split(",") if t.strip()),
                int(s["base_bits"]))


def lora_words(s: dict) -> str:
    q = "QLoRA" if int(s["base_bits"]) == 4 else "LoRA"
    return f"{q} (rank {int(s['lora_rank'])}, {int(s['base_bits'])}-bit frozen base)"


NOT_FOR_LORA = ("Not computed for LoRA fine-tuning: the step model counts full-training work (weight gradients of "
                "every base matrix, their data-parallel reduction), which a LoRA step skips; only the memory below "
                "is modelled for adapters. Set the LoRA rank to 0 for full training.")


def make_layout(s: dict, **over):
    from ..training.layout import Layout

    kw = dict(tp=int(s["tp"]), pp=int(s["pp"]), dp=int(s["dp"]), ep=int(s["ep"]), cp=int(s["cp"]),
              sp=bool(s["sp"]), zero=int(s["zero"]))
    kw.update(over)
    return Layout(**kw)


def tokens(s: dict) -> float:
    """The training-token count typed on the page ('15T', '300B'); a user error names the input."""
    from ..core.checks import check_number

    try:
        t = parse_count(s["tokens"])
    except LlmcalcError as e:
        raise LlmcalcError(f"--tokens: {e}") from None
    return check_number(t, "--tokens")


def step_result(model, hardware, s: dict, layout=None):
    from ..training.step import training_step

    return training_step(model, hardware, layout or make_layout(s), global_batch=int(s["gbs"]),
                         micro_batch=int(s["mbs"]), seq=int(s["seq"]), recompute=s["recompute"], dtype=s["dtype"])


def time_and_cost(model, hardware, s: dict):
    """The step model's MFU on the layout's GPUs, over the token budget: days, GPU-hours, cost.
    MFU in the 6·N·D convention (Kaplan et al. 2020; PaLM App. B 'without attention'), as `llmcalc train`
    takes --mfu: with 6·N·D FLOPs per token the days are the step model's own (tokens / tokens per second),
    and this MFU never exceeds HFU (the attention-inclusive MFU can, with FlashAttention's causal skipping)."""
    from ..training.cost import training_cost

    st_ = step_result(model, hardware, s)
    price = float(s["price"]) or None
    r = training_cost(model, tokens=tokens(s), hardware=hardware, gpus=int(st_.data["gpus"]),
                      mfu=float(st_.data["mfu_6nd"]), dtype=s["dtype"], price_usd_per_hour=price)
    return st_, r


def answer(model, hardware, s: dict, tc=time_and_cost) -> tuple[str, str]:
    """The page's question and its one-line answer (pure: the per-pair test calls it for every pair).
    With LoRA adapters the question is whether the fine-tuning fits (the step model is full training)."""
    dev = state.device_word(hardware)
    if lora(s) is not None:
        r = memory_result(model, hardware, s)
        n = int(make_layout(s).gpus)
        q = (f"Does fine-tuning {model.display_name} with {lora_words(s)} fit on {n:,} {hardware.display_name} "
             f"{dev}{'s' * (n > 1)}?")
        need, usable = r.value("memory/total"), r.data["usable_bytes"]
        return q, (f"{'yes' if r.data['fits'] else 'no'}: {panels.human(need, 'B')} of "
                   f"{panels.human(usable, 'B')} usable per {dev}")
    q = f"How long does training {model.display_name} on {s['tokens']} tokens take?"
    st_, r = tc(model, hardware, s)
    n = int(st_.data["gpus"])
    text = (f"{panels.human(r.value('days'), 'days')} on {n:,} {hardware.display_name} {dev}{'s' * (n > 1)} "
            f"at {st_.data['mfu_6nd']:.1%} MFU (6·N·D)")
    if "cost" in r.keys():
        text += f", {panels.human(r.value('cost'), 'USD')}"
    if st_.data.get("fits") is False:
        text += f" — hypothetical: this layout does not fit in {dev} memory"
    return q, text


def render(model, hardware, s: dict) -> None:
    dev = state.device_word(hardware)
    st.header(f"Training: {model.display_name} on {hardware.display_name}")
    top = st.empty()
    presets.picker("training")
    c = st.columns(2)
    with c[0]:
        panels.field("tokens", st.text_input, label="training tokens (e.g. 15T, 300B)")
    with c[1]:
        panels.field("price", st.number_input, label=f"price (USD per {dev}-hour, 0 = catalogue)", step=0.5,
                     format="%.3g")
    st.markdown("**Parallel layout (one step)**")
    layout_inputs(dev)
    st.markdown("**Fine-tuning with LoRA adapters (Hu et al. 2021; QLoRA: Dettmers et al. 2023)**")
    lora_inputs()
    tc = lambda *a: panels.memo(time_and_cost, *a)  # noqa: E731 - one step + cost call for the whole page
    panels.answer_or_pointer(lambda: answer(model, hardware, s, tc), top)
    probe = lambda x: time_and_cost(model, hardware, x)  # noqa: E731 - re-run to find values that work
    full = int(s["lora_rank"]) == 0
    with panels.section("Time and cost (from the layout's step time and MFU)", s, probe):
        if full:
            time_cost(model, hardware, s, tc)
        else:
            st.info(NOT_FOR_LORA)
    with panels.section(f"Memory per {dev}", s, lambda x: memory_result(model, hardware, x)):
        memory(model, hardware, s)
    with panels.section("Step time and MFU", s, lambda x: step_result(model, hardware, x)):
        if full:
            r = panels.memo(step_result, model, hardware, s)
            if r.data.get("fits") is False:  # the memory verdict: never a plain MFU for a layout that cannot run
                st.error(r.title.split(" — Training step")[0])
            panels.show_result(r, "step", metrics=("time/step", "throughput/tokens_per_s", "mfu_6nd", "hfu"))
        else:
            st.info(NOT_FOR_LORA)
    with panels.section("Communication ledger", s, lambda x: comms_result(model, hardware, x)):
        if full:
            comms(model, hardware, s)
        else:
            st.info(NOT_FOR_LORA)
    with panels.section("Chinchilla: compute-optimal tokens"):
        from ..model import scaling

        r = scaling.chinchilla(model)
        panels.show_result(r, "chinchilla", metrics=("size/rule20/tokens", "size/approach3/tokens"), per_row=2)


def time_cost(model, hardware, s: dict, tc=time_and_cost) -> None:
    from ..training.step import training_step

    dev = state.device_word(hardware)
    st_, r = tc(model, hardware, s)
    if st_.data.get("fits") is False:
        st.error(f"Hypothetical: the layout does not fit in {dev} memory (see “Memory per {dev}”), so no run "
                 "would reach this time.")
    keys = ["days", "gpu_hours"] + (["cost"] if "cost" in r.keys() else [])
    panels.show_result(r, "cost", metrics=tuple(keys), per_row=3)
    if "cost" not in r.keys():
        st.info(f"No catalogue price for the {hardware.display_name}: enter a price per {dev}-hour above to see "
                "the cost.")
    # days against GPU count: the same layout with DP scaled (one vectorised step call; invalid layouts masked).
    # EP is carved out of DP (Megatron-Core), so DP values EP does not divide are left out, and said so.
    ep = int(s["ep"])
    dps = DP_SWEEP[DP_SWEEP % ep == 0]
    if ep > 1:
        st.caption(f"DP values not divisible by EP {ep} are left out of the chart (EP lives inside DP).")
    layout = make_layout(s, dp=dps)
    try:
        with np.errstate(all="ignore"):  # layouts that do not divide the batch are masked by data["valid"]
            sw = training_step(model, hardware, layout, global_batch=int(s["gbs"]), micro_batch=int(s["mbs"]),
                               seq=int(s["seq"]), recompute=s["recompute"], dtype=s["dtype"])
    except LlmcalcError as e:  # e.g. DP beyond a scale-up domain with no scale-out link in the catalogue
        st.caption(f"no days-vs-{dev}s chart: scaling DP fails ({panels.in_page_words(str(e))})")
        return
    df = days_sweep(model, hardware, s, sw, st_)
    if df is None:
        return
    st.altair_chart(charts.sweep(df, f"{dev}s", "days", "current", fits="fits", unit="days",
                                 title=f"training days vs {dev}s (DP scaled; each point its own step model, "
                                       f"global batch {int(s['gbs'])}; grey: does not fit)"), width="stretch")
    panels.csv_download(df, "days-vs-gpus", "dl_days")


def days_sweep(model, hardware, s: dict, sw, st_) -> pd.DataFrame | None:
    """The days-vs-devices table: per valid point its step model's MFU (6·N·D) over the token budget, and the
    memory verdict of that layout (the step model's own, training_memory per DP)."""
    from ..training.cost import training_cost

    dev = state.device_word(hardware)
    valid = np.asarray(sw.data["valid"], dtype=bool) & np.isfinite(np.asarray(sw.data["tokens_per_s"], float))
    if not valid.any():
        return None
    gpus = np.asarray(sw.data["gpus"])[valid]
    mfu = np.asarray(sw.data["mfu_6nd"])[valid]
    fits = np.broadcast_to(np.asarray(sw.data["fits"], dtype=bool), valid.shape)[valid]
    # each point as the headline: the step model's MFU on its GPUs, over the token budget (one vectorised call)
    days = training_cost(model, tokens=tokens(s), hardware=hardware, gpus=gpus, mfu=mfu,
                         dtype=s["dtype"]).data["days"]
    return pd.DataFrame({f"{dev}s": gpus, "days": np.asarray(days, dtype=float), "MFU (6·N·D)": mfu,
                         "fits": fits, "current": gpus == st_.data["gpus"]})


def memory_result(model, hardware, s: dict, layout=None):
    from ..training import memory as mem

    return mem.training_memory(model, hardware, layout or make_layout(s), micro_batch=int(s["mbs"]),
                               seq=int(s["seq"]), recompute=s["recompute"], global_batch=int(s["gbs"]), lora=lora(s))


def alternatives(s: dict) -> dict[str, dict]:
    """Layouts to draw beside the chosen one, on the same GPUs where possible (TP or PP taken from DP)."""
    alt = {"chosen": {}}
    if int(s["zero"]) < 3:
        alt["ZeRO-3"] = {"zero": 3}
    if int(s["dp"]) % 2 == 0:
        alt["TP×2, DP÷2"] = {"tp": int(s["tp"]) * 2, "dp": int(s["dp"]) // 2}
        alt["PP×2, DP÷2"] = {"pp": int(s["pp"]) * 2, "dp": int(s["dp"]) // 2}
    if s["recompute"] != "full":
        alt["full recompute"] = {"recompute": "full"}
    return alt


def memory(model, hardware, s: dict) -> None:
    dev = state.device_word(hardware)
    r = memory_result(model, hardware, s)
    d = r.data
    if not d["fits"]:
        st.error(f"Does not fit: {panels.human(r.value('memory/total'), 'B')} per {dev} on the {d['worst_stage']} "
                 f"stage exceeds the {hardware.display_name}'s {panels.human(d['usable_bytes'], 'B')} usable "
                 f"({d['reserve']:.0%} of {panels.human(d['memory_bytes'], 'B')} reserved); raise TP/PP, ZeRO or "
                 "recompute, or lower the micro-batch.")
    panels.show_result(r, "memory", metrics=("memory/total", "memory/headroom"), per_row=2)
    rows = []
    for name, over in alternatives(s).items():
        x = {**s, **{k: v for k, v in over.items() if k == "recompute"}}
        lay = {k: v for k, v in over.items() if k != "recompute"}
        try:
            rr = memory_result(model, hardware, x, make_layout(s, **lay))
        except LlmcalcError as e:
            st.caption(f"{name}: {panels.in_page_words(str(e))}")
            continue
        stage = rr.data[f"{rr.data['worst_stage']}_stage"]
        for part, k in (("weights", "weights_bytes"), ("gradients", "grads_bytes"),
                        ("optimizer states", "optimizer_bytes"), ("activations", "activations_bytes")):
            rows.append({"layout": name, "component": part, "bytes": float(stage[k])})
    st.altair_chart(charts.memory_layouts(pd.DataFrame(rows), hardware.memory_bytes, dev, d["usable_bytes"]),
                    width="stretch")


def comms_result(model, hardware, s: dict):
    from ..training import comms as comm

    return comm.comm_ledger(model, hardware, make_layout(s), micro_batch=int(s["mbs"]), seq=int(s["seq"]),
                            global_batch=int(s["gbs"]), recompute=s["recompute"])


def comms(model, hardware, s: dict) -> None:
    r = comms_result(model, hardware, s)
    rows = pd.DataFrame([row for row in r.data["rows"] if np.any(row["count"])])
    if rows.empty:
        st.info(f"No collectives: a single {state.device_word(hardware)} communicates nothing.")
    else:
        per = rows.groupby("parallelism", sort=False)["time_s"].sum().reset_index()  # drawing, not a formula
        per["ms per step"] = per["time_s"] * 1e3
        left, right = st.columns([1, 2])
        left.altair_chart(charts.bars(per[["parallelism", "ms per step"]], "parallelism", "ms per step",
                                      title=["communication per parallelism", "(before overlap)"]), width="stretch")
        panels.dataframe(panels.people_table(rows.drop(columns=["source"], errors="ignore")), where=right,
                         hide_index=True, width="stretch", height=panels.table_height(len(rows)))
        panels.csv_download(rows, "comm-ledger", "dl_comms")
    panels.show_result(r, "comms", metrics=("comm/total_time",), table=False)
