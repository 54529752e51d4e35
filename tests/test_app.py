"""The Streamlit dashboard, run headless with streamlit.testing.v1.AppTest (no browser).

Expected numbers are published counts (sources in each test) or, for "the dashboard shows what the
calculator says", the calculator called here with the same inputs: the dashboard must not compute.
"""

from __future__ import annotations

import json
import subprocess
import sys
from functools import partial
from pathlib import Path

import pytest
from conftest import app_run
from typer.testing import CliRunner

from llmcalc.dashboard import state

AppTest = pytest.importorskip("streamlit.testing.v1").AppTest

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "app.py")
CONFIGS = ROOT / "tests" / "data" / "configs"

# Published exact parameter counts (published-cases.yaml cites each original source).
LLAMA31_8B = 8_030_261_248  # Meta Llama 3.1 8B, HF checkpoint (params-llama3-8b)
GPT2 = 124_439_808  # OpenAI GPT-2 small; keras-hub gpt2_base_en preset (params-gpt2-124m)
MIXTRAL_TOTAL = 46_702_792_704  # keras-hub mixtral_presets.py (params-mixtral-8x7b-total-active)


@pytest.fixture(autouse=True, scope="module")
def _scan_components_once():
    """AppTest rescans every installed distribution for Streamlit v2 components on each new app (~1 s);
    the answer cannot change within a test session, so scan once."""
    from streamlit.components.v2 import manifest_scanner as ms

    real = ms.scan_component_manifests
    found = real()
    ms.scan_component_manifests = lambda *a, **k: found
    yield
    ms.scan_component_manifests = real


run_app = partial(app_run, 30)  # conftest.app_run, 30 s per script run


def open_formulas(at: AppTest) -> AppTest:
    """Open every formula panel of the page (a closed one draws no derivation: issue #11) and re-run."""
    keys = [e.key for e in at.expander if (e.key or "").startswith("formula_")]
    for k in keys:
        at.session_state[k] = True
    if keys:
        at.run()
        assert not at.exception, [e.value for e in at.exception]
    return at


def texts(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption] + [c.value for c in at.code]
    return "\n".join(parts)


def metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


# ---------------------------------------------------------------- URL state (pure)


def test_url_state_round_trips_and_stays_short():
    s, notes = state.decode({"page": "training", "model": "gpt2", "tp": "4", "rate": "0.5", "causal": "1"})
    assert notes == []
    assert (s["page"], s["model"], s["tp"], s["rate"], s["causal"]) == ("training", "gpt2", 4, 0.5, True)
    assert state.encode(s) == {"page": "training", "model": "gpt2", "tp": "4", "causal": "1", "rate": "0.5"}
    assert state.encode(state.decode({})[0]) == {}  # defaults are left out of the link


def test_bad_url_values_are_ignored_with_a_note():
    s, notes = state.decode({"tp": "x", "zero": "7", "page": "nope", "unknown": "1"})
    assert s["tp"] == 1 and s["zero"] == state.FIELDS["zero"].default and s["page"] == "model"
    assert len(notes) == 3
    assert any("tp='x'" in n and "whole number" in n for n in notes)


# ---------------------------------------------------------------- pages


def test_model_page_shows_published_count_and_its_derivation():
    from llmcalc.core.catalogue import load_model
    from llmcalc.model.params import param_breakdown

    at = run_app()
    assert f"exactly {LLAMA31_8B:,} parameters" in texts(at)
    assert metric(at, "total parameters") == "8.03 B param"
    # the formula panel carries the same text as `llmcalc params --explain`, drawn once the panel is opened
    # (closed panels hold no code block: issue #11, first paint)
    explain = param_breakdown(load_model("llama-3.1-8b")).explain()
    assert any(e.label.startswith("formula: how each figure of “Parameters of Llama-3.1-8B”") for e in at.expander)
    assert explain not in texts(at)
    at.session_state["formula_params"] = True
    at.run()
    assert not at.exception
    assert explain in texts(at)
    assert not at.error


def test_model_page_flops_table_in_einsum_notation():
    at = run_app(model="gpt2", seq=1024)
    assert f"exactly {GPT2:,} parameters" in texts(at)
    table = next(d.value for d in at.dataframe if "einsum" in d.value.columns)
    assert "BLD,DHK->BLHK" in set(table["einsum"])  # q projection
    assert "BLHK,BMHK->BHLM" in set(table["einsum"])  # attention scores
    assert (table[table["block"] != "output"]["layers"] == 12).all()


def test_changing_a_widget_updates_the_url():
    at = run_app()
    at.selectbox(key="w_model").set_value("gpt2").run()
    assert not at.exception
    assert at.query_params["model"] == ["gpt2"] or at.query_params["model"] == "gpt2"
    assert f"exactly {GPT2:,} parameters" in texts(at)


@pytest.mark.parametrize("page", list(state.PAGES))
def test_every_page_renders_without_error(page):
    at = run_app(page=page)
    assert not at.error, [e.value for e in at.error]
    assert at.header, "every page has a header"
    assert at.session_state["_llmcalc_answer"], "every page opens with its answer line"


def test_unknown_model_in_link_is_a_warning_not_a_traceback():
    at = run_app(model="llama-9", tp="x")
    warnings = " ".join(w.value for w in at.warning)
    assert "unknown model 'llama-9'" in warnings and "did you mean" in warnings
    assert "tp='x'" in warnings


def errors(at: AppTest) -> str:
    return "\n".join(e.value for e in at.error)


def test_training_page_chinchilla_and_sections():
    from llmcalc.core.units import fmt

    at = run_app(page="training")
    assert not at.error, errors(at)
    # Hoffmann et al. 2022 (Chinchilla) Table 3 / §3: ~20 training tokens per parameter
    assert metric(at, "compute-optimal tokens (20 tokens/param)") == fmt(20 * LLAMA31_8B, "token")
    labels = {m.label for m in at.metric}
    # MFU in the 6·N·D convention, as the CLI's --mfu (the attention-inclusive one can exceed HFU)
    assert {"step time", "MFU (model FLOPs, 6·N·D)", "peak per GPU (worst stage)"} <= labels
    assert len(at.get("vega_lite_chart")) >= 3  # days vs GPUs, memory vs capacity, comms per parallelism


def test_training_layout_that_does_not_divide_is_an_error_message():
    at = run_app(page="training", tp=3)
    # in the page's words, with the values that work: TP must divide the 32 query heads and the 8 KV heads of
    # Llama 3.1 8B (Meta's config.json: num_attention_heads 32, num_key_value_heads 8) -> 1, 2, 4, 8
    assert "“TP (tensor parallel)” 3 does not divide the 32 attention heads of Llama-3.1-8B; values that work " \
           "here: 1, 2, 4, 8" in errors(at)
    assert "--tp" not in errors(at)


def test_training_model_that_does_not_fit_says_so():
    # 70.6e9 bf16 weights alone are 141 GB, more than one 80 GB H100 holds without TP/PP/ZeRO-3
    at = run_app(page="training", model="llama-3.1-70b", tp=1, pp=1, dp=8, zero=1)
    assert "Does not fit" in errors(at)


