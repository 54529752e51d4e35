"""Every user mistake gets one clear message (file:line:column, field, what was expected) and exit code 2."""

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from llmcalc.cli import app

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


def run(*args):
    r = runner.invoke(app, list(args))
    assert r.exception is None or isinstance(r.exception, SystemExit), r.exception  # never a traceback
    return r


def edited(tmp_path: Path, src: str, old: str, new: str, name: str = "m.yaml") -> Path:
    text = (ROOT / src).read_text()
    assert old in text
    p = tmp_path / name
    p.write_text(text.replace(old, new, 1))
    return p


def test_misspelt_field(tmp_path):
    p = edited(tmp_path, "models/llama-3.1-8b.yaml", "n_layers:", "n_layer:")
    r = run("params", str(p))
    assert r.exit_code == 2
    assert f"{p}:5:1: unknown field 'n_layer'; did you mean 'n_layers'?" in r.output


def test_missing_field(tmp_path):
    p = edited(tmp_path, "models/llama-3.1-8b.yaml", "vocab_size: 128256\n", "")
    r = run("params", str(p))
    assert r.exit_code == 2
    assert "missing required field 'vocab_size'" in r.output and str(p) in r.output


def test_quantity_with_wrong_unit(tmp_path):
    p = edited(tmp_path, "hardware/h100-sxm.yaml", "memory_bytes: 81559 MiB", "memory_bytes: 80 GB/s", "h.yaml")
    r = run("show", str(p))
    assert r.exit_code == 2
    line = next(i for i, t in enumerate(p.read_text().splitlines(), 1) if t.startswith("memory_bytes"))
    assert f"{p}:{line}:15: field 'memory_bytes'" in r.output
    assert "bandwidth" in r.output and "memory size" in r.output


def test_bare_number_in_yaml_is_rejected(tmp_path):
    p = edited(tmp_path, "hardware/h100-sxm.yaml", "memory_bytes: 81559 MiB", "memory_bytes: 80", "h.yaml")
    r = run("show", str(p))
    assert r.exit_code == 2 and "has no unit" in r.output


def test_broken_yaml_syntax(tmp_path):
    p = tmp_path / "broken.yaml"
    p.write_text("name: x\nattention: [a, b\nmlp: 3\n")
    r = run("params", str(p))
    assert r.exit_code == 2
    assert f"{p}:3:" in r.output and "invalid YAML" in r.output


def test_unknown_model_name_suggests():
    r = run("params", "lama-3.1-8b")
    assert r.exit_code == 2
    assert "unknown model 'lama-3.1-8b'; did you mean 'llama-3.1-8b'" in r.output


def test_unknown_hardware_name_suggests():
    r = run("show", "h100-sxn")
    assert r.exit_code == 2 and "did you mean 'h100-sxm'" in r.output


def test_unsupported_config_type(tmp_path):
    p = tmp_path / "config.json"
    p.write_text(json.dumps({"model_type": "bert", "hidden_size": 768}))
    r = run("params", str(p))
    assert r.exit_code == 2
    assert "model_type 'bert' is not supported" in r.output and "llama" in r.output


def test_config_missing_field_is_named(tmp_path):
    cfg = json.loads((ROOT / "tests/data/configs/llama-3.1-8b/config.json").read_text())
    del cfg["intermediate_size"]
    d = tmp_path / "Some-Model"
    d.mkdir()
    (d / "config.json").write_text(json.dumps(cfg))
    r = run("params", str(d / "config.json"))
    assert r.exit_code == 2 and "needs field 'intermediate_size'" in r.output


def test_kv_heads_must_divide_heads(tmp_path):
    p = edited(tmp_path, "models/llama-3.1-8b.yaml", "n_kv_heads: 8", "n_kv_heads: 5")
    r = run("params", str(p))
    assert r.exit_code == 2 and "n_kv_heads (5) must divide n_heads (32)" in r.output


def test_kv_heads_must_divide_heads_in_config_json(tmp_path):
    cfg = json.loads((ROOT / "tests/data/configs/llama-3.1-8b/config.json").read_text())
    cfg["num_key_value_heads"] = 5
    p = tmp_path / "config.json"
    p.write_text(json.dumps(cfg))
    r = run("params", str(p))
    assert r.exit_code == 2 and "must divide" in r.output


