"""Training efficiency per accelerator, its calibration, the memory guards and ``llmcalc calibrate``.

Calibration and test rows are kept apart (llmcalc/validation/training_cases.py, role "calibrate" / "test"):
- A100 matmul, attention_unfused and the GEMM half width are fitted on Korthikanti et al. 2022 Table 5's 175B and
  22B selective rows and Narayanan et al. 2021 Table 1's 3.6B row, then A100 attention_flash on MosaicML's A100
  MPT 7B/1B rows at 32K tokens; H100 matmul and attention_flash jointly on every second row of the Megatron-Core
  r0.8.0 H100 table (1.7B, 16B, 70B, 177B, 462B) and of MosaicML's H100 table (first, third, ... row);
- everything else below is held out. Bands are the ones the source cases state (shared/reference:
  Korthikanti ±10%, Narayanan Table 1 ±15% calibrated, Megatron-Core TF/s ±12% and MFU ±5 points).
"""

import json

import pytest
from conftest import one_line_error
from typer.testing import CliRunner

from llmcalc.cli import app
from llmcalc.core.catalogue import load_hardware, load_model
from llmcalc.core.efficiency import GEMM_HALF_WIDTH, TrainingEfficiency, load_profile, training_efficiency
from llmcalc.training.layout import Layout
from llmcalc.training.memory import training_memory
from llmcalc.training.step import training_step
from llmcalc.validation import training_cases as tc
from llmcalc.validation.calibrate import Measurement, fit, profile_yaml

runner = CliRunner()
H100, A100 = load_hardware("h100-sxm"), load_hardware("a100-sxm-80gb")
CASES = {c.id: c for c in tc.CASES}


def _pred(case_id):
    c = CASES[case_id]
    m = tc.measurement(c)
    return m, m.predict(training_efficiency(load_hardware(c.hardware)))


@pytest.mark.parametrize("case_id", sorted(tc.REFERENCE_IDS))
def test_reference_rows_land_inside_their_bands(case_id):
    """The issue's acceptance rows (shared/reference), one set of defaults, published layouts. Korthikanti's two
    selective rows and Megatron-Core's 70B row are in the calibration set (in-sample); every other row here is held
    out."""
    c = CASES[case_id]
    m, pred = _pred(case_id)
    assert m.step_time_s / pred - 1 == pytest.approx(0, abs=c.band), (case_id, pred, m.step_time_s)


@pytest.mark.parametrize("case_id,mfu", [("mcore-7.1b", 0.47), ("mcore-70b", 0.42)])
def test_megatron_core_h100_mfu_within_5_points(case_id, mfu):
    """rl-and-planner-cases.yaml plan-mcore-h100-weak-*: 'MFU within ±5 points'. 7.1B is held out; 70B is one of the
    H100 calibration rows (every second row of the table)."""
    c = CASES[case_id]
    m, lay = tc.gpt_model(*c.model), Layout(**c.layout)
    r = training_step(m, H100, lay, global_batch=c.global_batch, seq=4096, gpus=lay.gpus, tp_comm_overlap=True,
                      overlap_param_gather=True)  # the README's --overlap-param-gather (distributed optimizer)
    assert r.data["mfu"] == pytest.approx(mfu, abs=0.05)
    assert r.data["fits"] is True  # the published layout fits (distributed optimizer, 18 B/param accounting)