def test_inference_page_kv_cache_matches_the_scaling_book():
    from llmcalc.core.units import fmt

    at = run_app(page="inference", model="llama-3.1-70b", tp=2, batch=1, prompt=1024, gen=256)
    assert not at.error, errors(at)
    # scaling-book applied-inference: Llama 3 70B KV = 2·8·128·80 elements/token = 327,680 B in bf16
    assert metric(at, "KV per token, all layers (no window cap)") == fmt(327_680, "B")
    # per GPU beside the per-GPU memory chart: tp 2 splits the 8 KV heads, 4 per GPU
    assert metric(at, "KV per GPU (tp 2, pp 1)") == "210 MB"  # 327,680 B x 1,280 tokens / 2 = 209,715,200 B
    assert len(at.get("vega_lite_chart")) >= 4  # memory, roofline, latency and throughput vs batch
    sweep = next(d.value for d in at.dataframe if "tokens/s per device" in d.value.columns)
    assert list(sweep["batch"]) == [f"{2**i:,}" for i in range(9)]  # 1 … 256, the default sweep, as people read it


def test_inference_model_that_does_not_fit_says_so():
    # Llama 3.1 405B: 405e9 bf16 weights are 810 GB, ten times one H100
    at = run_app(page="inference", model="llama-3.1-405b", tp=1)
    assert "Does not fit" in errors(at)


def test_serving_page_plan_and_impossible_targets():
    at = run_app(page="serving")
    assert not at.error, errors(at)
    assert {"replicas", "GPUs in total"} <= {m.label for m in at.metric}
    at = run_app(page="serving", tpot_slo=0.00001)  # 10 µs per token: no deployment meets it
    assert "no TP degree" in errors(at)


def test_serving_page_draws_latency_percentiles_against_load():
    """p50/p99 TTFT and TPOT against the load come from batching.latency_vs_load (tested by hand and against a
    Lindley simulation in test_batching.py); the page draws them, with the model's caveat beside the chart."""
    at = run_app(page="serving")
    assert at.session_state["_llmcalc_sections"]["Latency percentiles against load (one replica)"] == "ok"
    assert any("M/D/1" in c.value and "no TPOT percentile" in c.value for c in at.caption)


def test_serving_page_price_input_sets_the_cost():
    # cost = GPUs x $/h / (3600 x output tokens/s) x 1e6 (serving.py); the page's price replaces the catalogue's
    from llmcalc.core.catalogue import load_hardware, load_model
    from llmcalc.inference.serving import serve

    at = run_app(page="serving", hw="h100-pcie", price=2.5)  # the catalogue has no H100 PCIe price
    assert not at.error, errors(at)
    d = serve(load_model("llama-3.1-8b"), load_hardware("h100-pcie"), prompt=1024, output=256, qps=10.0,
              price_usd_per_hour=2.5).data
    cost = d["gpus"] * 2.5 / (3600 * d["tokens_per_s"]) * 1e6
    from llmcalc.core.units import fmt

    assert d["usd_per_million_output_tokens"] == pytest.approx(cost)
    assert metric(at, "$ per million output tokens at $2.5/GPU-h") == fmt(cost, "USD")


def test_tpu_pages_say_chip_not_gpu():
    at = run_app(page="inference", hw="tpu-v5e", model="gpt2")
    assert not at.error, errors(at)
    assert "Memory per chip" in [h.value for h in at.subheader]
    assert any(n.label == "TP (chips per replica)" for n in at.number_input)
    at = run_app(page="serving", hw="tpu-v5e", model="gpt2")
    assert any("chip-hour" in n.label for n in at.number_input)


def test_weight_only_toggle_computes_fp8_weights_at_16_bit():
    # formulas.md / Deployment: weight-only fp8 computes at the 16-bit peak (H100 SXM dense bf16 989 TFLOP/s)
    at = run_app(page="inference", dtype="fp8", weight_only=1)
    assert not at.error, errors(at)
    assert "compute at the bf16 peak" in texts(at)
    at = run_app(page="inference", dtype="fp8")
    assert "compute at the fp8 peak" in texts(at)


# ---------------------------------------------------------------- A vs B


def test_a_vs_b_mfu_delta_in_percentage_points():
    from llmcalc.core.results import Figure
    from llmcalc.dashboard.compare import delta_table

    t = delta_table([Figure("mfu", 0.40, "%", label="MFU")], [Figure("mfu", 0.45, "%", label="MFU")])
    assert t.iloc[0]["B − A"] == "+5 pp"  # 45 % − 40 % = 5 percentage points (not 12.5 %)
    t = delta_table([Figure("mfu", 0.45, "%", label="MFU")], [Figure("mfu", 0.40, "%", label="MFU")])
    assert t.iloc[0]["B − A"] == "−5 pp"  # the minus sign of every other row, not "-5 pp"


def test_a_vs_b_deltas_from_published_counts():
    at = run_app(page="compare", model="llama-3.1-8b", model_b="mixtral-8x7b")
    deltas = next(d.value for d in at.dataframe if "B / A" in d.value.columns)
    row = deltas[deltas["figure"] == "total parameters"].iloc[0]
    assert row["B / A"] == f"{MIXTRAL_TOTAL / LLAMA31_8B:.3g}×"
    assert row["A"] == "8.03 B param" and row["B"] == "46.7 B param"


def test_a_vs_b_layouts_and_hardware():
    at = run_app(page="compare", model="llama-3.1-70b", model_b="llama-3.1-70b", hw_b="tpu-v5p", tp=8, dp=4,
                 tp_b=4, pp_b=2, dp_b=4)
    deltas = next(d.value for d in at.dataframe if "B / A" in d.value.columns)
    figs = set(deltas["figure"])  # a layout that does not fit labels its MFU hypothetical (llmcalc.training.step)
    assert "step time" in figs and any(f.startswith("MFU (model FLOPs, with attention)") for f in figs)
    row = deltas[deltas["figure"] == "total parameters"].iloc[0]
    assert row["B / A"] == "1×"  # same model on both sides


def test_a_vs_b_one_impossible_side_keeps_the_other():
    at = run_app(page="compare", tp_b=3)
    assert "scenario B, training: “TP (B)” 3 does not divide" in errors(at)
    deltas = next(d.value for d in at.dataframe if "B / A" in d.value.columns)
    assert "total parameters" in set(deltas["figure"])


# ---------------------------------------------------------------- uploads


class _Upload:
    def __init__(self, path: Path, name: str | None = None):
        self.name, self._data = name or path.name, path.read_bytes()

    def getvalue(self) -> bytes:
        return self._data


def test_uploaded_config_json_is_a_model():
    from llmcalc.dashboard.main import uploaded_model
    from llmcalc.model.params import count_params

    m = uploaded_model(_Upload(CONFIGS / "gpt2" / "config.json"))
    assert count_params(m) == GPT2


def test_upload_in_the_app_replaces_the_catalogue_model():
    at = run_app()
    at.file_uploader[0].upload("config.json", (CONFIGS / "gpt2" / "config.json").read_bytes(), "application/json")
    at.run()
    assert not at.exception and not at.error
    assert f"exactly {GPT2:,} parameters" in texts(at)
    at.file_uploader[0].upload("config.json", b'{"model_type": "llama",', "application/json")
    at.run()
    assert not at.exception
    assert "config.json:1:24: invalid JSON" in errors(at)


def test_uploaded_yaml_model_and_hardware():
    from llmcalc.core.catalogue import load_hardware
    from llmcalc.dashboard.main import uploaded_hardware, uploaded_model
    from llmcalc.model.params import count_params

    assert count_params(uploaded_model(_Upload(ROOT / "models" / "gpt2.yaml"))) == GPT2
    h100 = uploaded_hardware(_Upload(ROOT / "hardware" / "h100-sxm.yaml"))
    assert h100 == load_hardware("h100-sxm")
    assert h100.peak("bf16") == 989e12  # NVIDIA H100 SXM datasheet: 989 TFLOP/s dense BF16