def test_missing_file():
    r = run("params", "/nonexistent/model.yaml")
    assert r.exit_code == 2 and "no such file" in r.output


@pytest.mark.skipif(shutil.which("llmcalc") is None, reason="console script not installed")
def test_console_script_exit_code_and_no_traceback():
    import subprocess

    r = subprocess.run(["llmcalc", "params", "no-such-model"], capture_output=True, text=True)
    assert r.returncode == 2 and "Traceback" not in r.stderr and "unknown model" in r.stderr


def test_import_to_an_unwritable_path(tmp_path):
    r = run("import", str(ROOT / "tests/data/configs/gpt2/config.json"), "-o", str(tmp_path / "no/such/dir/x.yaml"))
    assert r.exit_code == 2 and "cannot write" in r.output


@pytest.mark.parametrize("date, says", [("2025-02-30", "is not a calendar date"), ("2025-13", "is not a calendar date"),
                                        ("!!timestamp 2025-02-30", "invalid YAML")])
def test_a_price_date_that_is_no_date_is_one_line(tmp_path, date, says):
    """YAML read 2025-02-30 as a timestamp and its constructor raised a bare ValueError (a traceback; user test,
    30 Nov 2026): dates stay text and the spec checks the calendar."""
    p = edited(tmp_path, "hardware/h100-sxm.yaml", "price_date: 2025-02 ", f"price_date: {date} ", "h.yaml")
    r = run("show", str(p))
    assert r.exit_code == 2 and says in r.output and len(r.output.strip().splitlines()) == 1, r.output


def test_a_real_price_date_stays_as_written(tmp_path):
    p = edited(tmp_path, "hardware/h100-sxm.yaml", "price_date: 2025-02 ", "price_date: 2024-02-29 ", "h.yaml")
    from llmcalc.core.catalogue import load_hardware

    assert load_hardware(str(p)).price_date == "2024-02-29"


@pytest.mark.parametrize("field, old, new", [
    ("memory_bw_bytes_per_s", "memory_bw_bytes_per_s: 3.35 TB/s", "memory_bw_bytes_per_s: 1e-320 TB/s"),
    ("memory_bytes", "memory_bytes: 81559 MiB", "memory_bytes: 0.0000000000001 B")])
def test_a_positive_quantity_too_small_to_be_real_is_one_line(tmp_path, field, old, new):
    """1e-320 TB/s passed `> 0` and every serving command overflowed dividing by it, printing RuntimeWarnings
    before its error (user test, 30 Nov 2026): a positive quantity is at least 1e-12 in SI units."""
    p = edited(tmp_path, "hardware/h100-sxm.yaml", old, new, "h.yaml")
    r = run("infer", "llama-3.1-8b", "-H", str(p))
    assert r.exit_code == 2 and f"field '{field}'" in r.output and "too small" in r.output, r.output
    assert len(r.output.strip().splitlines()) == 1


def test_a_key_given_twice_in_config_json_is_one_line(tmp_path):
    """json keeps the last of two equal keys silently (a user test's "hidden_size" twice gave 18.7 B params)."""
    src = (ROOT / "tests/data/configs/gpt2/config.json").read_text()
    d = tmp_path / "dup"
    d.mkdir()
    (d / "config.json").write_text(src.replace("{", '{"n_embd": 4096, ', 1))
    r = run("params", str(d / "config.json"))
    assert r.exit_code == 2 and "duplicate key 'n_embd'" in r.output


def test_adhoc_heads_that_do_not_divide_the_width_ask_for_head_dim():
    r = run("params", "--d-model", "4096", "--layers", "32", "--heads", "30", "--kv-heads", "6", "--ffn", "14336",
            "--vocab", "128256")
    assert r.exit_code == 2 and "--heads 30 does not divide --d-model 4096" in r.output and "--head-dim" in r.output
    r = run("params", "--d-model", "4096", "--layers", "32", "--heads", "30", "--kv-heads", "6", "--ffn", "14336",
            "--vocab", "128256", "--head-dim", "128")
    assert r.exit_code == 0