def test_shipped_values_are_the_fit_of_the_calibration_rows():
    """The hardware YAML's numbers are what the least-squares fit of the calibration rows gives (not hand-tuned):
    refit from other starting points, in the stated order, and compare to the shipped 3 significant digits."""
    from dataclasses import replace

    def cal(hw, word):
        return [tc.measurement(c) for c in tc.CASES if c.role == "calibrate" and c.hardware == hw
                and word in c.source]

    shipped = training_efficiency(A100)
    a = fit(cal("a100-sxm-80gb", "et al."), replace(shipped, matmul=0.5, attention_unfused=0.3, half_width=50.0),
            ("matmul", "attention_unfused", "half_width")).efficiency
    assert a.matmul == pytest.approx(shipped.matmul, rel=2e-3)
    assert a.attention_unfused == pytest.approx(shipped.attention_unfused, rel=2e-3)
    assert a.half_width == pytest.approx(GEMM_HALF_WIDTH, rel=3e-3)
    a2 = fit(cal("a100-sxm-80gb", "MosaicML"), replace(a, attention_flash=0.6), ("attention_flash",)).efficiency
    assert a2.attention_flash == pytest.approx(shipped.attention_flash, rel=3e-3)
    h_shipped = training_efficiency(H100)
    h = fit(cal("h100-sxm", ""), replace(h_shipped, matmul=0.3, attention_flash=0.5, half_width=a.half_width),
            ("matmul", "attention_flash")).efficiency
    assert h.matmul == pytest.approx(h_shipped.matmul, rel=3e-3)
    assert h.attention_flash == pytest.approx(h_shipped.attention_flash, rel=3e-3)
    assert training_efficiency(load_hardware("h200-sxm")).as_dict() | {"origin": "", "source": ""} == \
        h_shipped.as_dict() | {"origin": "", "source": ""}  # H200: the same die, the H100 calibration


def test_calibration_and_test_rows_are_disjoint_and_named():
    roles = {c.role for c in tc.CASES}
    assert roles == {"calibrate", "test"}
    test_ids = {c.id for c in tc.CASES if c.role == "test"}
    assert {"mcore-7.1b", "narayanan-1t", "narayanan-1.7b", "korthikanti-1t-selective"} <= test_ids
    # every second row of each H100 table calibrates, the others are held out (1.7B, 16B, 70B, ... calibrate)
    for table_ in (tc.MC, tc.MOSAIC):
        rows = [c for c in tc.CASES if c.source == table_ and c.hardware == "h100-sxm"]
        assert [c.role for c in rows] == ["calibrate" if i % 2 == 0 else "test" for i in range(len(rows))]


def test_thin_gemms_reach_less_of_the_peak():
    """Layouts that differ only in TP are not tied: D/tp = 8192/8 = 1024 vs 8192/2 = 4096 → matmul efficiency
    0.578·1024/(1024+168) vs 0.578·4096/(4096+168) (hand derivation of the stated width term)."""
    m = load_model("llama-3.1-70b")
    e = training_efficiency(H100)
    r8 = training_step(m, H100, Layout(tp=8, dp=1), global_batch=8, seq=4096, check_memory=False)
    r2 = training_step(m, H100, Layout(tp=2, dp=4), global_batch=8, seq=4096, check_memory=False)
    assert r8.data["matmul_efficiency"] == pytest.approx(e.matmul * 1024 / (1024 + GEMM_HALF_WIDTH), rel=1e-12)
    assert r2.data["matmul_efficiency"] == pytest.approx(e.matmul * 4096 / (4096 + GEMM_HALF_WIDTH), rel=1e-12)
    assert r8.data["matmul_efficiency"] < r2.data["matmul_efficiency"]


def test_flash_attention_executes_half_of_the_causal_rectangle():
    """FlashAttention-2 §3.1.1 skips blocks above the diagonal; unfused kernels run the full L×L. With one flat
    efficiency e for all kernels, the compute-time difference is exactly half the attention core's 3 passes
    (forward + 2 backward) of 2·2·B·L²·H·K FLOPs per layer, at e × peak (pp = 1, one GPU)."""
    m = load_model("llama-3.1-8b")
    L, H, K, layers = 4096, 32, 128, 32
    kw = dict(global_batch=1, seq=L, compute_efficiency=0.5, check_memory=False)
    flash = training_step(m, H100, Layout(), attention="flash", **kw).data["compute_s"]
    unfused = training_step(m, H100, Layout(), attention="unfused", **kw).data["compute_s"]
    core = layers * 2 * (2 * L * L * H * K)  # scores + values, forward, full rectangle
    assert unfused - flash == pytest.approx(3 * core / 2 / (989e12 * 0.5), rel=1e-9)


