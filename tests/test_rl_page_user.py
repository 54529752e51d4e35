"""The RL post-training page as a practitioner uses it ("sync or async, and how to split 64 GPUs?"): problems
found by driving the page in headless Chromium, each pinned by a test that failed before its fix.

Expected values are derived here by hand or from the engine's own independent checks (the memory model's
``trainer_fits``), never pasted from the page's output.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import pytest
from conftest import app_run

from llmcalc import load_hardware, load_model
from llmcalc.rl.lengths import lognormal

AppTest = pytest.importorskip("streamlit.testing.v1").AppTest

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "app.py")


run_app = partial(app_run, 120)  # conftest.app_run, 120 s per script run


@pytest.mark.parametrize("model,gpus", [("deepseek-v3", 512), ("deepseek-v3", 1024), ("mixtral-8x22b", 64)])
def test_planned_rl_trainer_layout_is_one_the_trainer_runs(model, gpus):
    """DeepSeek-V3 on 512 or 1024 H100 (rollout TP 32) said "the trainer does not fit … raise --train-tp" (an
    input the page does not have) although 256 GPUs worked: the planner's best was an expert-TP (ETP8) or
    optimizer-offload layout, and the RL trainer kept only its tp, pp, ep and ZeRO, so it timed a layout
    without ETP/offload that does not fit. The planned layout must be one the trainer can run: no ETP, no
    offload, and it fits by the memory model's own check."""
    from llmcalc.rl.phases import DEFAULT_SETTINGS, planned_layout, trainer_fits

    m, hw = load_model(model), load_hardware("h100-sxm")
    lengths, counts = lognormal(3000, 1.0, 8192).cohorts(512 * 16)
    p = planned_layout(m, hw, gpus, lengths, counts, 512.0, 1)
    assert "ETP" not in p["layout"] and "offload" not in p["layout"], p["layout"]
    assert trainer_fits(m, hw, gpus, lengths, counts, 512.0, minibatches=1, settings=DEFAULT_SETTINGS,
                        tp=p["tp"], pp=p["pp"], ep=p["ep"], zero=p["zero"])


@pytest.mark.parametrize("rtp", [3, 64])
def test_a_rollout_tp_that_splits_no_head_is_blamed_on_rollout_tp(rtp):
    """Rollout engine TP 3 on 64 GPUs said "fix “GPUs (total)” … 64 is not a multiple of rollout engine TP 3; no
    nearby value works", and TP 64 said "--tp 64 does not divide …" (an option the page does not have, under no
    input). Llama-3.1-8B has 32 query heads and 8 KV heads (Meta's config.json), so the engines' TP must divide
    32 and divide or be a multiple of 8: 1, 2, 4, 8, 16, 32 (each also divides 64 GPUs; one 8B engine fits on
    one 80 GB H100: 16 GB of bf16 weights)."""
    at = run_app(page="rl", rl_rtp=rtp)
    assert "fix “rollout engine TP”" in at.session_state["_llmcalc_answer"]
    msgs = " ".join(e.value for e in at.error)
    assert f"“rollout engine TP” {rtp} does not divide the 32 attention heads" in msgs, msgs
    assert "values that work here: 1, 2, 4, 8, 16, 32" in msgs, msgs
    assert "--" not in msgs.replace("—", ""), msgs


def _page_run(**over):
    """rl_step as the page calls it, on the page's defaults with ``over`` (state field names)."""
    from llmcalc.dashboard import rl as page
    from llmcalc.dashboard import state

    s = {k: f.default for k, f in state.FIELDS.items()} | over
    return page._run(load_model(s["model"]), load_hardware(s["hw"]), page.params(s))


def test_async_timeline_without_interruptible_rollouts_starts_at_zero():
    """Interruptible rollouts off: the fully async chart's x axis ran from −200 s (and, shared, the sync chart's
    too): the rollout pool never pauses, so its one generate bar reached back into the simulation's warm-up. The
    chart says "two steady-state steps": every bar lies in [0, 2 × step], and the window is two steps long."""
    d = _page_run(rl_partial=False).data
    bars, step = d["timeline"]["fully_async"], d["regimes"]["fully_async"]["step_s"]
    assert min(b["start_s"] for b in bars) >= 0
    assert max(b["end_s"] for b in bars) == pytest.approx(2 * step, rel=0.01)


