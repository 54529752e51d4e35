"""Streamlit entry point: ``streamlit run app.py``. The dashboard itself lives in llmcalc/dashboard/."""

from llmcalc.dashboard.main import main

main()