def test_every_step_says_which_efficiency_and_source():
    r = training_step(load_model("llama-3.1-8b"), H100, Layout(dp=8, zero=1), global_batch=64, seq=4096)
    assert r.data["efficiency"]["origin"] == "h100-sxm hardware catalogue entry"
    assert "Megatron-Core" in r.data["efficiency"]["source"]
    assert any(n.startswith("efficiency: matmul 0.578") for n in r.assumptions)


def test_accelerator_without_a_measurement_says_it_uses_a_generation_default():
    for name, ref in (("b200", "H100"), ("tpu-v5p", "TPU v4"), ("l40s", "H100")):
        e = training_efficiency(load_hardware(name))
        assert e.origin.startswith("generation default: no published training measurement") and ref in e.origin


def test_mi300x_efficiency_reproduces_the_measured_h200_ratio():
    """hardware/mi300x.yaml: derived from one public single-GPU measurement (alpharomercoma/MI300X-vs-H200
    REPORT.md: 8B BF16 training, H200 1.32x to 1.40x faster than MI300X). The same one-GPU step on both must come
    out 1.32-1.40x slower on the MI300X, and MI325X (same compute) must carry the same set."""
    m = load_model("llama-3.1-8b")
    kw = dict(global_batch=8, seq=4096, micro_batch=1, check_memory=False)
    t = {n: training_step(m, load_hardware(n), Layout(), **kw).data["step_time_s"] for n in ("mi300x", "h200-sxm")}
    assert 1.32 <= t["mi300x"] / t["h200-sxm"] <= 1.40
    a, b = training_efficiency(load_hardware("mi300x")), training_efficiency(load_hardware("mi325x"))
    assert (a.matmul, a.attention_flash, a.attention_unfused) == (b.matmul, b.attention_flash, b.attention_unfused)
    assert "alpharomercoma/MI300X-vs-H200" in a.source


def test_moe_layers_use_the_moe_multiplier():
    """Mixtral: expert matmuls run at moe × the dense efficiency; with moe = 1 the efficiency is the dense one."""
    from dataclasses import replace

    m = load_model("mixtral-8x7b")
    te = training_efficiency(H100)
    kw = dict(global_batch=8, seq=4096, check_memory=False)
    moe = training_step(m, H100, Layout(tp=8, dp=1), efficiency=te, **kw).data["matmul_efficiency"]
    dense = training_step(m, H100, Layout(tp=8, dp=1), efficiency=replace(te, moe=1.0), **kw).data["matmul_efficiency"]
    assert dense == pytest.approx(te.matmul * 512 / (512 + GEMM_HALF_WIDTH), rel=1e-12)
    assert moe < dense * 0.9


# ---------------------------------------------------------------- guards


def test_step_that_does_not_fit_says_so_first():
    """The issue's own example: Llama-3.1-70B, TP8 PP2 on 64 H100, global batch 64, seq 4096 — `memory` says it
    does not fit, so `step` must not print a plain MFU."""
    args = ["step", "llama-3.1-70b", "-H", "h100-sxm", "--gpus", "64", "--tp", "8", "--pp", "2", "--global-batch",
            "64", "--seq", "4096"]
    out = runner.invoke(app, args)
    assert out.exit_code == 0
    first = out.output.splitlines()[0]
    assert first.startswith("DOES NOT FIT")
    mfu_rows = [ln for ln in out.output.splitlines() if ln.startswith("MFU")]
    assert mfu_rows and all("HYPOTHETICAL" in ln for ln in mfu_rows)
    d = json.loads(runner.invoke(app, [*args, "--json"]).output)
    assert d["fits"] is False
    mem = json.loads(runner.invoke(app, ["memory", "llama-3.1-70b", "--tp", "8", "--pp", "2", "--dp", "4",
                                         "--seq", "4096", "--global-batch", "64", "--json"]).output)
    assert mem["fits"] is False and d["memory_bytes_needed"] == mem["total_bytes"]