def _seconds(text: str) -> float:
    """'70.7 s', '172 ms', '3.94 h' as the page prints them -> seconds."""
    value, unit = text.replace(",", "").split()
    return float(value) * {"ms": 1e-3, "s": 1.0, "min": 60.0, "h": 3600.0}[unit]


def test_regimes_table_shows_each_pools_idle_time():
    """The issue asks for utilisation *and idle time* of each pool; the table had only the busy %. In a sync
    step each pool waits while the other works: on split pools the rollout pool idles for log-probs + train and
    the trainer for generate (the sync busies both); colocated, rollouts idle for log-probs + train + sync."""
    at = run_app(page="rl")
    df = at.dataframe[0].value.set_index("regime")
    assert {"rollout idle", "trainer idle"} <= set(df.columns), list(df.columns)
    col = df.loc["sync colocated"]
    assert _seconds(col["rollout idle"]) == pytest.approx(
        _seconds(col["log-probs"]) + _seconds(col["train"]) + _seconds(col["sync"]), rel=0.01)
    assert _seconds(col["trainer idle"]) == pytest.approx(_seconds(col["generate"]), rel=0.01)
    dis = df.loc["sync disaggregated"]
    assert _seconds(dis["rollout idle"]) == pytest.approx(_seconds(dis["log-probs"]) + _seconds(dis["train"]), rel=0.01)
    assert _seconds(dis["trainer idle"]) == pytest.approx(_seconds(dis["generate"]), rel=0.01)


def test_no_idle_time_reads_zero_seconds():
    """One-step-off's rollout pool never idles when generation is the longer phase; its idle cell read "0 µs",
    a unit chosen for a tiny time, not for none."""
    from llmcalc.core.units import fmt

    assert fmt(0.0, "s") == "0 s"
    assert fmt(-0.0, "s") == "0 s"
    assert fmt(2e-6, "s") == "2.00 µs"  # a small time keeps its unit
    d = _page_run().data["regimes"]["one_step_off"]
    assert d["rollout_idle_s"] == 0  # generate 227 s > log-probs + train 174 s: the pool is never idle
    at = run_app(page="rl")
    assert at.dataframe[0].value.set_index("regime").loc["one step off", "rollout idle"] == "0 s"


def test_async_rollout_pool_paused_by_the_weight_sync_is_not_idle():
    """Fully async reported the rollout pool idle for exactly the weight sync (173 ms a step by default) while its
    timeline drew a sync bar there and the split regimes count the sync as the pool's busy time (the loop pauses
    generation for it). With η = ∞ and interruptible rollouts the pool always has admissible work, so it never
    waits, whichever pool sets the pace: idle 0, busy 100%, in every row alike."""
    d = _page_run(rl_eta="inf").data["regimes"]
    a = d["fully_async"]
    assert a["breakdown_s"]["sync_s"] > 0.1
    assert a["rollout_idle_s"] == pytest.approx(0.0, abs=1e-6 * a["step_s"])
    assert a["rollout_utilisation"] == pytest.approx(1.0, abs=1e-6)
    one = d["one_step_off"]  # the same definition in the closed-form split regime: generate + sync
    assert one["rollout_utilisation"] * one["step_s"] == pytest.approx(
        one["breakdown_s"]["generate_s"] + one["breakdown_s"]["sync_s"], rel=1e-9)


def _titles(at) -> list[str]:
    import json

    out = []

    def walk(node):
        if isinstance(node, dict):
            t = node.get("title")
            t = t.get("text") if isinstance(t, dict) else t
            out.extend([t] if isinstance(t, str) else [x for x in t if isinstance(x, str)] if isinstance(t, list)
                       else [])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    for e in at.get("vega_lite_chart"):
        walk(json.loads(e.proto.spec))
    return out


