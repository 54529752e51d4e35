"""The dashboard's entry script: ``streamlit run`` this file (``llmcalc app`` does) or the repo's app.py.

The shell draws the sidebar (page picker grouped as in :mod:`.pages`, model, hardware, precision,
uploads, the link and downloads) and runs the chosen page. Pages compute part by part
(:func:`.panels.section`); a user error that escapes a page (an unreadable upload) becomes one
``st.error`` line, never a traceback.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from urllib.parse import urlencode

if __package__ in (None, ""):  # `streamlit run` executes this file as a script: make its package importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import streamlit as st  # noqa: E402

from llmcalc.core.catalogue import load_hardware, load_model, names
from llmcalc.core.errors import LlmcalcError, unknown_name
from llmcalc.core.specs import Hardware, Model
from llmcalc.dashboard import pages, panels, state
from llmcalc.dashboard.uploads import title as _title
from llmcalc.dashboard.uploads import uploaded_hardware, uploaded_model


def pick(label: str, name: str, kind: str, where) -> str:
    """A catalogue selectbox bound to state ``name``; an unknown name from the URL becomes an error note."""
    options = names(kind)
    s = state.store()
    if s[name] not in options:
        err = unknown_name("model" if kind == "models" else kind, s[name], options)
        st.session_state.setdefault("_llmcalc_notes", []).append(f"URL parameter {name}: {err}")
        s[name] = state.FIELDS[name].default if state.FIELDS[name].default in options else options[0]
    return panels.field(name, where.selectbox, label=label, where=where, options=options)


def specs(model_key: str, hw_key: str, upload, hw_upload) -> tuple[Model, Hardware]:
    """The model and hardware of one side: an upload wins over the catalogue choice."""
    model = uploaded_model(upload) if upload is not None else load_model(state.store()[model_key])
    hardware = uploaded_hardware(hw_upload) if hw_upload is not None else load_hardware(state.store()[hw_key])
    return model, hardware


def sidebar():
    """Global inputs; returns the page key and the two uploads (model, hardware) of scenario A."""
    sb = st.sidebar
    sb.title("llmcalc")
    page = state.widget("page", sb.radio, label="page", options=pages.ordered(), format_func=pages.label)
    pick("model", "model", "models", sb)
    upload = sb.file_uploader("…or upload a config.json / model YAML", type=["json", "yaml", "yml"], key="upload")
    pick("hardware", "hw", "hardware", sb)
    hw_upload = sb.file_uploader("…or upload a hardware YAML", type=["yaml", "yml"], key="upload_hw")
    panels.field("dtype", sb.selectbox, label="weights / compute precision", where=sb, options=state.DTYPES)
    state.widget("weight_only", sb.toggle, label="weight-only (bf16 compute, the CLI's --weights default)",
                 help="fp8/int8 weights with bf16 activations: saves bytes, computes at the 16-bit peak "
                      "(int4 is always weight-only)")
    return page, upload, hw_upload


def main() -> None:
    st.set_page_config(page_title="llmcalc", page_icon="🧮", layout="wide")
    panels.start_run()
    panels.style()
    s = state.store()
    page, upload, hw_upload = sidebar()
    notes = st.container()  # filled last: a page's widgets may add notes about the link too
    try:
        model, hardware = specs("model", "hw", upload, hw_upload)
        for up, what in ((upload, "model"), (hw_upload, "hardware")):
            if up is not None:
                st.caption(f"{what} from the uploaded file {_title(up)} (a shared link carries only the catalogue "
                           "choice, not the file)")
        st.session_state["_llmcalc_device_word"] = state.device_word(hardware)  # results without hardware
        run_page(page, model, hardware, s)
    except LlmcalcError as e:
        st.error(panels.in_page_words(str(e)))
    finally:
        for note in state.url_notes():
            notes.warning(note)
        state.sync_url()
        query = urlencode(state.encode(s))
        with st.sidebar:
            st.divider()
            st.caption("This view's link (everything is in the URL):")
            # inline code, not st.code: a code block makes every page load the syntax highlighter (issue #11)
            st.markdown(f"`?{query}`" if query else "`(defaults)`")
            panels.scenario_downloads(dict(s), query)


def run_page(page: str, model: Model, hardware, s: dict) -> None:
    module = importlib.import_module(f"llmcalc.dashboard.{pages.BY_KEY[page].module}")
    module.render(model, hardware, s)


if __name__ == "__main__":
    main()