def test_a_spec_of_the_other_kind_is_named_as_such():
    """A hardware YAML given as MODEL (or a model YAML as -H) failed on every field, a run of 'unknown field'
    errors (user test, 30 Nov 2026): one line says which kind of spec it is and where it goes."""
    r = run("params", str(ROOT / "hardware/h100-sxm.yaml"))
    assert r.exit_code == 2 and "this is a hardware spec" in r.output and "-H" in r.output
    r = run("infer", "llama-3.1-8b", "-H", str(ROOT / "models/llama-3.1-8b.yaml"))
    assert r.exit_code == 2 and "this is a model spec" in r.output and "MODEL" in r.output
    assert len(r.output.strip().splitlines()) == 1


def test_kv_warns_past_the_models_positions_as_infer_does():
    out = run("kv", "llama-3.1-8b", "--context", "1000000").output
    assert "WARNING: context exceeds the model's 131,072 positions" in out
    assert "WARNING" not in run("kv", "llama-3.1-8b", "--context", "131072").output


def test_summary_says_when_its_training_run_cannot_fit():
    """`train` titles such a run DOES NOT FIT; `summary` printed its 578,295 days with no warning (user test)."""
    out = run("summary", "llama-3.1-405b", "--gpus", "1").output
    # 405,853,388,800 parameters (Llama-3.1-405B: fact sheet row M9) × 18 B/param (Megatron-LM bf16 params,
    # fp32 main grads, fp32 Adam: 2 + 4 + 12) on one GPU = 7.305e12 B, printed to 3 digits
    need = 405_853_388_800 * 18 / 1e12
    assert f"WARNING: training DOES NOT FIT: model states alone need {need:.3g} TB" in out
    assert "DOES NOT FIT" not in run("summary", "llama-3.1-8b").output


def test_why_and_sheet_warn_past_the_models_positions():
    assert "WARNING: context 10,000,000 exceeds the model's 163,840 positions" in run(
        "why", "mla", "deepseek-v3", "--context", "10000000").output
    assert "WARNING: prompt + output = 200,300 exceeds the model's 131,072 positions" in run(
        "sheet", "serving", "llama-3.1-70b", "--prompt", "200000").output
    assert "WARNING" not in run("why", "mla", "deepseek-v3").output


# ---------------------------------------------------------------- user test of 30 Nov 2026: one line, exit 2


def one_line(r, *says):
    """Exit 2 and a single 'error: …' line that says each of ``says``."""
    lines = [x for x in r.output.splitlines() if x.strip()]
    assert r.exit_code == 2, r.output
    assert len(lines) == 1 and lines[0].startswith("error: "), r.output
    for s in says:
        assert s in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize("cmd", [
    ("plan-serve", "llama-3.1-70b", "--qps", "10"),  # exited 0 with "$-0.05 $-0.65" per million tokens
    ("plan", "llama-3.1-8b", "-n", "8", "--global-batch", "64"),
])
def test_a_negative_price_is_refused_by_every_planner(cmd):
    one_line(run(*cmd, "--price", "-1"), "--price must be a non-negative USD per GPU-hour, got -1")


@pytest.mark.parametrize("cmd", [
    ("serve", "llama-3.1-8b", "--qps", "1"), ("summary", "llama-3.1-8b"),
    ("train", "llama-3.1-8b", "--gpus", "8", "--tokens", "1T"),
])
def test_a_negative_price_is_refused_by_every_costing_command(cmd):
    one_line(run(*cmd, "--price", "-1"), "--price", "got -1")


@pytest.mark.parametrize("top", ["-2", "0"])  # -2 dropped rows silently; 0 blamed the latency targets
def test_plan_serve_top_must_be_positive_as_plan_says(top):
    one_line(run("plan-serve", "llama-3.1-70b", "--qps", "10", "--top", top),
             f"--top must be a positive integer, got {top}")
    one_line(run("plan", "llama-3.1-8b", "-n", "8", "--global-batch", "64", "--top", top),
             f"--top must be a positive integer, got {top}")


PLAN = ("plan", "llama-3.1-70b", "-n", "512", "--global-batch", "1024")
MEMORY_BLAME = "the weights and optimizer states alone exceed"