def test_each_timeline_states_the_step_and_idle_its_bars_add_up_to():
    """The timelines had a bare name for a title ("sync colocated"): nothing to check the bars against. Each now
    states its step and each pool's idle per step; its two steps of bars span twice the stated step, and each
    row's gaps add up to twice the stated idle (to 1% of the window: the async window is the simulation's last
    two periods, its step the mean of the second half)."""
    from llmcalc.dashboard import panels

    at = run_app(page="rl")
    titles = " ".join(_titles(at))  # a title is wrapped into lines of at most 44 characters
    d = _page_run().data
    for name in ("sync_colocated", "fully_async"):
        g, bars = d["regimes"][name], d["timeline"][name]
        stated = (f"{name.replace('_', ' ')}: {panels.human(g['step_s'], 's')} per step; idle per step: rollout "
                  f"{panels.human(g['rollout_idle_s'], 's')}, trainer {panels.human(g['trainer_idle_s'], 's')}")
        assert stated in titles, titles
        window = max(b["end_s"] for b in bars) - min(b["start_s"] for b in bars)
        assert window == pytest.approx(2 * g["step_s"], rel=0.01)
        for row, key in (("rollout pool", "rollout_idle_s"), ("trainer", "trainer_idle_s")):
            busy = sum(b["end_s"] - b["start_s"] for b in bars if b["row"] == row)
            assert window - busy == pytest.approx(2 * g[key], abs=0.01 * window), (name, row)


@pytest.mark.parametrize("hw", ["l4", "l40s", "mi300x", "mi325x"])
def test_gpus_beyond_a_domain_without_scale_out_is_blamed_on_the_gpu_count(hw):
    """On the four accelerators whose catalogue entry records no scale-out link, the default 64 GPUs gave "No
    answer yet: … asked for 64 (plan at most 8 …)" (the training planner's words) under no input. The weight
    sync joins trainer and engines, so an RL job spans at most one 8-device scale-up domain (each entry's
    scale_up.domain_size is 8): the message sits under “GPUs (total)” and offers counts up to 8."""
    at = run_app(page="rl", hw=hw)
    assert "fix “GPUs (total)”" in at.session_state["_llmcalc_answer"]
    msgs = " ".join(e.value for e in at.error)
    assert "“GPUs (total)” 64 spans more than the 8-device scale-up domain" in msgs, msgs
    import re

    works = re.search(r"values that work here: ([\d, ]+)", msgs)[1].strip(" ,").split(", ")
    assert works and all(2 <= int(v) <= 8 for v in works), works


def test_a_trainer_too_big_for_the_gpus_is_blamed_on_the_gpu_count():
    """Llama-3.1-405B on 64 H100 (rollout TP 16, so the engines fit: 810 GB of bf16 weights / 16 = 51 GB each)
    said "No answer yet: the trainer does not fit … give the trainer more GPUs" under no input. It now sits under
    “GPUs (total)”, and every count it offers can hold the trainer's states at least: 405e9 params × 18 B
    (bf16 weights, fp32 grads, master and Adam moments; Megatron-Core's convention, README) / 80 GB ≈ 91.1, so
    nothing below 92 GPUs."""
    import re

    at = run_app(page="rl", model="llama-3.1-405b", rl_rtp=16)
    assert "fix “GPUs (total)”" in at.session_state["_llmcalc_answer"]
    msgs = " ".join(e.value for e in at.error)
    assert "the trainer does not fit" in msgs and "raise “GPUs (total)”" in msgs, msgs
    found = re.search(r"values that work here: ([\d, ]+)", msgs)
    assert found, msgs
    works = [int(v) for v in found[1].strip(" ,").split(", ")]
    assert works and min(works) >= 405e9 * 18 / 80e9, works


