"""The Streamlit what-if dashboard: one module per page, URL state in :mod:`.state`, charts in :mod:`.charts`.

This package is a face: it wires widgets to the calculators and draws their Results; no formula
lives here. Nothing on the CLI's import path imports it (``llmcalc app`` only starts ``streamlit run``
on :mod:`.main`), so importing Streamlit and Altair at module top here costs the CLI nothing.
"""