def test_uploaded_bad_json_is_a_spec_error(tmp_path):
    from llmcalc.core.errors import SpecError
    from llmcalc.dashboard.main import uploaded_model

    bad = tmp_path / "config.json"
    bad.write_text('{"model_type": "llama", ')
    with pytest.raises(SpecError, match="invalid JSON"):
        uploaded_model(_Upload(bad))


# ---------------------------------------------------------------- downloads and CLI


def test_scenario_downloads_carry_the_state_and_results():
    import yaml

    from llmcalc.core.catalogue import load_model
    from llmcalc.dashboard.panels import scenario_texts
    from llmcalc.model.params import param_breakdown

    at = run_app(model="gpt2")
    labels = {d.proto.label for d in at.get("download_button")}
    assert {"scenario as JSON", "scenario as YAML"} <= labels
    s, _ = state.decode({"model": "gpt2"})
    as_json, as_yaml = scenario_texts(s, "model=gpt2", [param_breakdown(load_model("gpt2"))])
    for payload in (json.loads(as_json), yaml.safe_load(as_yaml)):
        assert payload["scenario"]["model"] == "gpt2" and payload["url_query"] == "model=gpt2"
        assert payload["results"][0]["total"] == GPT2


def test_llmcalc_app_runs_the_packaged_script():
    from llmcalc.cli import app

    r = CliRunner().invoke(app, ["app", "--dry-run", "--port", "8600", "--headless"])
    assert r.exit_code == 0, r.output
    assert "-m streamlit run" in r.output and "llmcalc/dashboard/main.py" in r.output
    assert "--server.port 8600" in r.output and "--server.headless true" in r.output


def test_cli_start_up_does_not_import_streamlit():
    code = "import sys, llmcalc.cli; print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in " \
           "('streamlit', 'pandas', 'altair'))))"
    out = subprocess.run([sys.executable, "-c", "import json; " + code], capture_output=True, text=True,
                         cwd=ROOT, check=True).stdout
    assert json.loads(out) == []


# ---------------------------------------------------------------- every page x every catalogue pair

def _catalogue():
    from llmcalc.core.catalogue import names

    return names("models"), names("hardware")


# Pages that draw from the sidebar's model and accelerator (the drill draws its own random questions).
MODEL_HW_PAGES = [p for p in state.PAGES if p != "drill"]
# Inputs of the all-pairs renders beyond the defaults. RL: 64 prompts × 8 samples instead of 512 × 16, so its
# event simulation (seven runs per render: the regimes and the η chart) takes ~0.3 s instead of ~1.7 s per pair;
# every section and chart still renders. The defaults render once per page in
# test_every_page_renders_without_error.
PAIR_INPUTS = {"rl": {"rl_prompts": "64", "rl_samples": "8"}}


@pytest.fixture(scope="module")
def render_pool():
    """Worker processes for the all-pairs renders, one per core (at most 2, CI's count), reused across pages."""
    import multiprocessing
    import os
    from concurrent.futures import ProcessPoolExecutor

    n = max(1, min(2, len(os.sched_getaffinity(0))))
    with ProcessPoolExecutor(n, mp_context=multiprocessing.get_context("spawn")) as pool:
        yield pool, n


@pytest.mark.parametrize("page", MODEL_HW_PAGES)
def test_every_page_renders_for_every_model_and_accelerator(page, render_pool):
    """Issue 11's acceptance: every page renders for every catalogue model × accelerator pair without an exception.

    Each pair is a full run of the app script (tests/render_pairs.py: the sidebar set to the pair, then every
    section and chart), spread over the worker processes; most pairs answer with the default inputs, the rest
    say which input stops them."""
    import render_pairs

    pool, n = render_pool
    models, hws = _catalogue()
    pairs = [(m, h) for m in models for h in hws]
    chunks = [pairs[i::n] for i in range(n)]
    rows = [r for f in [pool.submit(render_pairs.render, page, c, PAIR_INPUTS.get(page, {})) for c in chunks]
            for r in f.result()]
    assert len(rows) == len(models) * len(hws)
    for r in rows:
        assert not r["exceptions"], (r["model"], r["hw"], r["exceptions"])
        assert r["rendered"] == (page, r["model"], r["hw"])  # the pair was rendered, not a leftover
        assert r["answer"], (r["model"], r["hw"])  # an answer, or a pointer to the input that stops one
    answered = sum(not r["answer"].startswith("No answer yet") for r in rows)
    assert answered >= len(rows) // 2, answered  # most pairs answer with the default inputs


def test_rl_page_when_no_split_fits_draws_the_colocated_regime():
    """Found by the all-pairs renders: 405B on 64 B200 with rollout TP 8 fits only colocated (rl_step reports no
    split); the page divided by the missing split bound (TypeError) and printed "None rollout + None trainer"."""
    at = open_formulas(run_app(page="rl", model="llama-3.1-405b", hw="b200", rl_rtp=8, rl_prompts=64,
                               rl_samples=8))
    assert at.session_state["_llmcalc_sections"] == {"Regimes": "ok"}
    assert any("no rollout/trainer split fits" in c.value for c in at.caption)
    assert "None" not in texts(at)



@pytest.mark.parametrize("params", [{"rl_samples": 4096}, {"rl_prompts": 1 << 20}])
def test_rl_page_a_step_too_large_to_simulate_is_a_message_under_its_input(params):
    """User test: 512 prompts × 4096 samples (each within its own limits) ran the async simulation for 7 s and
    ended in a traceback ("async RL simulation did not converge"); now one message under the prompts input, with
    the values that work, and no simulation."""
    at = run_app(page="rl", **params)
    assert at.session_state["_llmcalc_sections"] == {"Regimes": "error"}
    msg = " ".join(e.value for e in at.error)
    assert "samples per step is more than the step simulation runs (at most 1,048,576" in msg
    assert "values that work here" in msg


# ---------------------------------------------------------------- one bad input leaves the rest rendered

BAD_INPUTS = {
    # page: [(params, label the message must name, sections that must still render)]
    "training": [
        ({"tp": 3}, "TP (tensor parallel)", {"Chinchilla: compute-optimal tokens"}),
        ({"dtype": "int4"}, "weights / compute precision",
         {"Memory per GPU", "Communication ledger", "Chinchilla: compute-optimal tokens"}),
        ({"tokens": "abc"}, "training tokens", {"Memory per GPU", "Step time and MFU", "Communication ledger"}),
        ({"tokens": "-5T"}, "training tokens", {"Memory per GPU", "Step time and MFU", "Communication ledger"}),
        ({"tokens": "0"}, "training tokens", {"Memory per GPU", "Step time and MFU"}),
        ({"gbs": 7, "dp": 8}, "global batch", {"Chinchilla: compute-optimal tokens"}),
    ],
    "inference": [({"tp": 3}, "TP (GPUs per replica)", set())],
    "serving": [({"tpot_slo": 0.00001}, None, {"Which accelerator serves this load cheapest?"})],
    "model": [({"seq": 1 << 24, "batch": 1 << 16}, None, {"Parameters"})],
    "compare": [({"tp_b": 3}, "TP (B)", {"Deltas (green: B better, red: B worse)", "Derivations"})],
    "rl": [({"rl_rtp": 3}, "rollout engine TP", set())],
    "plan": [({"plan_gpus": "abc"}, "counts (comma list)", set())],
    # The drill keeps no inputs in the link: a typed answer is graded (a bad one is "wrong"), never raised
    # (tests/test_drill.py grades exact, 5%-off, 50%-off and unit-mismatched answers).
    "drill": [],
}