def test_a_never_idle_pool_prints_no_rounding_residue():
    """Mixtral-8x7B, rollout TP 2, PPO: the fully async rollout pool's idle read "9.1 × 10⁻¹³ s" (period minus
    busy time, float residue). With η = ∞ and interruptible rollouts the pool always has admissible work, so it is
    never idle: 0 s."""
    over = dict(model="mixtral-8x7b", rl_rtp=2, rl_algo="ppo", rl_eta="inf")
    a = _page_run(**over).data["regimes"]["fully_async"]
    assert a["rollout_idle_s"] == 0.0
    at = run_app(page="rl", **over)
    assert at.dataframe[0].value.set_index("regime").loc["fully async", "rollout idle"] == "0 s"


def test_eta_axis_labels_read_level():
    """The η chart's six labels (0, 1, 2, 4, 8, inf: at most 3 characters) were drawn turned 90°."""
    import json

    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params["page"] = "rl"
    at.run()
    at.session_state["rl_eta_open"] = True
    at.run()
    specs = [json.loads(e.proto.spec) for e in at.get("vega_lite_chart")]
    eta = [s for s in specs if s.get("encoding", {}).get("x", {}).get("field") == "η"]
    assert eta, "no η chart"
    assert eta[0]["encoding"]["x"]["axis"]["labelAngle"] == 0


def test_staleness_mean_and_max_share_one_column():
    """The two staleness columns became one ("mean / max", as the CLI's "lag mean/max") so that the table, with
    each pool's idle seconds added, still prints inside an A4 page (tests below, in the browser). One-step-off
    trains each batch exactly one version late (verl's one-step-off: the batch generated under the previous
    weights), so its cell is "1.00 / 1"; a synchronous step trains on-policy: "0 / 0"."""
    df = run_app(page="rl").dataframe[0].value.set_index("regime")
    assert "staleness mean / max (steps)" in df.columns and "staleness max (steps)" not in df.columns
    assert df.loc["one step off", "staleness mean / max (steps)"] == "1.00 / 1"
    assert df.loc["sync disaggregated", "staleness mean / max (steps)"] == "0 / 0"


# ---------------------------------------------------------------- in the browser (Debian's chromium, Playwright)

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="module")
def browser_page():
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from streamlit_server import streamlit_server

    with streamlit_server() as url, sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)

        def open_page(query: str, width: int = 1400, height: int = 900):
            ctx = b.new_context(viewport={"width": width, "height": height})
            page = ctx.new_page()
            page.goto(f"{url}/?{query}")
            page.locator(".llmcalc-answer").first.wait_for(timeout=60000)
            page.locator('[data-testid="stStatusWidget"]').wait_for(state="hidden", timeout=60000)
            page.wait_for_function("() => document.querySelectorAll('[data-stale=\"true\"], "
                                   "[data-testid=\"stSkeleton\"]').length === 0", timeout=60000)
            return ctx, page

        yield open_page
        b.close()


PRINT_TABLES_JS = """() => Array.from(document.querySelectorAll('.llmcalc-print table'))
  .filter(t => t.getClientRects().length > 0 && t.innerText.trim() !== '')
  .map(t => ({rows: t.tBodies[0].rows.length, cols: t.tHead.rows[0].cells.length,
              cut: t.scrollWidth > t.parentElement.clientWidth + 1 ||
                   t.getBoundingClientRect().right > document.documentElement.clientWidth + 1}))"""


@pytest.mark.browser
@pytest.mark.parametrize("query", ["page=rl", "page=rl&model=mixtral-8x7b&rl_rtp=2&rl_algo=ppo"])
def test_printed_regimes_table_fits_an_a4_page(browser_page, query):
    """Printed at an A4 page's printable width (720 px, as tests/test_browser.py), the regimes table shows all
    four regimes and every column inside the page (15 columns, before the staleness pair was merged, ran off)."""
    ctx, page = browser_page(query)
    try:
        page.set_viewport_size({"width": 720, "height": 1000})
        page.emulate_media(media="print")
        tables = page.evaluate(PRINT_TABLES_JS)
        assert [(t["rows"], t["cols"]) for t in tables] == [(4, 14)], tables
        assert not any(t["cut"] for t in tables), tables
    finally:
        ctx.close()