@pytest.mark.parametrize("pin, says", [
    (("--tp", "3"), "--tp 3 does not divide the 64 attention heads of Llama-3.1-70B; values that work: 1, 2, 4, 8"),
    (("--tp", "16"), "--tp 16 does not divide the 8 key/value heads of Llama-3.1-70B"),
    (("--pp", "200"), "--pp 200 cannot split the 80 layers of Llama-3.1-70B"),
    (("--pp", "3"), "--pp 3 does not divide --gpus 512"),
    (("--dp", "3"), "--dp 3: --global-batch 1024 is not divisible by micro-batch·dp = 1·3"),
    (("--cp", "3"), "--seq 2048 must split into 2·cp = 6 equal chunks for context parallelism --cp 3"),
    (("--micro-batch", "3"), "--micro-batch 3: --global-batch 1024 is not divisible by micro-batch·dp = 3·1"),
    (("--zero", "4"), "--zero expects a stage 0, 1, 2 or 3"),
    (("--ep", "2"), "--ep 2 given but Llama-3.1-70B is dense"),
    (("--interleave", "7"), "--interleave 7 cuts no pipeline of Llama-3.1-70B"),
])
def test_plan_names_the_pin_that_can_never_work(pin, says):
    line = one_line(run(*PLAN, *pin), says)
    assert MEMORY_BLAME not in line  # the old message blamed memory for every one of these


def test_plan_moe_pin_that_does_not_divide_the_experts():
    one_line(run("plan", "mixtral-8x7b", "-n", "512", "--global-batch", "1024", "--ep", "3"),
             "--ep 3 does not divide the 8 experts of Mixtral-8x7B", "values that work: 1, 2, 4, 8")


def test_plan_gpu_count_no_layout_can_split_says_so_not_memory():
    line = one_line(run("plan", "llama-3.1-70b", "-n", "1e9", "--global-batch", "1024"),
                    "no parallel layout of Llama-3.1-70B splits 1,000,000,000 GPUs",
                    "so at most 8·80·16·1024 = 10,485,760 GPUs")
    assert MEMORY_BLAME not in line


def test_plan_pins_that_work_still_plan():
    r = run(*PLAN, "--tp", "8", "--pp", "4")
    assert r.exit_code == 0 and "TP8" in r.output and "PP4" in r.output


def test_why_zero3_on_one_gpu_says_it_needs_data_parallel_ranks():
    # was "ZeRO-3 / ZeRO-1 bytes per rank = a/b cannot be evaluated for 0/0 (division by zero)"
    line = one_line(run("why", "zero3", "llama-3.1-70b", "--gpus", "1"),
                    "why zero3 needs at least 2 data-parallel GPUs (--gpus 1 leaves dp 1")
    assert "0/0" not in line


@pytest.mark.parametrize("gpus, split", [("1", "none of them"), ("24", "only PP 1")])
def test_why_pp_on_too_few_gpus_says_what_it_needs(gpus, split):
    one_line(run("why", "pp", "llama-3.1-70b", "--gpus", gpus),
             "why pp needs at least two of PP 1, 2, 4, 8 at TP 8", f"--gpus {gpus}", f"splits into {split}",
             "a multiple of 16")


@pytest.mark.parametrize("topic", ["gqa", "tp-within-node", "speculative"])
def test_why_topics_without_data_parallelism_work_on_one_gpu(topic):
    r = run("why", topic, "llama-3.1-70b", "--gpus", "1")
    assert r.exit_code == 0 and r.output.startswith("Why"), r.output


def test_rl_minibatches_beyond_the_samples_of_a_step_are_refused():
    # exited 0 with 100,000 optimizer steps on 512 × 16 = 8,192 samples
    base = ("rl", "qwen2.5-7b", "-n", "64", "--prompts", "512", "--response-len", "3000,1")
    one_line(run(*base, "--minibatches", "100000"),
             "--minibatches 100000 exceeds the 512 × 16 = 8,192 samples of a step", "at least one whole sample")
    one_line(run(*base, "--minibatches", "8193"), "--minibatches 8193 exceeds")
    assert run(*base, "--minibatches", "8192").exit_code == 0  # one sample per optimizer step: the limit