@pytest.mark.parametrize("page", list(state.PAGES))
def test_one_bad_input_leaves_every_other_section_rendered(page):
    assert page in BAD_INPUTS, f"add a bad-input case for the {page} page"
    for params, label, still_ok in BAD_INPUTS[page]:
        at = run_app(page=page, **params)
        sections = at.session_state["_llmcalc_sections"]
        for name in still_ok:
            assert sections.get(name) == "ok", (params, name, sections)
        if label:
            msgs = errors(at)
            assert label in msgs and "--" not in msgs.replace("—", ""), (params, msgs)  # page words, no CLI flags


def test_training_tokens_message_sits_beside_the_input_with_an_example():
    at = run_app(page="training", tokens="abc")
    msgs = [e.value for e in at.error]
    assert any(m.lstrip("“").startswith("training tokens") and "15T" in m for m in msgs), msgs
    assert "fix “training tokens (e.g. 15T, 300B)”" in at.session_state["_llmcalc_answer"]


def test_prompt_longer_than_the_model_is_a_visible_warning():
    # Llama 3.1 8B: max_position_embeddings 131,072 (Meta's config.json); 200,000 + 256 exceeds it
    at = run_app(page="inference", prompt=200000)
    warnings = [w.value for w in at.warning]
    assert "WARNING: prompt + output exceeds the model's 131,072 positions" in warnings
    assert len(warnings) == len(set(warnings)), "each warning once"


def test_calculator_assumptions_are_on_the_page():
    from llmcalc.core.catalogue import load_hardware, load_model
    from llmcalc.inference.serving import serve

    at = run_app(page="serving")
    r = serve(load_model("llama-3.1-8b"), load_hardware("h100-sxm"), prompt=1024, output=256, qps=10.0)
    shown = texts(at)
    for a in r.assumptions:
        assert a in shown.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&"), a


def test_training_time_comes_from_the_layout_step():
    """15T tokens at the step model's tokens/s on the layout's 8 GPUs: days = tokens / (tokens/s) / 86,400."""
    from llmcalc.core.catalogue import load_hardware, load_model
    from llmcalc.training.layout import Layout
    from llmcalc.training.step import training_step

    r = training_step(load_model("llama-3.1-8b"), load_hardware("h100-sxm"), Layout(dp=8, zero=2), global_batch=512,
                      micro_batch=1, seq=4096, recompute="selective")
    days = 15e12 / r.data["tokens_per_s"] / 86400
    at = run_app(page="training")
    assert metric(at, "wall-clock days") == f"{days:,.0f} days"
    answer = at.session_state["_llmcalc_answer"]
    # the quoted MFU is the 6·N·D convention, as `llmcalc train --mfu` takes it, and never above HFU
    assert f"{r.data['mfu_6nd']:.1%} MFU (6·N·D)" in answer
    assert r.data["mfu_6nd"] <= r.data["hfu"]


def test_readme_dashboard_example_is_what_the_training_page_shows():
    import re

    at = run_app(page="training")
    a = at.session_state["_llmcalc_answer"]
    q = a.split("?")[0] + "?"
    readme = " ".join((ROOT / "README.md").read_text().split())
    m = re.search(r'\("(How long does training [^"]+)"\)', readme)
    assert m, "README quotes the training page's answer line"
    days, mfu, cost = re.search(r"([\d,]+ days) on .* at ([\d.]+% MFU \(6·N·D\)), ([\d.]+ M\$)", a).groups()
    for part in (q, days, mfu, cost):
        assert part in m.group(1), (part, m.group(1))


def test_training_days_chart_greys_layouts_that_do_not_fit():
    """Each point of the days-vs-GPUs chart carries training_memory's own verdict for its DP (the CLI's
    `llmcalc memory llama-3.1-8b --dp 1 --zero 2 --recompute selective --seq 4096` says DOES NOT FIT)."""
    from llmcalc.core.catalogue import load_hardware, load_model
    from llmcalc.dashboard import training
    from llmcalc.training.memory import training_memory
    from llmcalc.training.step import training_step

    s = {n: f.default for n, f in state.FIELDS.items()}
    m, h = load_model("llama-3.1-8b"), load_hardware("h100-sxm")
    st_ = training.step_result(m, h, s)
    sw = training_step(m, h, training.make_layout(s, dp=training.DP_SWEEP), global_batch=512, micro_batch=1,
                       seq=4096, recompute="selective")
    df = training.days_sweep(m, h, s, sw, st_)
    for gpus, fits in zip(df["GPUs"], df["fits"], strict=True):
        verdict = training_memory(m, h, training.make_layout(s, dp=int(gpus)), micro_batch=1, seq=4096,
                                  recompute="selective", global_batch=512).data["fits"]
        assert bool(fits) == bool(verdict), gpus
    assert not df.loc[df["GPUs"] == 1, "fits"].item()  # 8B with Adam on one 80 GB GPU: cannot fit


def test_training_days_chart_with_expert_parallel_leaves_out_dp_ep_does_not_divide():
    at = run_app(page="training", model="mixtral-8x7b", ep=8)
    assert "scaling DP fails" not in texts(at)
    assert "not divisible by EP 8 are left out" in texts(at)


@pytest.mark.parametrize("hw", ["b200", "h200-sxm", "mi300x", "l4", "tpu-v6e"])
def test_training_page_without_a_catalogue_price(hw):
    # the known crash (KeyError 'cost'): 13 of 16 accelerators have no catalogue price
    at = run_app(page="training", hw=hw, model="gpt2", dp=1)
    assert not at.error, errors(at)
    assert "enter a price" in " ".join(i.value for i in at.info)
    at = run_app(page="training", hw=hw, model="gpt2", dp=1, price=2)
    assert "cost" in {m.label for m in at.metric}


def test_typed_limits_equal_link_limits():
    for page in ("training", "inference", "serving", "model", "compare"):
        at = run_app(page=page)
        for box in at.number_input:
            name = box.key.removeprefix("w_")
            f = state.FIELDS[name]
            assert (box.min, box.max) == (f.lo, f.hi), (page, name, box.min, box.max)


def test_model_page_flop_table_adds_up_to_the_headline():
    from llmcalc.core.catalogue import load_model
    from llmcalc.model.flops import forward_flops

    at = run_app(model="llama-3.1-70b")
    table = next(d.value for d in at.dataframe if "einsum" in d.value.columns)
    assert "BLD,DV->BLV" in set(table["einsum"])  # the LM head row
    total = forward_flops(load_model("llama-3.1-70b"), batch=1, seq=4096).data["forward_flops"]
    assert table["FLOP, all layers"].sum() == pytest.approx(total, rel=1e-12)


def test_human_numbers():
    from llmcalc.dashboard.panels import exact, human

    assert human(5_480_714.20, "USD") == "5.48 M$"
    assert human(16.06e9, "B") == "16.1 GB"
    assert human(1.2e6, "days") == "1.2 × 10⁶ days"
    assert human(1_376_610_070 * 86400, "s") == "1.4 × 10⁹ days"
    assert exact(85_899_345_920, "B") == "85,899,345,920 B = 80 GiB"



@pytest.mark.parametrize(("value", "unit", "shown"), [(4e-11, "token/s", "4 × 10⁻¹¹ token/s"),
                                                      (1e-12, "s", "1 × 10⁻¹² s"), (3e-5, "%", "3 × 10⁻³%"),
                                                      (2e-4, "token/s", "2 × 10⁻⁴ token/s"), (1e-7, "", "1 × 10⁻⁷")])