@pytest.mark.browser
def test_rl_link_restores_the_view(browser_page):
    """Inputs changed in the page travel in the URL: a fresh browser opened on the copied link shows the same
    inputs and the same answer."""
    ctx, page = browser_page("page=rl")
    try:
        box = page.get_by_label("GPUs (total)", exact=True)
        box.fill("128")
        box.press("Enter")
        page.wait_for_function("() => location.search.includes('rl_gpus=128')", timeout=60000)
        page.get_by_text("interruptible rollouts", exact=True).click()
        page.wait_for_function("() => location.search.includes('rl_partial=0')", timeout=60000)
        page.locator('[data-testid="stStatusWidget"]').wait_for(state="hidden", timeout=60000)
        answer, link = page.locator(".llmcalc-answer").first.inner_text(), page.url
    finally:
        ctx.close()
    assert "on 128 GPUs" in answer
    ctx, page = browser_page(link.split("?", 1)[1])
    try:
        assert page.get_by_label("GPUs (total)", exact=True).input_value() == "128"
        assert not page.locator('[data-testid="stMain"] input[type="checkbox"]').first.is_checked()
        assert page.locator(".llmcalc-answer").first.inner_text() == answer
    finally:
        ctx.close()


def test_warnings_name_the_inputs_the_page_draws():
    """A warning read "(--gpus, less --rollout-gpus when split)", the CLI's options, on a page whose inputs are
    “GPUs (total)” and “rollout GPUs” (Mixtral with the planner's EP 4 trainer and 14 rollout GPUs; the planner now
    picks an EP 1 ZeRO-3 trainer there, so the page cannot reach that message). The mapping is the page's for every
    warning (panels.notes → in_page_words): the option names of a message become the labels the page draws."""
    from llmcalc.dashboard import panels

    at = run_app(page="rl", model="llama-3.1-70b", rl_rtp=8, rl_split=56)  # 8 trainer GPUs hold no 70B trainer
    warnings = " ".join(w.value for w in at.warning)
    assert "no split regimes" in warnings and "--gpus" not in warnings, warnings
    drawn = {name: {"label": "GPUs (total)"} for name in ("rl_gpus",)}
    drawn["rl_split"] = {"label": "rollout GPUs (0 = best split)"}
    import streamlit as st

    st.session_state[panels._FIELDS] = drawn
    try:
        msg = panels.in_page_words("(--gpus, less --rollout-gpus when split)")
    finally:
        del st.session_state[panels._FIELDS]
    assert msg == "(“GPUs (total)”, less “rollout GPUs (0 = best split)” when split)", msg


def test_page_states_the_capped_mean_its_tokens_per_second_use():
    """Mean 3,000 tokens, cv 1, cap 8,192 (the defaults): the step uses the capped mean, E[min(X, c)] for a
    lognormal X with σ² = ln(1 + cv²), μ = ln(mean) − σ²/2:
    e^(μ+σ²/2)·Φ((ln c − μ − σ²)/σ) + c·(1 − Φ((ln c − μ)/σ)) = 2,784 tokens, and the page did not say so:
    trained tokens/s = P·G·(2,784 + 512)/step read 7% off a hand calculation with 3,000. Now the caption gives
    the mean, and each row's trained tokens/s is 512·16·(mean + 512)/step (to the table's 3 digits)."""
    from math import erf, exp, log, sqrt

    def phi(z):
        return 0.5 * (1 + erf(z / sqrt(2)))

    s2 = log(2.0)
    s, mu, c = sqrt(s2), log(3000) - s2 / 2, 8192
    mean = exp(mu + s2 / 2) * phi((log(c) - mu - s2) / s) + c * (1 - phi((log(c) - mu) / s))
    at = run_app(page="rl")
    assert f"mean response {mean:,.0f} tokens (after the cap)" in " ".join(c.value for c in at.caption)
    df = at.dataframe[0].value.set_index("regime")
    for regime, row in df.iterrows():
        tps = float(row["trained tokens/s"].split()[0].replace(",", ""))
        assert tps * _seconds(row["step"]) == pytest.approx(512 * 16 * (mean + 512), rel=0.005), regime


