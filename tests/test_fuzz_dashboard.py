"""Dashboard URL decoding under generated queries, and every page rendering under randomised URL parameters
(issue #13): never an exception, values always finite and within their fields' bounds."""

from __future__ import annotations

import pytest
from fuzz_parts import check_url, url_queries
from hypothesis import given, settings
from hypothesis import strategies as st

from llmcalc.dashboard.state import FIELDS, PAGES, decode


@settings(max_examples=600)
@given(url_queries())
def test_url_decoding_keeps_the_promise(query):
    check_url(query)


@pytest.mark.parametrize("name, text", [("ttft_slo", "nan"), ("ttft_slo", "inf"), ("rate", "-inf"), ("tp", "1e400"),
                                        ("gbs", "9" * 5000), ("price", "nan")])
def test_non_finite_url_numbers_fall_back_to_the_default(name, text):
    state, notes = decode({name: text})
    assert state[name] == FIELDS[name].default and len(notes) == 1 and name in notes[0]


_page_params = st.fixed_dictionaries(
    {"page": st.sampled_from(sorted(PAGES))},
    optional={"model": st.sampled_from(["llama-3.1-8b", "deepseek-v3", "mixtral-8x7b", "gpt2", "gemma-2-9b", "x"]),
              "hw": st.sampled_from(["h100-sxm", "mi325x", "tpu-v5e", "b200", "l40s", "nope"]),
              "tp": st.sampled_from(["1", "2", "8", "3", "0", "nan"]), "pp": st.sampled_from(["1", "2", "4"]),
              "dp": st.sampled_from(["1", "8", "64"]), "zero": st.sampled_from(["0", "1", "2", "3"]),
              "batch": st.sampled_from(["1", "64", "65536"]), "prompt": st.sampled_from(["1", "1000", "100000"]),
              "gen": st.sampled_from(["1", "2", "300"]), "mfu": st.sampled_from(["0.4", "nan", "1"]),
              "dtype": st.sampled_from(["bf16", "fp8", "int4"]), "rate": st.sampled_from(["0.001", "10", "1e7"]),
              "seq": st.sampled_from(["1", "4096", "16777216"]), "gpus": st.sampled_from(["1", "1024"])})


@settings(max_examples=24, deadline=None)
@given(_page_params)
def test_every_page_renders_under_random_urls(params):
    """AppTest runs the real script: an uncaught exception shows up in at.exception; user errors render as
    st.error, which is allowed (a message), a Python exception is not."""
    from streamlit.testing.v1 import AppTest

    from llmcalc.cli.dashboard import APP_SCRIPT

    at = AppTest.from_file(str(APP_SCRIPT), default_timeout=60)
    for k, v in params.items():
        at.query_params[k] = v
    at.run()
    assert not at.exception, (params, [e.value for e in at.exception][:1])
    for e in at.error:
        assert "Traceback" not in str(e.value), (params, e.value)