def test_a_tiny_figure_never_reads_zero(value, unit, shown):
    """User test: an uploaded accelerator of 1 FLOP/s showed "output tokens/s per GPU 0.000 token/s" beside an
    answer line of 5.12e-11 tokens/s; a non-zero figure is never printed as zero."""
    from llmcalc.dashboard.panels import human

    assert human(value, unit) == shown
    assert human(0.448, "%") == "44.8%" and human(0.5, "token/s") == "0.500 token/s"  # ordinary ones unchanged


def test_presets_fill_inputs():
    from llmcalc.dashboard.presets import PRESETS

    at = run_app(page="inference")
    at.selectbox(key="preset_inference").set_value("RAG with long prompts").run()
    assert not at.exception
    assert at.number_input(key="w_prompt").value == PRESETS["RAG with long prompts"][1]["prompt"]
    assert at.query_params["prompt"] in (["16384"], "16384")  # and the link carries it


def test_qlora_preset_fills_the_adapter_inputs_and_memory_counts_them():
    """The QLoRA preset (Dettmers et al. 2023: 4-bit NF4 base, rank-64 adapters on every block linear, one GPU)
    fills the inputs; the answer line and the memory section are training_memory with those adapters (its QLoRA
    accounting is tested in test_train_memory.py), and no full-training step time is claimed for it."""
    from llmcalc.core.catalogue import load_hardware, load_model
    from llmcalc.dashboard.panels import human
    from llmcalc.dashboard.presets import PRESETS
    from llmcalc.training.layout import Layout
    from llmcalc.training.memory import LoRA, training_memory

    at = run_app(page="training", model="llama-2-70b", hw="a100-sxm-80gb")
    at.selectbox(key="preset_training").set_value("fine-tuning with QLoRA").run()
    assert not at.exception
    p = PRESETS["fine-tuning with QLoRA"][1]
    assert at.number_input(key="w_lora_rank").value == p["lora_rank"] == 64
    assert at.selectbox(key="w_base_bits").value == 4
    r = training_memory(load_model("llama-2-70b"), load_hardware("a100-sxm-80gb"), Layout(tp=1, pp=1, dp=1, zero=0),
                        micro_batch=1, seq=p["seq"], recompute="full", global_batch=p["gbs"],
                        lora=LoRA(64, ("q", "k", "v", "o", "gate", "up", "down"), 4))
    line = at.session_state["_llmcalc_answer"]
    assert "QLoRA (rank 64, 4-bit frozen base)" in line and "on 1 NVIDIA" in line, line
    assert f"{human(r.value('memory/total'), 'B')} of {human(r.data['usable_bytes'], 'B')} usable" in line, line
    assert at.session_state["_llmcalc_sections"]["Memory per GPU"] == "ok"
    assert any("Not computed for LoRA" in i.value for i in at.info)
    at = run_app(page="training", lora_rank=16, lora_targets="q,x")  # a bad target: a message beside that input
    assert "LoRA targets" in errors(at) and at.session_state["_llmcalc_sections"]["Chinchilla: compute-optimal "
                                                                                  "tokens"] == "ok"


def test_a_vs_b_deltas_say_which_side_is_better():
    from llmcalc.core.results import Figure
    from llmcalc.dashboard.compare import delta_table

    t = delta_table([Figure("time/step", 2.0, "s"), Figure("mfu", 0.4, "%"), Figure("total", 1e9, "param")],
                    [Figure("time/step", 1.0, "s"), Figure("mfu", 0.3, "%"), Figure("total", 2e9, "param")])
    assert list(t["verdict"]) == ["B better", "B worse", ""]  # shorter step, lower MFU, params: no better side


def test_a_vs_b_has_its_own_workload_and_costs():
    at = run_app(page="compare", hw="h100-sxm", hw_b="tpu-v5p", prompt_b=8192, batch_b=4)
    deltas = next(d.value for d in at.dataframe if "B / A" in d.value.columns)
    # a GPU against a TPU: the rows both sides share say "device" (the A and B columns keep each side's word)
    assert {"devices in total", "$ per million output tokens at $10.8/device-h"} & set(deltas["figure"])
    assert "devices in total" in set(deltas["figure"])
    assert at.number_input(key="w_prompt_b").value == 8192 and at.number_input(key="w_prompt").value == 1024


def test_upload_is_titled_by_its_file_and_can_be_b():
    at = run_app(page="compare")
    up = next(u for u in at.file_uploader if u.key == "upload_b") if hasattr(at.file_uploader[0], "key") else None
    if up is None:
        pytest.skip("this Streamlit's AppTest cannot address uploaders by key")
    up.upload("gpt2.yaml", (ROOT / "models" / "gpt2.yaml").read_bytes(), "application/x-yaml")
    at.run()
    assert not at.exception
    assert any(s.value.startswith("B: GPT-2") for s in at.subheader), [s.value for s in at.subheader]


def test_page_registry_is_one_line_per_page():
    import importlib

    from llmcalc.dashboard import pages

    assert [p.key for p in pages.PAGES] == list(state.PAGES)
    for p in pages.PAGES:
        assert p.group in pages.GROUPS
        assert callable(importlib.import_module(f"llmcalc.dashboard.{p.module}").render)


def _nodes(spec):
    """Every mapping in a Vega-Lite spec, depth first (layers, encodings, titles)."""
    if isinstance(spec, dict):
        yield spec
        for v in spec.values():
            yield from _nodes(v)
    elif isinstance(spec, list):
        for v in spec:
            yield from _nodes(v)


def _log_axes_without_zero(spec: dict) -> list[str]:
    """Problems of a Vega-Lite spec on log scales: a bar anchored at zero (no x2/y2: Vega-Lite stacks it from
    0, "Log scale domain includes zero", nothing drawn) or a data value that is zero or negative."""
    data = [v for vals in spec.get("datasets", {}).values() for v in vals]
    bad = []
    for node in _nodes(spec):
        enc, mark = node.get("encoding", {}), node.get("mark")
        mark = mark.get("type") if isinstance(mark, dict) else mark
        for ch in ("x", "y"):
            e = enc.get(ch, {})
            if isinstance(e, dict) and e.get("scale", {}).get("type") == "log":
                if mark == "bar" and ch + "2" not in enc:
                    bad.append(f"bar on a log {ch} anchored at zero")
                vals = [row[e["field"]] for row in data if e.get("field") in row]
                bad.extend(f"{e['field']} = {v} on a log scale" for v in vals if not (v is not None and v > 0))
    return bad


def test_a_vs_b_ratio_chart_has_no_zero_on_its_log_axis():
    import pandas as pd

    from llmcalc.dashboard import charts, compare

    df = pd.DataFrame({"figure": ["params", "headroom", "same", "gone"], "A": "", "B": "", "B / A": "",
                       "verdict": ["B worse", "B better", "", "B better"], "ratio": [3.0, -0.5, 1.0, 0.0]})
    spec = charts.ratio_bars(df).to_dict()
    assert _log_axes_without_zero(spec) == []
    shown = [r["figure"] for vals in spec["datasets"].values() for r in vals]
    assert shown == ["params", "same"]  # a ratio that is not positive stays in the table only
    # "same" (1×) is a bar of no length: a tick at each ratio shows it
    marks = {(lay["mark"]["type"] if isinstance(lay["mark"], dict) else lay["mark"]): lay.get("encoding", {})
             for lay in spec["layer"]}
    assert marks["tick"]["x"]["field"] == marks["bar"]["x"]["field"] and "x2" not in marks["tick"]
    # the page's own table for DeepSeek-V3 vs Mixtral 8x7B draws the same way
    from llmcalc.core.catalogue import load_hardware, load_model

    s = {n: f.default for n, f in state.FIELDS.items()}
    a = compare.scenario_figures(load_model("deepseek-v3"), load_hardware("h100-sxm"), state.scenario(s))[0]
    b = compare.scenario_figures(load_model("mixtral-8x7b"), load_hardware("h100-sxm"), state.scenario(s, "_b"))[0]
    assert _log_axes_without_zero(charts.ratio_bars(compare.delta_table(a, b)).to_dict()) == []