def test_speedup_column_is_the_step_ratio():
    """A consistency check (no bug found): each row's speed-up is sync colocated's step over its own, and the
    answer line's figure is the best row's (to the table's 3 digits)."""
    at = run_app(page="rl", rl_algo="ppo", rl_eta="inf")
    df = at.dataframe[0].value.set_index("regime")
    base = _seconds(df.loc["sync colocated", "step"])
    for _, row in df.iterrows():
        assert float(row["speed-up vs sync"].split()[0]) == pytest.approx(base / _seconds(row["step"]), rel=0.01)
    best = min(df.index, key=lambda r: _seconds(df.loc[r, "step"]))
    assert best != "sync colocated"
    assert f"{best} on " in at.session_state["_llmcalc_answer"]
    assert f": {df.loc[best, 'step']} per step" in at.session_state["_llmcalc_answer"]


def test_answer_says_the_split_it_recommends():
    """The page's question is "sync or async, and how to split the GPUs"; its one-line answer named only the
    regime ("fully async: 180 s per step, …") and the split sat in a caption further down. A split regime's
    answer now names its split, the one rl_step chose (the calculator called here with the page's inputs), and
    the two pools add up to the 64 GPUs."""
    d = _page_run().data
    g = d["regimes"][d["best_regime"]]
    assert d["best_regime"] == "fully_async" and g["rollout_gpus"] + g["trainer_gpus"] == 64
    answer = run_app(page="rl").session_state["_llmcalc_answer"]
    assert f"fully async on {g['rollout_gpus']} rollout + {g['trainer_gpus']} trainer GPUs: " in answer, answer


def test_colocated_timeline_gaps_are_the_stated_idle_exactly():
    """Llama-3.1-405B on 64 B200 (rollout TP 8; only sync colocated fits) has an 8.66 s weight sync. Colocated,
    one set of GPUs reshards once and the step's accounting gives that time to the trainer (trainer busy = log-probs
    + train + sync, rollout busy = generate: the two add up to the step), but the timeline drew the sync on the
    rollout row too, so its gap was 8.66 s shorter than the idle its title states. A closed-form timeline must
    match exactly: each row's gaps over the two steps = 2 × that row's idle."""
    d = _page_run(model="llama-3.1-405b", hw="b200", rl_rtp=8, rl_prompts=64, rl_samples=8).data
    g, bars = d["regimes"]["sync_colocated"], d["timeline"]["sync_colocated"]
    assert g["breakdown_s"]["sync_s"] > 1.0
    window = max(b["end_s"] for b in bars) - min(b["start_s"] for b in bars)
    assert window == pytest.approx(2 * g["step_s"], rel=1e-9)
    for row, key in (("rollout pool", "rollout_idle_s"), ("trainer", "trainer_idle_s")):
        busy = sum(b["end_s"] - b["start_s"] for b in bars if b["row"] == row)
        assert window - busy == pytest.approx(2 * g[key], rel=1e-9), row


MODELS = sorted(p.stem for p in (ROOT / "models").glob("*.yaml"))
HARDWARE = sorted(p.stem for p in (ROOT / "hardware").glob("*.yaml"))


@pytest.mark.parametrize("params", [{"model": m} for m in MODELS] + [{"hw": h} for h in HARDWARE],
                         ids=lambda p: next(iter(p.values())))
def test_every_model_and_accelerator_answers_or_names_the_input_to_fix(params):
    """Every catalogue model (on H100) and every accelerator (with Llama-3.1-8B), at the page's defaults: no
    traceback, and either an answer or "fix “<input>”" with the message under that input. Before: L4, L40S,
    MI300X and MI325X showed the training planner's message under no input."""
    at = run_app(page="rl", **params)
    answer = at.session_state["_llmcalc_answer"]
    assert answer.startswith("Synchronous or asynchronous RL for") or "fix “" in answer, answer
    if "fix “" in answer:
        label = answer.split("fix “")[1].split("”")[0]
        assert any(e.value.startswith(f"Not computed: see the message under “{label}”") for e in at.error), answer


