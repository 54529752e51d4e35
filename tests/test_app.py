"""The Streamlit dashboard, run headless with streamlit.testing.v1.AppTest (no browser).

Expected numbers are published counts (sources in each test) or, for "the dashboard shows what the
calculator says", the calculator called here with the same inputs: the dashboard must not compute.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
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


def run_app(**params) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=30)
    for k, v in params.items():
        at.query_params[k] = str(v)
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
    s, notes = state.decode({"page": "training", "model": "gpt2", "tp": "4", "mfu": "0.5", "causal": "1"})
    assert notes == []
    assert (s["page"], s["model"], s["tp"], s["mfu"], s["causal"]) == ("training", "gpt2", 4, 0.5, True)
    assert state.encode(s) == {"page": "training", "model": "gpt2", "causal": "1", "tp": "4", "mfu": "0.5"}
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
    # the formula panel carries the same text as `llmcalc params --explain`
    assert param_breakdown(load_model("llama-3.1-8b")).explain() in texts(at)
    assert not at.error


def test_model_page_flops_table_in_einsum_notation():
    at = run_app(model="gpt2", seq=1024)
    assert f"exactly {GPT2:,} parameters" in texts(at)
    table = next(d.value for d in at.dataframe if "einsum" in d.value.columns)
    assert "BLD,DHK->BLHK" in set(table["einsum"])  # q projection
    assert "BLHK,BMHK->BHLM" in set(table["einsum"])  # attention scores
    assert (table["layers"] == 12).all()


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
    assert {"step time", "MFU (model FLOPs, with attention)", "peak per GPU (worst stage)"} <= labels
    assert len(at.get("vega_lite_chart")) >= 3  # days vs GPUs, memory vs capacity, comms per parallelism


def test_training_layout_that_does_not_divide_is_an_error_message():
    at = run_app(page="training", tp=3)
    assert "--tp 3 does not divide the 32 attention heads of Llama-3.1-8B" in errors(at)


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
    assert metric(at, "KV per GPU (tp 2, pp 1)") == fmt(327_680 * (1024 + 256) / 2, "B")
    assert len(at.get("vega_lite_chart")) >= 4  # memory, roofline, latency and throughput vs batch
    sweep = next(d.value for d in at.dataframe if "tokens_per_s_per_gpu" in d.value.columns)
    assert list(sweep["batch"]) == [2**i for i in range(9)]  # 1 … 256, the default sweep


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
    assert "scenario B, training: --tp 3 does not divide" in errors(at)
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