def test_serving_without_a_single_node_replica_says_so_once_and_plans_across_nodes():
    """DeepSeek-V3 (671 B parameters, 1.3 TB in bf16) exceeds 8 × 80 GB: serve() raises NoDeploymentError; the
    page says so once and answers with plan-serve's cheapest deployment across nodes (called here alike)."""
    from llmcalc.core.catalogue import load_hardware, load_model
    from llmcalc.inference.plan_serve import plan_serve

    at = run_app(page="serving", model="deepseek-v3")
    shown = [e.value for e in at.error] + [w.value for w in at.warning] + [c.value for c in at.caption]
    assert sum("no TP degree up to" in x for x in shown) == 1, shown
    b = plan_serve(load_model("deepseek-v3"), load_hardware("h100-sxm"), prompt=1024, output=256, ttft_s=2.0,
                   tpot_s=0.05, qps=10.0, weights=["bf16"], kv_dtypes=["bf16"]).data["ranked"][0]
    answer = at.session_state["_llmcalc_answer"]
    assert f"{b['gpus']:,} GPUs across nodes: {b['config']}" in answer


@pytest.mark.parametrize("page", ["plan", "rl", "inference", "serving", "training"])
def test_tables_read_as_people_write_them(page):
    """README: metrics read as people write them. Every table on these pages (but the figure tables, which put
    the exact SI value beside the human one on purpose) has headers in words and formatted numbers: no engine
    field names (ttft_s, latency_s) and no raw floats (4639887.0395)."""
    at = run_app(page=page)
    seen = 0
    for d in at.dataframe:
        df = d.value
        if "exact" in df.columns:
            continue
        seen += 1
        raw = [c for c in df.columns if "_" in str(c)]
        assert not raw, (page, raw)
        floats = [c for c in df.columns if str(df[c].dtype).startswith("float")]
        assert not floats, (page, floats, df.head(2).to_dict())
    assert seen, f"no table on the {page} page"


def test_rl_page_simulates_once_per_render_and_the_eta_chart_only_when_opened(monkeypatch):
    """Re-render speed (#11: ≤ 1 s): one rl_step event simulation per render; the η chart's six more run only
    while its expander is open, and then all six (η = 0, 1, 2, 4, 8, ∞)."""
    import llmcalc.rl.step as rl_step_module

    calls = []
    real = rl_step_module.rl_step
    monkeypatch.setattr(rl_step_module, "rl_step", lambda *a, **k: calls.append(k.get("staleness")) or real(*a, **k))
    at = run_app(page="rl")
    assert len(calls) == 1
    assert any(e.label.startswith("fully async throughput against η") for e in at.expander)
    calls.clear()
    at.session_state["rl_eta_open"] = True
    at.run()
    assert not at.exception
    assert sorted(calls[1:], key=str) == sorted([0, 1, 2, 4, 8, None], key=str)


def _specs(at) -> list[dict]:
    return [json.loads(e.proto.spec) for e in at.get("vega_lite_chart")]


def _titles(spec) -> list[str]:
    """Every title line in a spec (a list title is one line per item)."""
    out = []
    for node in _nodes(spec):
        t = node.get("title")
        if isinstance(t, dict):
            t = t.get("text")
        out.extend([t] if isinstance(t, str) else [x for x in t if isinstance(x, str)] if isinstance(t, list)
                   else [])
    return out


@pytest.mark.parametrize("page", ["model", "training", "plan", "rl", "inference", "serving", "compare"])
def test_every_chart_a_page_draws_is_valid_vega_lite(page, monkeypatch):
    """The pages hand Streamlit charts that skip Altair's schema check when serialised (charts.unchecked: ~0.1 s
    a chart per run, issue #11); the check happens here instead, on every chart each page draws (the RL page's
    η chart opened too), against Altair's Vega-Lite schema."""
    import jsonschema
    from streamlit.elements import vega_charts

    drawn = []
    real = vega_charts._convert_altair_to_vega_lite_spec
    monkeypatch.setattr(vega_charts, "_convert_altair_to_vega_lite_spec", lambda c: drawn.append(c) or real(c))
    at = run_app(page=page, model="llama-3.1-8b" if page == "rl" else "mixtral-8x7b", tp=2)
    if page == "rl":
        at.session_state["rl_eta_open"] = True
        at.run()
    assert drawn, f"no chart on the {page} page"
    for chart in drawn:
        try:
            type(chart).to_dict(chart, validate=True)
        except jsonschema.ValidationError as e:  # pragma: no cover - the message is the point
            pytest.fail(f"{page}: {chart.__class__.__name__} is not valid Vega-Lite: {e.message[:300]}")


def _drawn_charts(at) -> list[tuple[dict, dict]]:
    """Each chart a page drew as Streamlit sends it: (Vega-Lite spec, {dataset name: rows}); Streamlit moves the
    datasets out of the spec into Arrow tables."""
    import pyarrow as pa

    out = []
    for e in at.get("vega_lite_chart"):
        spec = json.loads(e.proto.spec)
        data = {k: list(v) for k, v in spec.get("datasets", {}).items()}
        data.update({d.name: pa.ipc.open_stream(d.data.data).read_all().to_pylist() for d in e.proto.datasets})
        out.append((spec, data))
    return out


def _units(spec: dict, data: dict, rows=None, group=None):
    """(unit spec, its rows, the id of its layer group) for every single-mark view of a spec: layers share their
    scales in Vega-Lite, views of a concat keep their own here (each page's concat resolves none but x)."""
    if isinstance(spec.get("data"), dict):
        d = spec["data"]
        rows = d["values"] if "values" in d else data[d["name"]]
    if "layer" in spec:
        for sub in spec["layer"]:
            yield from _units(sub, data, rows, group if group is not None else id(spec))
    elif any(k in spec for k in ("vconcat", "hconcat", "concat")):
        for sub in spec.get("vconcat", []) + spec.get("hconcat", []) + spec.get("concat", []):
            yield from _units(sub, data, rows, None)
    else:
        yield spec, rows or [], group if group is not None else id(spec)


def _colours_outside_their_domain(spec: dict, data: dict) -> list[str]:
    """Colour values a chart's data holds that its (shared) colour scale's fixed domain leaves out: Vega-Lite
    draws such a mark with no colour, i.e. not at all, and leaves it out of the legend."""
    units = list(_units(spec, data))
    domains: dict[int, set] = {}
    for unit, _, g in units:
        dom = unit.get("encoding", {}).get("color", {}).get("scale", {}).get("domain")
        if isinstance(dom, list):
            domains.setdefault(g, set()).update(dom)
    bad = []
    for unit, rows, g in units:
        field = unit.get("encoding", {}).get("color", {}).get("field")
        if field and g in domains:
            bad += [f"{field} = {v!r} outside {sorted(domains[g])}" for v in dict.fromkeys(r[field] for r in rows)
                    if v not in domains[g]]
    return bad