def test_step_that_fits_prints_plain_mfu():
    r = training_step(load_model("llama-3.1-8b"), H100, Layout(dp=8, zero=2), global_batch=64, seq=4096)
    assert r.data["fits"] is True and not r.title.startswith("DOES NOT FIT")
    assert r["mfu"].name == "MFU (model FLOPs, with attention)" and r["mfu_6nd"].name == "MFU (model FLOPs, 6·N·D)"


def test_train_mfu_above_100_percent_is_a_user_error():
    # 6·8.03e9·4e6 FLOPs in 2.5 s on 64 × 989 TFLOP/s = 121.8% (the example)
    one_line_error(["train", "llama-3.1-8b", "--tokens", "1T", "--gpus", "64", "--step-time", "2.5",
                    "--batch-tokens", "4M"], "--step-time 2.5", "--batch-tokens 4e+06", "--gpus 64", "121.8%")


def test_achieved_rate_above_the_dense_peak_is_a_user_error():
    one_line_error(["train", "llama-3.1-8b", "--tokens", "1T", "--gpus", "64", "--achieved-tflops", "1000"],
                   "--achieved-tflops 1000", "989")


def test_train_checks_a_memory_floor():
    """405B params × 18 B / 64 GPUs = 114 GB > 77 GB usable: no layout of 64 H100s can hold the model states."""
    out = runner.invoke(app, ["train", "llama-3.1-405b", "--tokens", "1T", "--gpus", "64", "--json"])
    d = json.loads(out.output)
    assert d["fits"] is False
    assert d["memory_floor_bytes"] == pytest.approx(18 * 405_853_388_800 / 64, rel=1e-3)
    ok = json.loads(runner.invoke(app, ["train", "llama-3.1-405b", "--tokens", "1T", "--gpus", "1024",
                                        "--json"]).output)
    assert ok["fits"] is True


def test_memory_keeps_the_same_reserve_as_fit_and_serve():
    """Llama-3.1-8B, DP 8, ZeRO-1, seq 4096: 80.6 GB needed of 85.5 GB — above the 77.0 GB left after the 10%
    reserve that fit/serve keep, so `memory` must not say it fits; with --reserve 0 it does."""
    m = load_model("llama-3.1-8b")
    kw = dict(seq=4096, recompute="selective", global_batch=512)
    r = training_memory(m, H100, Layout(dp=8, zero=1), **kw)
    assert H100.memory_bytes * 0.9 < r.data["total_bytes"] < H100.memory_bytes
    assert r.data["fits"] is False and r.title.startswith("DOES NOT FIT")
    assert training_memory(m, H100, Layout(dp=8, zero=1), reserve=0.0, **kw).data["fits"] is True
    out = runner.invoke(app, ["memory", "llama-3.1-8b", "--dp", "8", "--zero", "1", "--seq", "4096", "--recompute",
                              "selective", "--global-batch", "512", "--reserve", "0", "--json"])
    assert json.loads(out.output)["fits"] is True


def test_default_optimizer_is_megatron_core_18_bytes_zero_paper_16_on_request():
    """Megatron-Core bf16 (fp32 main grads, no distributed optimizer): 2 + 4 + 12 = 18 B/param; ZeRO paper 16 B."""
    m = load_model("llama-3.1-8b")
    d18 = training_memory(m, H100, Layout(), seq=128).data["first_stage"]
    d16 = training_memory(m, H100, Layout(), seq=128, optimizer="adam").data["first_stage"]
    n = 8_030_261_248
    assert d18["weights_bytes"] + d18["grads_bytes"] + d18["optimizer_bytes"] == pytest.approx(18 * n, rel=1e-12)
    assert d16["weights_bytes"] + d16["grads_bytes"] + d16["optimizer_bytes"] == pytest.approx(16 * n, rel=1e-12)