@pytest.mark.parametrize("cmd", [("sheet", "memory", "llama-3.1-8b"), ("import",),
                                 ("calibrate", "llama-3.1-8b", "--global-batch", "64", "--step-time", "20")])
def test_every_command_that_refuses_an_existing_output_takes_the_force_it_names(tmp_path, cmd):
    # sheet said "add --force to replace it" but had no --force ("No such option: --force")
    if cmd[0] == "import":
        cmd = ("import", str(sorted((ROOT / "tests/data/configs").rglob("config.json"))[0]))
    out = tmp_path / "out"
    out.write_text("old\n")
    one_line(run(*cmd, "-o", str(out)), f"-o {out} exists; add --force to replace it")
    assert out.read_text() == "old\n"
    r = run(*cmd, "-o", str(out), "--force")
    assert r.exit_code == 0, r.output
    assert out.read_text() != "old\n"


def test_why_speculative_refuses_a_draft_with_another_vocabulary():
    # was accepted (GPT-2's 50,257 tokens for Llama-3.1-70B's 128,256) and claimed a 3.25x speed-up
    line = one_line(run("why", "speculative", "llama-3.1-70b", "--draft", "gpt2"),
                    "--draft gpt2 has a 50,257-token vocabulary and Llama-3.1-70B a 128,256-token one",
                    "same tokenizer")
    assert "speed-up" not in line
    r = run("why", "speculative", "llama-3.1-70b", "--draft", "llama-3.1-8b")  # same tokenizer: still answered
    assert r.exit_code == 0 and "speed-up" in r.output


def test_drill_history_in_a_missing_folder_is_one_line_and_creates_nothing(tmp_path):
    # exited 0 and silently created the folder tree
    h = tmp_path / "no" / "such" / "h.jsonl"
    one_line(run("drill", "kv", "--count", "1", "--seed", "7", "--history", str(h)),
             f"--history {h}: the folder {h.parent} does not exist")
    assert not (tmp_path / "no").exists()
    one_line(run("drill", "--stats", "--history", str(tmp_path)), f"--history {tmp_path} is a folder")


def test_plan_pins_that_work_alone_but_not_together_name_their_product():
    one_line(run("plan", "llama-3.1-70b", "-n", "64", "--global-batch", "1024", "--tp", "8", "--pp", "16"),
             "--tp 8 × --pp 16 = 128 does not divide --gpus 64")


@pytest.mark.parametrize("argv", [["serve", "llama-3.1-8b", "--users", "100"], ["summary", "llama-3.1-8b"],
                                  ["plan-serve", "llama-3.1-8b", "--qps", "1"],
                                  ["train", "llama-3.1-8b", "--tokens", "1T", "--gpus", "8"]])
def test_a_price_of_zero_is_hardware_already_paid_for_everywhere(argv):
    """serve and summary refused --price 0 while plan, plan-serve and train took it (user test): one rule."""
    r = run(*argv, "--price", "0")
    assert r.exit_code == 0 and "$0.00" in r.output, r.output
    r = run(*argv, "--price", "-1")
    assert r.exit_code == 2 and r.output.startswith("error: --price") and "-1" in r.output


def test_memory_table_leaves_out_rows_that_do_not_apply():
    """pp 2 has no middle stage, a dense model no experts, ZeRO-1 no gather buffers: their 0 B rows read as
    figures (user test); the table leaves them out, JSON keeps every figure (stable keys)."""
    argv = ["memory", "llama-3.1-70b", "-H", "h100-sxm", "--tp", "8", "--pp", "2", "--dp", "4", "--zero", "1"]
    out = run(*argv).output
    assert "middle" not in out and "\nexpert parameters" not in out and "ZeRO-3" not in out
    assert "first stage total" in out and "non-expert parameters per GPU, first stage" in out
    keys = {f["key"] for f in json.loads(run(*argv, "--json").output)["figures"]}
    assert {"middle_stage/total", "params/experts", "memory/zero3_gathered"} <= keys
    out = run("memory", "mixtral-8x7b", "-H", "h100-sxm", "--pp", "4", "--ep", "8", "--dp", "8", "--zero", "3").output
    assert "middle stage total" in out and "\nexpert parameters" in out and "ZeRO-3" in out
