"""The dashboard's entry script: ``streamlit run`` this file (``llmcalc app`` does) or the repo's app.py.

The shell draws the sidebar (page, model, hardware, precision, downloads), runs the chosen page and
turns any :class:`~llmcalc.errors.LlmcalcError` into an ``st.error`` message (never a traceback).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from urllib.parse import urlencode

if __package__ in (None, ""):  # `streamlit run` executes this file as a script: make its package importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import streamlit as st  # noqa: E402

from llmcalc.core.catalogue import load_hardware, load_model, names, parse_yaml_spec
from llmcalc.core.errors import LlmcalcError, SpecError, unknown_name
from llmcalc.core.specs import Hardware, Model
from llmcalc.dashboard import panels, state


def uploaded_model(upload) -> Model:
    """A Model from an uploaded Hugging Face config.json or catalogue YAML (read in memory, never saved)."""
    text = upload.getvalue().decode("utf-8", errors="replace")
    if upload.name.endswith(".json"):
        from llmcalc.core.hf_config import model_from_config

        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise SpecError(f"{upload.name}:{e.lineno}:{e.colno}: invalid JSON: {e.msg}") from None
        if not isinstance(data, dict):
            raise SpecError(f"{upload.name}: expected a JSON object")
        stem = upload.name.rsplit(".", 1)[0]
        return model_from_config(data, "uploaded" if stem == "config" else stem, upload.name)
    return parse_yaml_spec(text, Model, upload.name)


def uploaded_hardware(upload) -> Hardware:
    """A Hardware spec from an uploaded catalogue-style YAML (units written out: '80 GiB', '3.35 TB/s')."""
    return parse_yaml_spec(upload.getvalue().decode("utf-8", errors="replace"), Hardware, upload.name)


def pick(label: str, name: str, kind: str, where) -> str:
    """A catalogue selectbox bound to state ``name``; an unknown name from the URL becomes an error note."""
    options = names(kind)
    s = state.store()
    if s[name] not in options:
        err = unknown_name("model" if kind == "models" else kind, s[name], options)
        st.session_state.setdefault("_llmcalc_notes", []).append(f"URL parameter {name}: {err}")
        s[name] = state.FIELDS[name].default if state.FIELDS[name].default in options else options[0]
    return state.widget(name, where.selectbox, label=label, options=options)


def sidebar():
    """Global inputs; returns (model, hardware) specs for scenario A."""
    sb = st.sidebar
    sb.title("llmcalc")
    page = state.widget("page", sb.radio, label="page", options=list(state.PAGES),
                        format_func=state.PAGES.get)
    pick("model", "model", "models", sb)
    upload = sb.file_uploader("…or upload a config.json / model YAML", type=["json", "yaml", "yml"], key="upload")
    pick("hardware", "hw", "hardware", sb)
    hw_upload = sb.file_uploader("…or upload a hardware YAML", type=["yaml", "yml"], key="upload_hw")
    state.widget("dtype", sb.selectbox, label="weights / compute precision", options=state.DTYPES)
    state.widget("weight_only", sb.toggle, label="weight-only (16-bit compute)",
                 help="fp8/int8 weights with bf16 activations: saves bytes, computes at the 16-bit peak "
                      "(int4 is always weight-only)")
    return page, upload, hw_upload


def main() -> None:
    st.set_page_config(page_title="llmcalc", page_icon="🧮", layout="wide")
    panels.start_run()
    s = state.store()
    page, upload, hw_upload = sidebar()
    notes = st.container()  # filled last: a page's widgets may add notes about the link too
    try:
        model = uploaded_model(upload) if upload is not None else load_model(s["model"])
        hardware = uploaded_hardware(hw_upload) if hw_upload is not None else load_hardware(s["hw"])
        for up, what in ((upload, "model"), (hw_upload, "hardware")):
            if up is not None:
                st.caption(f"{what} from the uploaded file {up.name} (a shared link carries only the catalogue "
                           "choice, not the file)")
        run_page(page, model, hardware, s)
    except LlmcalcError as e:
        st.error(str(e))
    finally:
        for note in state.url_notes():
            notes.warning(note)
        state.sync_url()
        query = urlencode(state.encode(s))
        with st.sidebar:
            st.divider()
            st.caption("This view's link (everything is in the URL):")
            st.code("?" + query if query else "(defaults)", language=None)
            panels.scenario_downloads(dict(s), query)


def run_page(page: str, model: Model, hardware, s: dict) -> None:
    from llmcalc.dashboard import compare, inference, model_page, plan, rl, serving, training

    pages = {"model": model_page.render, "training": training.render, "inference": inference.render,
             "serving": serving.render, "compare": compare.render, "rl": rl.render, "plan": plan.render}
    pages[page](model, hardware, s)


if __name__ == "__main__":
    main()