def _categories_that_may_lose_labels(spec: dict) -> list[str]:
    """Category (band) axes of a chart that can drop or squash labels in Streamlit: its theme sets
    ``labelOverlap: true`` on every axis (Vega then hides every other label of a crowded band axis), and it sizes
    a chart with ``autosize: fit``, so a number as the height of a chart with one row per category is the whole
    chart, titles, axes and legend included, and the rows get what is left (a 106 px chart under a two-line title:
    none). A category axis must keep every label, and a chart of rows must be sized per row (a step)."""
    bad = []
    for node in _nodes(spec):
        for ch, e in node.get("encoding", {}).items():
            axis = e.get("axis", {}) if isinstance(e, dict) else None  # null: no axis, no labels to lose
            if ch in ("x", "y") and e.get("type") in ("nominal", "ordinal") and axis is not None \
                    and axis.get("labelOverlap") is not False:
                bad.append(f"{ch} = {e.get('field')}: labelOverlap not off")
    ys = [n.get("encoding", {}).get("y") for n in [spec, *spec.get("layer", [])]]  # a concat's views: own size
    if any(isinstance(y, dict) and y.get("type") in ("nominal", "ordinal") for y in ys) \
            and isinstance(spec.get("height"), (int, float)):
        bad.append(f"rows of categories in a chart {spec['height']} px high in all")
    return bad


@pytest.mark.parametrize("page", ["model", "training", "plan", "rl", "inference", "serving", "compare"])
def test_every_chart_draws_every_category_and_colour(page):
    """User test in a browser (30 Nov 2026): the memory charts of the training, inference and plan pages drew
    only the usable/physical lines (the lines' colour domain, shared by the layered bars, left every component
    out); the serving page's cost chart drew no bars (two rows in 106 px under a two-line title), and its
    devices chart, the model breakdown and the A vs B ratios dropped every other label."""
    at = run_app(page=page, model="llama-3.1-8b" if page == "rl" else "mixtral-8x7b", tp=2)
    if page == "rl":
        at.session_state["rl_eta_open"] = True
        at.run()
    drawn = _drawn_charts(at)
    assert drawn
    for spec, data in drawn:
        assert _colours_outside_their_domain(spec, data) == [], _titles(spec)
        assert _categories_that_may_lose_labels(spec) == [], _titles(spec)
    if page in ("training", "inference", "plan"):  # the memory chart: components and both lines in one scale
        mem = [(u, rows) for spec, data in drawn for u, rows, _ in _units(spec, data)
               if u.get("encoding", {}).get("color", {}).get("field") == "component"]
        assert mem, f"no memory chart on the {page} page"
        for unit, rows in mem:
            comps = list(dict.fromkeys(r["component"] for r in rows))
            assert "weights" in comps
            scale, legend = unit["encoding"]["color"]["scale"], unit["encoding"]["color"]["legend"]
            colours = dict(zip(scale["domain"], scale["range"], strict=True))
            assert colours["usable"] == "red" and colours["physical"] == "#888888"
            assert not {"red", "#888888"} & {colours[c] for c in comps}
            assert legend["values"] == comps


def test_memory_charts_draw_the_usable_memory_the_verdict_uses():
    """The red line is the usable memory the fit verdict compares against (H100 80 GB: 79.6 GiB physical,
    10% reserved -> 71.7 GiB usable), the physical capacity labelled beside it."""
    from llmcalc.core.catalogue import load_hardware, load_model
    from llmcalc.dashboard import training
    from llmcalc.inference.kv import fit

    s = {n: f.default for n, f in state.FIELDS.items()}
    usable = training.memory_result(load_model("llama-3.1-8b"), load_hardware("h100-sxm"), s).data["usable_bytes"]
    text = json.dumps(_specs(run_app(page="training")), ensure_ascii=False)
    assert f"red: usable {usable / 2**30:,.1f} GiB" in text and "grey: physical 79.6 GiB" in text
    usable = fit(load_model("llama-3.1-8b"), load_hardware("h100-sxm")).value("usable_bytes_per_gpu")
    text = json.dumps(_specs(run_app(page="inference")), ensure_ascii=False)
    assert f"red: usable {usable / 2**30:,.1f}" in text and "grey: physical 79.6" in text
    assert "capacity 79.6 GiB" not in text


def test_narrow_charts_keep_whole_labels_and_titles():
    """Accelerator names ('NVIDIA H100 SXM5 80GB') are whole on the comparison charts (horizontal bars, label
    limit wider than the name); titles of half- and third-width charts wrap into short lines."""
    at = run_app(page="serving")
    acc = [sp for sp in _specs(at) if sp.get("encoding", {}).get("y", {}).get("field") == "accelerator"]
    assert len(acc) == 2
    assert all(sp["encoding"]["y"]["axis"]["labelLimit"] >= 400 for sp in acc)
    for sp in acc:
        assert all(len(line) <= 36 for line in _titles(sp)), _titles(sp)
    comm = [sp for sp in _specs(run_app(page="training")) if any("communication per" in t for t in _titles(sp))]
    assert comm and all(len(line) <= 36 for line in _titles(comm[0])), _titles(comm[0])


def _chart_titles(spec) -> list[str]:
    """The lines of a spec's chart titles (the top level, layers, concatenated charts), not its axis titles."""
    out = []
    for node in [spec, *spec.get("layer", []), *spec.get("vconcat", []), *spec.get("hconcat", [])]:
        t = node.get("title")
        t = t.get("text") if isinstance(t, dict) else t
        out += [t] if isinstance(t, str) else list(t or [])
    return out


@pytest.mark.parametrize("page", ["training", "inference", "serving", "plan", "rl"])
def test_chart_titles_wrap_into_short_lines(page):
    """User test: Vega draws a title on one line and cuts it at the chart's edge; "training days vs GPUs (DP scaled;
    each point its own step model, …)" and "TP 1 replica up to its highest sustainable rate …" lost their ends on
    a phone and in print. Every chart title line is at most 48 characters (charts.title_lines wraps at 44)."""
    at = run_app(page=page, model="mixtral-8x7b" if page != "rl" else "llama-3.1-8b")
    if page == "rl":
        at.session_state["rl_eta_open"] = True
        at.run()
    lines = [line for spec in _specs(at) for line in _chart_titles(spec)]
    assert lines, f"no chart title on the {page} page"
    assert [line for line in lines if len(line) > 48] == []


@pytest.mark.parametrize("page", ["training", "inference", "serving", "plan", "rl", "compare"])
def test_tpu_pages_never_say_gpu(page):
    """A TPU is a 'chip' (Google's word): labels, metrics, notes, derivations, tables and chart text of a TPU page
    use it, including the engine's own labels ('GPU-hours', 'KV per GPU') shown there. A vs B with two TPUs (user
    test: its messages said "needs 2.80 TB per GPU", its delta table "peak per GPU", "GPUs in total")."""
    import re

    b = {"hw_b": "tpu-v4", "model_b": "llama-3.1-70b", "model": "llama-3.1-70b"} if page == "compare" else {}
    at = open_formulas(run_app(**{"page": page, "hw": "tpu-v5e", "model": "gpt2", **b}))
    assert page != "compare" or len(at.error) >= 2  # the two sides' "does not fit" messages are checked too
    assert at.code, "the derivations are checked too"
    shown = []
    for kind in ("header", "subheader", "caption", "markdown", "info", "warning", "error", "metric",
                 "number_input", "selectbox", "toggle", "expander", "code"):
        for e in at.get(kind):
            shown += [v for v in (getattr(e, "value", None), getattr(e, "label", None)) if isinstance(v, str)]
    shown += [json.dumps(sp) for sp in _specs(at)]
    shown += [str(c) for d in at.dataframe for c in d.value.columns]
    shown += [str(v) for d in at.dataframe for v in d.value.astype(str).to_numpy().ravel()]
    hits = [x[:120] for x in shown if re.search(r"\bGPU", x)]
    assert not hits, hits