def test_split_search_simulates_with_the_pages_interruptible_setting():
    """Interruptible rollouts off, PPO: the split search simulated its three candidates with interruptible
    rollouts on, so it kept 26 rollout GPUs (302 s) where 28, also among the three, takes 285 s with them off.
    The chosen split must be the fastest of the three it names, each timed here at a given split with the page's
    own setting."""
    import numpy as np

    over = dict(rl_partial=False, rl_algo="ppo")
    d = _page_run(**over).data
    sp = d["split"]
    three = np.asarray(sp["candidates"])[np.argsort(sp["bound_s"])[:3]]
    steps = {int(k): _page_run(rl_split=int(k), **over).data["regimes"]["fully_async"]["step_s"] for k in three}
    assert d["regimes"]["fully_async"]["step_s"] == pytest.approx(min(steps.values()), rel=1e-9), steps
    assert sp["rollout_gpus"] == min(steps, key=steps.get)
    caption = " ".join(c.value for c in run_app(page="rl", **over).caption)
    assert "of the three splits with the highest async throughput bound, the fastest simulated" in caption


def test_split_chart_marks_the_chosen_split():
    """Mixtral-8x7B, rollout TP 2: the bound peaks at 20 rollout GPUs but the step runs on 24 (the fastest of the
    bound's best three once simulated); the chart showed only the bound's peak. A dashed rule now marks the split
    the step chose, the one rl_step reports (the calculator called here with the page's inputs)."""
    import json

    over = dict(model="mixtral-8x7b", rl_rtp=2)
    k = _page_run(**over).data["split"]["rollout_gpus"]
    at = run_app(page="rl", **over)
    import pyarrow as pa

    charts = [(json.loads(e.proto.spec), e.proto.datasets) for e in at.get("vega_lite_chart")]
    split = [(sp, ds) for sp, ds in charts if "async throughput against the split" in json.dumps(sp.get("title"))]
    assert len(split) == 1
    spec, datasets = split[0]
    assert len(spec["layer"]) == 2 and spec["layer"][1]["mark"]["type"] == "rule"
    assert f"chosen, {k})" in json.dumps(spec["title"], ensure_ascii=False)
    # Streamlit sends each layer's data apart, as Arrow, under the name the layer cites
    data = {d.name: pa.ipc.open_stream(d.data.data).read_all().to_pylist() for d in datasets}
    assert data[spec["layer"][1]["data"]["name"]] == [{"rollout GPUs": k}]


def test_cv_box_shows_the_value_the_step_uses():
    """A cv of 0.005 typed in (or linked) was computed as 0.005 but the box showed "0.01" (format %.2f): the box
    must show three significant digits, as the page's price boxes do."""
    at = run_app(page="rl", rl_cv=0.005)
    box = at.number_input(key="w_rl_cv")
    assert box.value == 0.005 and box.proto.format == "%.3g"
    assert f"{0.005:.3g}" == "0.005"  # what the browser then draws (checked in headless chromium: "0.005")


def test_advice_naming_an_option_the_page_lacks_says_it_is_the_clis():
    """Llama-3.1-70B with 56 rollout GPUs of 64: 8 trainer GPUs hold no 70B trainer, and the warning advised
    "raise --train-tp (e.g. to 2)" on a page with no trainer-TP input. An option the page does not draw is now
    named as the CLI's; one it draws keeps the page's label."""
    at = run_app(page="rl", model="llama-3.1-70b", rl_rtp=8, rl_split=56)
    warnings = " ".join(w.value for w in at.warning)
    assert "the CLI's --train-tp" in warnings, warnings
    assert " raise --train-tp" not in warnings, warnings
