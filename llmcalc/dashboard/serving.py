"""Serving page."""

from __future__ import annotations

import streamlit as st


def render(model, hardware, s: dict) -> None:
    st.header("Serving: " + model.display_name + " on " + hardware.display_name)