@pytest.mark.parametrize("page", ["inference", "serving"])
def test_fp8_says_which_compute_in_the_clis_terms(page):
    """`llmcalc infer --weights fp8` computes in bf16 (--activations defaults to bf16); the dashboard's fp8 is
    W8A8 unless weight-only is on: each page says which, with the matching CLI command."""
    from llmcalc.cli.inference import ACT_OPT

    assert ACT_OPT.default == "bf16"  # the CLI's default compute for --weights fp8
    w8a8 = " ".join(i.value for i in run_app(page=page, dtype="fp8").info)
    assert "fp8 weights and fp8 compute (W8A8)" in w8a8 and "--activations fp8" in w8a8
    wo = " ".join(i.value for i in run_app(page=page, dtype="fp8", weight_only=1).info)
    assert "fp8 weights, bf16 compute (weight-only) — as `llmcalc infer --weights fp8`" in wo


@pytest.mark.parametrize("data, says", [(b"name: caf\xe9\n", "not UTF-8 text"),
                                        (b'{"model_type": "gpt2", "n_embd": 768, "n_embd": 1}', "duplicate key"),
                                        (b'{"model_type": "gpt2", "n_embd": NaN}', "invalid JSON")])
def test_an_upload_is_read_as_a_file_is(data, says):
    """An upload went through a lenient path: undecodable bytes became U+FFFD, and json kept the last of two
    equal keys and read NaN (user test, 30 Nov 2026); it is now read exactly as the CLI reads a file."""
    from llmcalc.core.errors import SpecError
    from llmcalc.dashboard.main import uploaded_hardware, uploaded_model

    name = "config.json" if data.startswith(b"{") else "m.yaml"
    for read in (uploaded_model, uploaded_hardware) if name == "m.yaml" else (uploaded_model,):
        with pytest.raises(SpecError, match=says):
            read(_Bytes(name, data))


class _Bytes:
    def __init__(self, name: str, data: bytes):
        self.name, self._data = name, data

    def getvalue(self) -> bytes:
        return self._data


@pytest.mark.parametrize("page", list(state.PAGES))
def test_every_table_has_a_print_twin_with_every_row(page):
    """User test: printed, a st.dataframe is its canvas cut at the frame (the plan printed 16 of 20 layouts, 7 of 11
    columns); each table comes with a plain-HTML twin that only print CSS shows (panels.dataframe). A page that
    draws st.dataframe directly fails here."""
    at = run_app(page=page)
    twins = [h.proto.body for h in at.get("html") if 'class="llmcalc-print"' in h.proto.body]
    assert len(twins) == len(at.dataframe), (len(twins), len(at.dataframe))
    for df, html in zip(at.dataframe, twins, strict=True):
        assert html.count("<tr>") == len(df.value) + 1  # the header and every row


def test_rl_split_chart_counts_whole_devices():
    """User test: the split chart's axis read "2.0 2.5 3.0 … 8.0 rollout GPUs" (Mixtral on 16 B200); its ticks are
    whole numbers, written as such."""
    at = run_app(page="rl", model="mixtral-8x7b", hw="b200", rl_gpus=16, rl_algo="ppo", rl_eta=0)
    split = [sp for sp in _specs(at) if "async throughput against the split" in json.dumps(sp.get("title"))]
    assert len(split) == 1
    line = split[0].get("layer", [split[0]])[0]  # the bound's line (a dashed rule at the chosen split is layered)
    assert line["encoding"]["x"]["axis"] == {"tickMinStep": 1, "format": "d"}


def test_a_vs_b_never_calls_a_layout_that_does_not_fit_better():
    """User test: B = DeepSeek-V3 on 8 GB200 (TP 8) has no room for its KV cache ("latencies below are
    hypothetical"), yet the delta table called B better on TPOT and counted it in the answer line. Figures timed on
    a layout that does not fit get no verdict (and a grey bar); the memory it needs is still compared."""
    at = run_app(page="compare", model_b="deepseek-v3", hw_b="gb200", tp_b=8, pp_b=4, dp_b=64)
    deltas = next(d.value for d in at.dataframe if "B / A" in d.value.columns)
    verdicts = dict(zip(deltas["figure"], deltas["verdict"], strict=True))
    tpot = next(f for f in verdicts if f.startswith("TPOT"))
    assert verdicts[tpot] == verdicts["TTFT (prefill) (compute-bound)"] == "none: B does not fit"
    assert verdicts["output tokens/s per GPU"] == "none: B does not fit"
    assert verdicts["peak per GPU (worst stage)"] == "B worse"  # training memory fits and is compared
    assert "TPOT" not in at.session_state["_llmcalc_answer"]
    import pandas as pd

    from llmcalc.dashboard import charts

    spec = charts.ratio_bars(pd.DataFrame({"figure": [tpot], "A": ["5.64 ms"], "B": ["4.07 ms"], "B / A": ["0.722×"],
                                           "verdict": ["none: B does not fit"], "ratio": [0.722]})).to_dict()
    assert [v["who"] for vals in spec["datasets"].values() for v in vals] == ["no better side"]


def test_inference_answer_for_one_output_token_claims_no_decode_rate():
    """User test: with output tokens = 1 the answer read "first token in 18.4 ms, then 177 tokens/s per request
    (TPOT 5.64 ms)", though the request ends at its first token (end-to-end = TTFT)."""
    at = run_app(page="inference", gen=1)
    text = at.session_state["_llmcalc_answer"]
    ttft = metric(at, "TTFT (prefill) (compute-bound)")
    assert text.endswith(f"its one output token in {ttft} (prefill only, no decode)"), text
    assert metric(at, "end-to-end latency") == ttft


def test_ratio_chart_leaves_its_bars_room_on_a_phone():
    """User test: on a 390 px phone the A vs B ratio chart drew its figure names only (a fixed 400 px label limit
    took the whole width; bars, axis and legend off the edge). The limit is 45% of the chart's width, up to 400."""
    import pandas as pd

    from llmcalc.dashboard import charts

    spec = charts.ratio_bars(pd.DataFrame({"figure": ["step time"], "A": ["1 s"], "B": ["2 s"], "B / A": ["2×"],
                                           "verdict": ["B worse"], "ratio": [2.0]})).to_dict()
    limits = {json.dumps(lay["encoding"]["y"]["axis"]["labelLimit"]) for lay in spec["layer"]}
    assert limits == {json.dumps({"expr": "min(400, max(80, containerSize()[0] * 0.45))"})}
    columns = {json.dumps(lay["encoding"]["color"]["legend"]["columns"]) for lay in spec["layer"]}
    assert columns == {json.dumps({"expr": "containerSize()[0] < 400 ? 2 : 3"})}  # "no better side" ran off too


def test_memory_by_layout_legend_wraps_on_a_phone():
    """User test: on a 390 px phone the memory-by-layout legend (one row of every component) ran ~80 px off the
    chart's edge ("activations" cut); below 600 px it is two entries a row."""
    import pandas as pd

    from llmcalc.dashboard import charts

    df = pd.DataFrame({"layout": ["chosen"] * 4, "component": ["weights", "gradients", "optimizer states",
                                                                "activations"], "bytes": [1e9, 1e9, 2e9, 3e9]})
    spec = charts.memory_layouts(df, 80 * 2**30, "GPU", 72 * 2**30).to_dict()
    legends = [lay["encoding"]["color"].get("legend") for lay in spec["layer"] if "color" in lay.get("encoding", {})]
    assert {"expr": "containerSize()[0] < 600 ? 2 : 4"} in [lg.get("columns") for lg in legends if lg]
