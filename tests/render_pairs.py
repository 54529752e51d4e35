"""Full renders of one dashboard page for many model × accelerator pairs, for tests/test_app.py.

A worker keeps one AppTest per page and, for each pair, sets the sidebar's model and accelerator widgets
(and the page's TP input, or the RL page's rollout engine TP, to the largest of 1, 2, 4, 8 dividing the
model's KV heads), then runs the whole
app script: sidebar, answer line, every section and chart, as a user gets it after picking the pair.
Reusing the AppTest saves ~0.5 s of script compile and widget registry per pair; each run is still a full
render. Workers are separate processes (tests/test_app.py spreads the pairs over the machine's cores).
"""

from __future__ import annotations

from pathlib import Path

APP = str(Path(__file__).resolve().parent.parent / "app.py")
_APPS: dict = {}


def _tp_for(model_name: str) -> int:
    from llmcalc.core.catalogue import load_model

    heads = load_model(model_name).attention.n_kv_heads
    return max(t for t in (1, 2, 4, 8) if heads % t == 0)


def _app(page: str, params: dict[str, str]):
    key = (page, tuple(sorted(params.items())))
    if key not in _APPS:
        from streamlit.components.v2 import manifest_scanner as ms
        from streamlit.testing.v1 import AppTest

        found = ms.scan_component_manifests()  # the installed components cannot change during a run
        ms.scan_component_manifests = lambda *a, **k: found
        at = AppTest.from_file(APP, default_timeout=300)
        for k, v in {"page": page, **params}.items():
            at.query_params[k] = v
        at.run()
        _APPS[key] = at
    return _APPS[key]


def render(page: str, pairs: list[tuple[str, str]], params: dict[str, str]) -> list[dict]:
    """One full render per pair; a row per pair with what the test checks (never raises for a page's error)."""
    at = _app(page, params)
    rows = []
    for m, h in pairs:
        at.session_state["w_model"] = m
        at.session_state["w_hw"] = h
        for tp_key in ("w_tp", "w_rl_rtp"):  # the page's TP input (the RL page's rollout engine TP)
            if tp_key in at.session_state:
                at.session_state[tp_key] = _tp_for(m)
        if "w_model_b" in at.session_state:
            at.session_state["w_model_b"] = m
        at.run()
        s = at.session_state["_llmcalc_state"]
        # formula panels draw their derivation only when opened: derive every result drawn here as they would
        derived = []
        for r in at.session_state["_llmcalc_results"]:
            try:
                r.explain()
            except Exception as e:  # noqa: BLE001 - reported as the pair's exception
                derived.append(f"{r.title}: explain() raised {e!r}")
        rows.append({"model": m, "hw": h, "exceptions": [e.value for e in at.exception] + derived,
                     "rendered": (s["page"], s["model"], s["hw"]), "answer": at.session_state["_llmcalc_answer"],
                     "sections": dict(at.session_state["_llmcalc_sections"])})
    return rows