def test_mfu_conventions_both_shown_and_6nd_is_6nd():
    m = load_model("llama-3.1-8b")
    r = training_step(m, H100, Layout(dp=8, zero=2), global_batch=64, seq=4096)
    d = r.data
    assert d["six_nd_flops"] == pytest.approx(6 * 8_030_261_248 * 64 * 4096, rel=1e-12)
    assert d["mfu_6nd"] == pytest.approx(d["six_nd_flops"] / (d["step_time_s"] * 8 * 989e12), rel=1e-12)
    assert d["mfu"] > d["mfu_6nd"]  # attention FLOPs (12·L·H·Q·T per token, PaLM App. B) on top


# ---------------------------------------------------------------- calibrate


def _synthetic(te):
    """Four measured layouts of different shapes, 'measured' at the efficiencies ``te``."""
    m8, m70 = load_model("llama-3.1-8b"), load_model("llama-3.1-70b")
    layouts = [(m8, Layout(tp=1, dp=8), 2048), (m8, Layout(tp=4, dp=2), 16384), (m70, Layout(tp=8, dp=1), 8192),
               (m70, Layout(tp=8, pp=2, dp=1), 4096)]
    out = []
    for m, lay, seq in layouts:
        proto = Measurement(m, H100, lay, 16, 1.0, seq=seq)
        out.append(Measurement(m, H100, lay, 16, proto.predict(te), seq=seq, label=f"{m.name} {lay}"))
    return out


def test_calibrate_recovers_known_efficiencies_from_synthetic_measurements():
    from dataclasses import replace

    truth = replace(training_efficiency(H100), matmul=0.61, attention_flash=0.42)
    rows = _synthetic(truth)
    f = fit(rows, training_efficiency(H100), ("matmul", "attention_flash"))
    assert f.efficiency.matmul == pytest.approx(0.61, rel=1e-4)
    assert f.efficiency.attention_flash == pytest.approx(0.42, rel=1e-4)
    assert f.rms_log_residual < 1e-6


def test_calibrate_cli_writes_a_profile_that_every_training_command_reads(tmp_path):
    from dataclasses import replace

    truth = replace(training_efficiency(H100), matmul=0.45)
    rows = _synthetic(truth)
    spec = tmp_path / "measured.yaml"
    lines = ["hardware: h100-sxm", "fit: [matmul]", "measurements:"]
    for r in rows:
        lines.append(f"  - {{model: {r.model.name}, tp: {r.layout.tp}, pp: {r.layout.pp}, dp: {r.layout.dp}, "
                     f"sp: {str(r.layout.sp).lower()}, "
                     f"global_batch: 16, seq: {r.seq}, step_time: '{r.step_time_s!r} s'}}")
    spec.write_text("\n".join(lines) + "\n")
    prof = tmp_path / "profile.yaml"
    out = runner.invoke(app, ["calibrate", "--measurements", str(spec), "-o", str(prof)])
    assert out.exit_code == 0, out.output
    assert "residual" in out.output and "0.45" in out.output
    te = load_profile(str(prof), H100)
    assert te.matmul == pytest.approx(0.45, rel=1e-4)
    step = json.loads(runner.invoke(app, ["step", "llama-3.1-70b", "--tp", "8", "--global-batch", "16", "--seq",
                                          "8192", "--profile", str(prof), "--json"]).output)
    assert step["step_time_s"] == pytest.approx(rows[2].step_time_s, rel=1e-4)
    assert step["efficiency"]["origin"] == f"profile {prof}"


