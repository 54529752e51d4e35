"""Drill page: the daily drill in the browser (llmcalc.study.drill, the same questions, grading and history
as ``llmcalc drill``).

Questions come from the calculators with randomised inputs (the sidebar's model and hardware are not used);
answers are typed with units and graded on submit; each answer shows the calculator's derivation. Graded
answers go to the same JSONL history as the CLI, so the Leitner order is shared.
"""

from __future__ import annotations

import datetime

import streamlit as st


def render(model, hardware, s: dict) -> None:
    from ..study import drill as dr
    from . import panels

    st.header("Drill")
    top = st.empty()  # the answer line goes above the inputs (first screen on phones)
    st.caption("Questions generated from the calculators with random catalogue models, hardware and layouts. "
               "Answer with units (3.2 GB, 40ms, 1.2e12); within 10% is right, within 2× close. "
               "These inputs are local to this page (not in the link).")
    path = dr.history_path()
    past = dr.load_history(path)
    c = st.columns([3, 1, 1, 1])
    topics = c[0].multiselect("topics (empty: weakest first)", options=list(dr.TOPICS), key="drill_topics")
    count = int(c[1].number_input("questions", min_value=1, max_value=20, value=5, key="drill_count"))
    seed = int(c[2].number_input("seed", min_value=0, value=int(datetime.date.today().strftime("%Y%m%d")),
                                 key="drill_seed"))
    record = c[3].toggle("record", value=True, key="drill_record", help=f"append graded answers to {path}")
    qs = dr.questions(topics or None, count, seed, past)
    panels.answer(f"Today's drill ({len(past)} answers on record):",
                  f"{len(qs)} questions, starting with {qs[0].topic}" if qs else "no questions", where=top)
    with st.form("drill_form"):
        answers = [st.text_input(f"Q{i + 1} [{q.topic}] {q.text}", key=f"drill_a{i}") for i, q in enumerate(qs)]
        submitted = st.form_submit_button("Grade")
    if submitted:
        records = []
        for i, (q, a) in enumerate(zip(qs, answers, strict=True)):
            g = dr.grade(a, q.answer.value, q.answer.unit)
            verdict = {"right": st.success, "close": st.warning, "wrong": st.error, "skipped": st.info,
                       "unreadable": st.info}[g.verdict]
            detail = "" if g.ratio is None else f" (×{g.ratio:.3g} of it)"
            word = {"skipped": "no answer", "unreadable": "UNREADABLE, not recorded"}.get(g.verdict, g.verdict.upper())
            verdict(f"Q{i + 1}: {word} — the calculator "
                    f"says {q.answer.text()}{detail}" + (f"; {g.message}" if g.message else ""))
            st.code("\n".join(f.explain() for f in q.derivation), language=None)
            if g.verdict not in ("skipped", "unreadable"):
                records.append({"topic": q.topic, "question": q.text, "expected": dr._plain(q.answer.value),
                                "unit": q.answer.unit, "answer": a, "verdict": g.verdict, "ratio": g.ratio,
                                "seed": seed})
        stamp = (seed, count, tuple(topics), tuple(answers))
        if record and records and st.session_state.get("_drill_recorded") != stamp:  # once per submission
            dr.append_history(path, records)
            st.session_state["_drill_recorded"] = stamp
            past = dr.load_history(path)
    st.subheader("Your topics")
    b = dr.boxes(past)
    panels.dataframe([{"topic": t, "box": b[t]["box"], "asked": b[t]["attempts"], "right": b[t]["right"],
                      "close": b[t]["close"], "wrong": b[t]["wrong"],
                      "accuracy": None if b[t]["accuracy"] is None else round(100 * b[t]["accuracy"])}
                     for t in dr.order(None, past)], hide_index=True)
    st.caption(f"History: {path} ({len(past)} graded answers). Leitner boxes 1-5: right moves a topic up, wrong "
               "back to 1; the lowest boxes come first.")
