"""Fresh-eyes review of llmcalc as a new user meets it: each test guards a class of mistake, not one example."""

import ast
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from llmcalc.cli import COMMANDS, app

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


def run(*args):
    r = runner.invoke(app, [str(a) for a in args])
    assert r.exception is None or isinstance(r.exception, SystemExit), r.exception  # never a traceback
    return r


# ---------------------------------------------------------------- 6: every command a hint names exists

# A command is named in backticks, in parentheses or after a colon ("use it with: llmcalc step …"); the prose
# "llmcalc calibration profile" is a title, not a command.
_CMD = re.compile(r"(?:`|\(|: )llmcalc ((?:[a-z][a-z0-9-]*)(?: [a-z][a-z0-9.-]*)?)")


def _strings_in_package():
    """Every string literal (f-string parts included) in llmcalc/, with where it is."""
    for p in sorted((ROOT / "llmcalc").rglob("*.py")):
        for node in ast.walk(ast.parse(p.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                yield f"{p.relative_to(ROOT)}:{node.lineno}", node.value


def _named_commands(text: str):
    for m in _CMD.finditer(text):
        words = m[1].split()
        yield words[0], (words[1] if len(words) > 1 else None)


def _unknown_name_messages():
    """The messages unknown_name gives at each call site (catalogue, drill, why, sheet, load_spec)."""
    from llmcalc.core.catalogue import load_hardware, load_model, load_spec
    from llmcalc.core.errors import LlmcalcError
    from llmcalc.study import drill, sheet, why

    calls = [lambda: load_model("qqqqqqqq"), lambda: load_hardware("qqqqqqqq"), lambda: load_spec("qqqqqqqq"),
             lambda: drill.order(["qqqqqqqq"], []), lambda: why.why("qqqqqqqq", None, None),
             lambda: sheet.sheet("qqqqqqqq", None, None)]
    for c in calls:
        with pytest.raises(LlmcalcError) as e:
            c()
        yield str(e.value)


def test_every_command_named_in_a_message_exists():
    """A hint that names `llmcalc list drill topic` sends the user to a command that fails; every command (and
    `list` kind) named anywhere in the package's strings or in unknown-name messages must exist."""
    list_kinds = {"models", "hardware"}
    named = {}
    for where, text in [*_strings_in_package(), *(("unknown_name", m) for m in _unknown_name_messages())]:
        for cmd, arg in _named_commands(text):
            named.setdefault((cmd, arg if cmd == "list" else None), where)
    assert ("list", "models") in named  # the scan sees the hints at all
    bad = [f"{where}: llmcalc {cmd} {arg or ''}" for (cmd, arg), where in named.items()
           if cmd not in COMMANDS or (cmd == "list" and arg is not None and arg not in list_kinds)]
    assert not bad, bad
    for cmd in sorted({c for c, _ in named}):
        assert run(cmd, "--help").exit_code == 0, cmd


def test_unknown_topic_lists_the_topics():
    from llmcalc.core.errors import LlmcalcError
    from llmcalc.study import drill, why

    with pytest.raises(LlmcalcError, match=r"known: .*\bzero3\b.*\bspeculative\b"):
        why.why("qqqqqqqq", None, None)
    with pytest.raises(LlmcalcError, match="known: " + re.escape(", ".join(drill.TOPICS[:3]))):
        drill.order(["qqqqqqqq"], [])


# ---------------------------------------------------------------- 9: sheet shapes agree with their bytes

# Bytes each rank sends per call for a buffer of S bytes in a group of n (NVIDIA nccl-tests doc/PERFORMANCE.md
# "bus bandwidth" factors, ring algorithm): all-reduce 2(n−1)/n·S, all-gather and reduce-scatter (n−1)/n·S
# (S the full buffer), all-to-all (n−1)/n·S, point-to-point S.
_FACTOR = {"all-reduce": lambda n: 2 * (n - 1) / n, "all-gather": lambda n: (n - 1) / n,
           "reduce-scatter": lambda n: (n - 1) / n, "all-to-all": lambda n: (n - 1) / n, "send/recv": lambda n: 1}


@pytest.mark.parametrize("name", ["llama-3.1-70b", "deepseek-v3", "mixtral-8x7b"])
def test_sheet_shape_numbers_give_the_bytes_shown(name):
    """The PP row said 'BLD/tp' beside the full BLD's bytes (its layout has tp 1), and the CP row said 'BLGK' beside
    K and V's bytes: every row's shape, evaluated with this model's numbers, times 2 bytes (bf16) and the
    collective's ring factor, must give the bytes/rank printed beside it (3 significant figures)."""
    from llmcalc.core.catalogue import load_hardware, load_model
    from llmcalc.core.units import BYTES, parse
    from llmcalc.study.sheet import sheet

    s = sheet("parallelism", load_model(name), load_hardware("h100-sxm"))
    block = next(b for b in s.blocks if b.header and "bytes/rank" in b.header)
    col = {h: i for i, h in enumerate(block.header)}
    checked = 0
    for row in block.rows:
        shape = row[col["shape per call (this model)"]]
        assert " = " in shape, shape
        expr = shape.split(" = ", 1)[1].replace(",", "").replace("×", "*").replace("·", "*")
        assert re.fullmatch(r"[\d*/()+ ]+", expr), expr
        n = int(row[col["n"]])
        expected = eval(expr) * 2 * _FACTOR[row[col["collective"]]](n)  # noqa: S307 - digits and operators only
        shown = parse(row[col["bytes/rank"]], BYTES)
        assert shown == pytest.approx(expected, rel=0.006), (row, expected)
        checked += 1
    assert checked >= 10


# ---------------------------------------------------------------- 9: inputs echoed as typed, options named, k/M counts


@pytest.mark.parametrize("typed, shown", [("-1e23", "-1e+23"), ("-3.5e22", "-3.5e+22"), ("-7", "-7")])
def test_rejected_numbers_echo_as_typed(typed, shown):
    """float(-1e23) is -99999999999999991611392 exactly; the message must show what the user typed (%g)."""
    r = run("chinchilla", f"--flops={typed}")
    assert r.exit_code == 2 and r.output.strip().endswith(f"got {shown}"), r.output


@pytest.mark.parametrize("args, option", [(["--step-time", "0"], "--step-time"), (["--tokens-per-s", "0"],
                                                                                   "--tokens-per-s"),
                                          (["--step-time", "2", "--tp", "0"], "--tp")])
def test_calibrate_errors_name_the_option(args, option):
    r = run("calibrate", "llama-3.1-8b", "--global-batch", "64", *args)
    assert r.exit_code == 2 and len(r.output.strip().splitlines()) == 1 and option in r.output, r.output
    assert "command line" not in r.output


def test_every_integer_option_reads_k_and_m_suffixes():
    """--tokens 300B was read while --context 32k was refused: every whole-number option takes the suffixes of
    core/units.parse_count (k = 1e3, M = 1e6), and a fraction is refused naming the option."""
    a, b = run("kv", "llama-3.1-8b", "--context", "32k", "--json"), run("kv", "llama-3.1-8b", "--context", "32000",
                                                                          "--json")
    assert a.exit_code == 0 and a.output == b.output
    a = run("infer", "llama-3.1-8b", "--prompt", "2k", "--output", "0.5k", "--json")
    b = run("infer", "llama-3.1-8b", "--prompt", "2000", "--output", "500", "--json")
    assert a.exit_code == 0 and a.output == b.output
    r = run("kv", "llama-3.1-8b", "--context", "1.5")
    assert r.exit_code == 2 and "--context" in r.output and "'1.5'" in r.output
    from llmcalc.cli.inference import parse_int_list

    assert parse_int_list("1k,2k,...,8k", "--batch") == [1000, 2000, 4000, 8000]  # geometric, as 1,2,...,8


# ---------------------------------------------------------------- 3: every option given is validated, used or not


@pytest.mark.parametrize("args, option", [
    (["--mfu", "0"], "--mfu"), (["--mfu", "1.5"], "--mfu"), (["--achieved-tflops", "0"], "--achieved-tflops"),
    # TPU v5e's dense bf16 peak is 197 TFLOP/s (cloud.google.com/tpu/docs/v5e): 200 cannot be achieved
    (["-H", "tpu-v5e", "--achieved-tflops", "200"], "--achieved-tflops"),
    (["--seq", "0"], "--seq"), (["--price", "-1"], "--price"), (["--days", "0"], "--days")])
def test_train_without_gpus_or_days_still_checks_every_option(args, option):
    """Without --gpus or --days, train reports only FLOPs, and used to accept any --mfu/--achieved-tflops."""
    r = run("train", "llama-3.1-8b", "--tokens", "1T", *args)
    assert r.exit_code == 2 and len(r.output.strip().splitlines()) == 1 and option in r.output, r.output


def test_train_mfu_checked_in_the_api_too():
    from llmcalc.core.catalogue import load_hardware, load_model
    from llmcalc.core.errors import LlmcalcError
    from llmcalc.training.cost import training_cost

    with pytest.raises(LlmcalcError, match="--mfu"):
        training_cost(load_model("llama-3.1-8b"), 1e12, load_hardware("h100-sxm"), None, mfu=1.5)


# ---------------------------------------------------------------- 4: a bare number is not a latency target


@pytest.mark.parametrize("cmd", [["serve", "llama-3.1-70b", "--users", "100"],
                                 ["plan-serve", "llama-3.1-70b", "--qps", "1"]])
@pytest.mark.parametrize("option", ["--ttft", "--tpot"])
def test_bare_latency_target_is_refused(cmd, option):
    """`--tpot 50` was read as 50 s (TPOT <= 50000 ms): a bare number could mean ms or s, so it is an error that
    names the option and shows both spellings."""
    r = run(*cmd, option, "50")
    assert r.exit_code == 2 and len(r.output.strip().splitlines()) == 1, r.output
    assert option in r.output and "'50ms'" in r.output and "'50s'" in r.output


def test_time_options_read_units_and_documented_defaults():
    from llmcalc.core.errors import UnitError
    from llmcalc.core.units import parse_duration

    assert parse_duration("50ms", "--tpot") == pytest.approx(0.05)
    assert parse_duration("0.05s", "--tpot") == pytest.approx(0.05)
    assert parse_duration("2 min", "--ttft") == pytest.approx(120)
    assert parse_duration("13.75", "--step-time", bare_unit="s") == pytest.approx(13.75)  # help: bare is s
    with pytest.raises(UnitError, match="--tpot"):
        parse_duration("50", "--tpot")
    with pytest.raises(UnitError, match="--tpot"):
        parse_duration("50 GB", "--tpot")
    # train --step-time: bare seconds as its help says, and a unit is honoured (850 ms = 0.85 s)
    a = run("train", "llama-3.1-8b", "--tokens", "1T", "--gpus", "64", "--batch-tokens", "4M", "--step-time", "8.5",
            "--json")
    b = run("train", "llama-3.1-8b", "--tokens", "1T", "--gpus", "64", "--batch-tokens", "4M", "--step-time",
            "8500ms", "--json")
    assert a.exit_code == 0 and a.output == b.output


# ---------------------------------------------------------------- 8: plan with nothing that fits


def test_plan_nothing_fits_is_one_line_exit_2_with_the_smallest_change():
    """GPT-3 175B (174.6e9 parameters) at Megatron-Core's 18 B/param of weights, gradients and Adam states needs
    3.14 TB before activations: 98 GB per GPU even fully sharded over 32 H100s (80 GiB = 85.9 GB). With the
    optimizer offloaded to the host (ZeRO-Offload, Ren et al. 2021 §4: the GPU keeps 16-bit weights and
    gradients, 4 B/param) 8 GPUs still hold 87 GB each, but 16 hold 44 GB: the first doubling of 8 that can fit is
    16 (an offloaded layout); without offload it would be 64 (49 GB of states per GPU)."""
    assert 174.6e9 * 4 / 8 > 80 * 2**30 > 174.6e9 * 4 / 16
    assert 174.6e9 * 18 / 32 > 80 * 2**30 > 174.6e9 * 18 / 64
    r = run("plan", "gpt-3-175b", "--gpus", "8", "--global-batch", "64")
    assert r.exit_code == 2 and len(r.output.strip().splitlines()) == 1, r.output
    assert "no layout" in r.output and "--gpus 16" in r.output and "offload" in r.output, r.output
    r = run("plan", "gpt-3-175b", "--gpus", "8", "--global-batch", "64", "--no-offload-optimizer")
    assert r.exit_code == 2 and "--gpus 64" in r.output, r.output
    r = run("plan", "gpt-3-175b", "--gpus", "8", "--global-batch", "64", "--json")
    assert r.exit_code == 2 and len(r.output.strip().splitlines()) == 1, r.output


# ---------------------------------------------------------------- 2: an overloaded replica says so first


def test_batching_overload_is_the_first_line_and_ttft_is_unbounded():
    """Llama-3.1-8B on one H100 at 1000 req/s: by hand, a request needs O − 1 = 255 decode steps, each at least one
    read of the 16.06 GB of bf16 weights at 3.35 TB/s (H100 SXM datasheet) = 4.8 ms, and at most the KV cap of
    sequences (80 GiB less weights, 128 KiB per token × 1280 tokens: ≤ 420) run at once, so the replica serves at
    most 420 / (255 × 4.8 ms) ≈ 343 req/s < 1000: overloaded whatever the efficiencies, and an M/D/1 wait at load
    ≥ 1 has no finite mean (Kleinrock 1975)."""
    bound = (80 * 2**30 - 16.06e9) / (131072 * 1280) / (255 * 16.06e9 / 3.35e12)
    assert bound < 1000
    r = run("batching", "llama-3.1-8b", "-H", "h100-sxm", "--qps", "1000")
    assert r.exit_code == 0 and r.output.startswith("OVERLOADED"), r.output[:200]
    assert "TTFT with queueing" not in r.output and "wait before prefill" not in r.output.split("  * ")[0]
    import json

    d = json.loads(run("batching", "llama-3.1-8b", "-H", "h100-sxm", "--qps", "1000", "--json").output)
    assert d["overloaded"] and d["queue_unbounded"]
    for k in ("ttft_s", "ttft_mean_s", "ttft_p50_s", "ttft_p99_s", "queue_wait_s", "queue_wait_p50_s",
              "queue_wait_p99_s"):
        assert d[k] is None, k
    assert not [f["key"] for f in d["figures"] if "ttft" in f["key"] or "queue" in f["key"]]
    # a two-class mix, overloaded: no class TTFT either
    d = json.loads(run("batching", "llama-3.1-8b", "--qps", "1000", "--prompt", "512,2048", "--output", "128,512",
                       "--json").output)
    assert d["title"].startswith("OVERLOADED") and all(c["ttft_s"] is None for c in d["classes"])


def test_batching_below_capacity_has_finite_queue():
    """At 1 req/s (far below the ≈28 req/s capacity) the queue is finite and the title is the plain one."""
    import json

    d = json.loads(run("batching", "llama-3.1-8b", "--qps", "1", "--json").output)
    assert not d["overloaded"] and d["title"].startswith("Continuous batching")
    assert d["ttft_mean_s"] > d["ttft_s"] > 0 and d["queue_wait_p99_s"] >= d["queue_wait_s"] >= 0


# ---------------------------------------------------------------- 5: what AReaL's admission rule bounds

_POOL = None


def _pool():
    global _POOL
    if _POOL is None:
        from llmcalc.core.catalogue import load_hardware, load_model
        from llmcalc.inference.latency import Deployment
        from llmcalc.rl.rollout import DecodeCost, Pool

        _POOL = Pool(DecodeCost(Deployment(load_model("qwen2.5-7b"), load_hardware("h100-sxm"), 1), 64, 0.004, 512),
                     engines=4)
    return _POOL


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=25, deadline=None)
@given(eta=st.integers(0, 4), classes=st.lists(st.tuples(st.integers(100, 30000), st.integers(1, 64)), min_size=1,
                                               max_size=3), t_train=st.floats(1.0, 60.0))
def test_admission_rule_bounds_outstanding_rollouts(eta, classes, t_train):
    """AReaL §5.1 admits rollout N_r only while ⌊(N_r − 1)/B⌋ ≤ i + η. With i·B consumed at version i (and B more
    while step i trains), started ≤ B·(i + η + 1): at most (η + 1)·B rollouts started and not yet trained, whatever
    the length tail. Equal lengths finish in admission order, so then each sample lags at most η versions
    (rollout n starts at v ≥ ⌊(n − 1)/B⌋ − η and is trained in batch ⌊(n − 1)/B⌋ at that version)."""
    from llmcalc.rl.loop import simulate_async

    lengths, counts = [float(x) for x, _ in classes], [float(c) for _, c in classes]
    r = simulate_async(_pool(), lengths, counts, t_train, 0.5, eta)
    assert r["outstanding_max"] <= eta + 1 + 1e-9
    if eta == 0:
        assert r["staleness_max"] == 0
    same = simulate_async(_pool(), [lengths[0]], [sum(counts)], t_train, 0.5, eta)
    assert same["staleness_max"] <= eta and same["outstanding_max"] <= eta + 1 + 1e-9


def test_completion_order_lag_is_not_bounded_by_eta():
    """The argument in llmcalc/rl/loop.py, simulated: a batch of 256 with a tail (128 × 500, 96 × 2,000, 32 × 8,000
    tokens) at η = 1. Long rollouts are overtaken by short ones admitted later; trained in completion order they lag
    more than η, while the admission invariant still holds; the report says the lag is measured (the CLI column is
    'lag', the help says what η bounds)."""
    from llmcalc.rl.loop import simulate_async

    r = simulate_async(_pool(), [500.0, 2000.0, 8000.0], [128.0, 96.0, 32.0], 20.0, 0.5, 1)
    assert r["staleness_max"] > 1 and r["outstanding_max"] <= 2 + 1e-9
    h = run("rl", "--help").output
    assert "admission" in h


# ---------------------------------------------------------------- 7: scaling laws say when they extrapolate

@pytest.mark.parametrize("args, needles", [
    (["chinchilla", "--flops", "1e-300"], ["--flops", "1e-300"]),
    (["loss", "--params", "7", "--tokens", "1T"], ["--params", "7 parameters", "did you mean 7B?"]),
    (["chinchilla", "--params", "7"], ["--params", "did you mean 7B?"]),
    (["loss", "--params", "7B", "--tokens", "100"], ["--tokens", "did you mean 100B"]),
])
def test_absurd_scaling_inputs_are_errors(args, needles):
    """Hoffmann et al. 2022 fitted 70M–16B parameters on 5B–500B tokens: 7 parameters (a '7B' without its suffix)
    or a 1e-300 FLOP budget is no question a law answers (it printed '0.000 param' and a 58-digit loss)."""
    r = run(*args)
    assert r.exit_code == 2 and len(r.output.strip().splitlines()) == 1, r.output
    for n in needles:
        assert n in r.output, (n, r.output)


def test_far_extrapolation_is_the_first_line():
    """Llama-3.1-405B has 405.9e9 parameters, 25× the largest model (16B) of the Chinchilla fits: the first line says
    EXTRAPOLATED and names the factor; Llama-3.1-8B (8.0e9, inside 70M–16B) and 7B vs 3B on 500B/1T tokens (inside
    5B–500B tokens within 10×) do not."""
    r = run("chinchilla", "llama-3.1-405b")
    first = r.output.splitlines()[0]
    assert r.exit_code == 0 and first.startswith("EXTRAPOLATED") and "25× above" in first, first
    assert not run("chinchilla", "llama-3.1-8b").output.startswith("EXTRAPOLATED")
    assert not run("loss", "--params", "7B,3B", "--tokens", "500B,1T").output.startswith("EXTRAPOLATED")
    # 100M tokens is 50× below the fewest tokens of the fitted runs (5B): flagged
    r = run("loss", "--params", "7B", "--tokens", "100M", "--json")
    import json

    d = json.loads(r.output)
    assert d["title"].startswith("EXTRAPOLATED") and d["extrapolated"] and "50× below" in d["extrapolated"][0]


# ---------------------------------------------------------------- 1: `why` conclusions follow the numbers


def _why(topic, model, hw="h100-sxm", **kw):
    from llmcalc.core.catalogue import load_hardware, load_model
    from llmcalc.study.why import why

    return why(topic, load_model(model), load_hardware(hw), **kw)


@pytest.mark.parametrize("model, hw, gpus", [("llama-3.1-70b", "h100-sxm", 64), ("llama-3.1-8b", "h100-sxm", 8),
                                             ("gpt2", "l4", 8), ("llama-3.1-405b", "h100-sxm", 64),
                                             ("llama-3.1-70b", "a100-sxm-80gb", 1024)])
def test_zero3_title_follows_its_numbers(model, hw, gpus):
    """The title was 'Why ZeRO-3 is rarely the answer' while ZeRO-3's step was the shorter one and both layouts did
    not fit. Now: every layout that does not fit has its step and MFU labelled hypothetical; the title names ZeRO-3
    the answer exactly when it fits and no fitting layout steps faster; 'nothing fits' when none does."""
    w = _why("zero3", model, hw, gpus=gpus)
    f = {x.key: x for x in w.figures}
    names = [k.split("/")[0] for k in f if k.endswith("/step")]
    fits = {n: "hypothetical" not in f[f"{n}/mfu"].label for n in names}
    for n in names:
        assert ("hypothetical" in f[f"{n}/step"].label) == (not fits[n])
        assert ("hypothetical" in f[f"{n}/mfu"].label) == (not fits[n])
    fitting = [n for n in names if fits[n]]
    if not fitting:
        assert w.title.startswith("Nothing here fits")
    elif fits["ZeRO-3"] and all(f["ZeRO-3/step"].value <= f[f"{n}/step"].value for n in fitting):
        assert w.title.startswith("When ZeRO-3 is the answer"), w.title
    else:
        assert w.title.startswith("Why ZeRO-3 is rarely the answer"), w.title


def test_zero3_pure_dp_zero1_cannot_fit_70b():
    """By hand: ZeRO-1 keeps bf16 weights (2 B) and fp32 main gradients (4 B) of all 70.6e9 parameters on every
    GPU, 423 GB > 80 GiB, whatever the recompute: its line must say it does not fit and mark its times."""
    assert 70.6e9 * 6 > 80 * 2**30
    w = _why("zero3", "llama-3.1-70b", gpus=64)
    line = next(ln for ln in w.lines if ln.strip().startswith("ZeRO-1"))
    assert "does NOT fit" in line and line.count("(hypothetical)") == 2


def test_other_why_topics_follow_their_numbers():
    """gqa on an MHA model is not 'Why GQA' with a 1.00× ratio; pp says when PP 1 already fits; speculative at
    α = 0.2 (speed-up (1 − α^(γ+1))/((1 − α)(γc + 1)) < 1, Leviathan et al. 2023 Thm 3.8) says it does not pay."""
    w = _why("gqa", "gpt2")
    assert not w.title.startswith("Why GQA") and "MHA" in w.title
    assert {x.key: x.value for x in w.figures}["gqa/kv_ratio"] == pytest.approx(12 / 4)  # H / G, G = 4 divides 12
    assert _why("pp", "llama-3.1-8b", gpus=64).title.startswith("Pipeline parallelism is not needed")
    assert _why("pp", "llama-3.1-70b", gpus=64).title.startswith("Why pipeline parallelism")
    s = _why("speculative", "llama-3.1-70b", alpha=0.2)
    sp = {x.key: x.value for x in s.figures}
    a, g, c = 0.2, 4, sp["cost_ratio"]
    assert (1 - a ** (g + 1)) / ((1 - a) * (g * c + 1)) < 1
    assert "does not pay" in s.title and "does not pay" in s.lines[-1]
    assert "does not pay" not in _why("speculative", "llama-3.1-70b").title