def test_profile_for_another_accelerator_is_refused(tmp_path):
    p = tmp_path / "p.yaml"
    p.write_text(profile_yaml(fit(_synthetic(training_efficiency(H100))[:1], training_efficiency(H100)), "h100-sxm"))
    one_line_error(["step", "llama-3.1-8b", "-H", "a100-sxm-80gb", "--global-batch", "8", "--profile", str(p)],
                   "fitted on h100-sxm")


def test_calibrate_refuses_more_terms_than_measurements():
    one_line_error(["calibrate", "llama-3.1-8b", "--gpus", "8", "--global-batch", "32", "--step-time", "5",
                    "--fit", "matmul,attention_flash"], "cannot be fitted to 1 measurement")


def test_efficiency_fractions_are_validated():
    with pytest.raises(Exception, match="fraction"):
        TrainingEfficiency(1.2, 0.5, 0.5)


def test_infer_that_does_not_fit_says_so_first():
    """Llama-3.1-405B in bf16 on one H100: 811 GB of weights alone against 77 GB usable (10% reserve, as fit and
    serve keep) — the first line says so, JSON says fits: false."""
    args = ["infer", "llama-3.1-405b", "-H", "h100-sxm", "--batch", "8", "--prompt", "1000", "--output", "300"]
    out = runner.invoke(app, args)
    assert out.exit_code == 0 and out.output.splitlines()[0].startswith("DOES NOT FIT")
    assert json.loads(runner.invoke(app, [*args, "--json"]).output)["fits"] is False
    ok = runner.invoke(app, ["infer", "llama-3.1-8b", "-H", "h100-sxm", "--batch", "8"])
    assert not ok.output.startswith("DOES NOT FIT")


def test_calibrate_refuses_a_measurement_faster_than_the_peak():
    """Llama-3.1-8B, batch 8 × 2048 on one H100: 6·8e9·16384 FLOPs need ≥ 0.79 s at 989 TFLOP/s, so 1 ms is a
    wrong input (exit 2), never a profile with an efficiency above 1."""
    one_line_error(["calibrate", "llama-3.1-8b", "--global-batch", "8", "--step-time", "0.001"],
                   "faster than the same layout at 100% of the dense peak")


def test_calibrate_refuses_a_fit_that_runs_out_of_range():
    one_line_error(["calibrate", "llama-3.1-8b", "--global-batch", "8", "--step-time", "1e9"],
                   "cannot be matched", "matmul")


def test_hfu_counts_what_flash_attention_executes():
    """At 128K tokens the full-rectangle MFU convention counts ~2x the attention FlashAttention runs; HFU counts the
    executed FLOPs, so with every kernel at 100% of the peak and no exposed communication it is at most 100%."""
    r = training_step(load_model("llama-3.1-8b"), H100, Layout(cp=8), global_batch=1, seq=131072, gpus=8,
                      compute_efficiency=1.0, check_memory=False)
    assert r.data["hfu"] <= 1 + 1e-9 < r.data["mfu"]
    assert any("exceeds the FLOPs actually run" in n for n in r.assumptions)


@pytest.mark.parametrize("matmul, warned", [(0.03, True), (0.2, False)])
def test_calibrate_warns_when_the_fit_needs_an_implausibly_low_efficiency(matmul, warned):
    """Any slow time fits with a tiny enough efficiency ('--step-time 5 min' gave matmul 0.0026 with no word):
    below 5% of peak, where no published training run sits (Narayanan 2021: 44-52%), the fit says the time holds
    something else. Synthetic rows from a known efficiency: the fit recovers it, and warns only below the floor."""
    from dataclasses import replace

    rows = _synthetic(replace(training_efficiency(H100), matmul=matmul))
    f = fit(rows, training_efficiency(H100), ("matmul",))
    assert f.efficiency.matmul == pytest.approx(matmul, rel=1e-4)
    assert any("implausibly low" in w for w in f.warnings) == warned
