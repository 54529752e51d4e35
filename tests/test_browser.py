"""End-to-end: the dashboard in a real headless browser (Debian's chromium, driven by Playwright).

A fixture starts ``streamlit run app.py`` (tests/streamlit_server.py: a port from the OS, readiness read
from the server's output). For every page, at 1440×900 and 390×844: the answer line is on the first
screen, no metric text is cut off (scrollWidth vs clientWidth in the DOM), and a screenshot is saved
under benchmarks/out/screens/ (an artefact, not committed). A link copied after changing an input
restores it in a fresh browser context. Expected numbers are published counts (Meta's Llama 3.1 8B
config: 8,030,261,248 parameters, published-cases.yaml params-llama3-8b; GPT-2 124M: 124,439,808).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parent.parent
SHOTS = ROOT / "benchmarks" / "out" / "screens"
ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
VIEWPORTS = {"desktop": (1440, 900), "phone": (390, 844)}

if not Path(CHROMIUM).exists():
    pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")

sys.path.insert(0, str(Path(__file__).resolve().parent))
from streamlit_server import streamlit_server  # noqa: E402

from llmcalc.dashboard import state  # noqa: E402


@pytest.fixture(scope="module")
def server():
    with streamlit_server() as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def open_page(browser, url: str, viewport=(1440, 900)):
    ctx = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})
    page = ctx.new_page()
    page.goto(url)
    wait_ready(page)
    return ctx, page


def wait_ready(page) -> None:
    """The answer line is drawn, the script has finished (Streamlit's status widget is gone) and every
    lazily loaded widget has replaced its loading skeleton."""
    page.locator(".llmcalc-answer").first.wait_for(timeout=30000)
    page.locator('[data-testid="stStatusWidget"]').wait_for(state="hidden", timeout=30000)
    page.wait_for_function("() => document.querySelectorAll('[data-stale=\"true\"], [data-testid=\"stSkeleton\"]')"
                           ".length === 0", timeout=30000)


def metric(page, label: str) -> str:
    box = page.locator('[data-testid="stMetric"]', has_text=label).first
    return box.locator('[data-testid="stMetricValue"]').inner_text(timeout=15000)


TRUNCATED_JS = """() => {
  const out = [];
  for (const el of document.querySelectorAll(
      '[data-testid="stMetricValue"], [data-testid="stMetricValue"] *, [data-testid="stMetricLabel"], ' +
      '[data-testid="stMetricLabel"] *, .llmcalc-answer')) {
    if (el.clientWidth > 0 && el.scrollWidth > el.clientWidth + 1) out.push(el.innerText.slice(0, 80));
  }
  return out;
}"""


# chart text (titles, axis and legend labels) outside its chart's frame, which cuts it; 4 px of glyph overhang allowed
CHART_TEXT_CUT_JS = """() => { const out = [];
  for (const svg of document.querySelectorAll('[data-testid="stVegaLiteChart"] svg')) {
    const r = svg.getBoundingClientRect();
    for (const t of svg.querySelectorAll('text')) { const b = t.getBoundingClientRect();
      if (!t.textContent.trim() || b.width === 0) continue;
      if (b.top < r.top - 4 || b.bottom > r.bottom + 4 || b.left < r.left - 4 || b.right > r.right + 4)
        out.push(t.textContent.slice(0, 60)); } }
  return out; }"""


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
@pytest.mark.parametrize("page_key", list(state.PAGES))
def test_answer_first_and_nothing_truncated(server, browser, page_key, viewport):
    ctx, page = open_page(browser, f"{server}/?page={page_key}", VIEWPORTS[viewport])
    try:
        box = page.locator(".llmcalc-answer").first.bounding_box()
        height = VIEWPORTS[viewport][1]
        assert box is not None and box["y"] >= 0 and box["y"] + box["height"] <= height, \
            f"answer line at y={box and box['y']:.0f}..{box and box['y'] + box['height']:.0f}, screen {height}"
        assert page.locator('[data-testid="stException"]').count() == 0
        assert page.evaluate(TRUNCATED_JS) == []
        # user test: the throughput chart's title cut in half, the roofline's "prefill" legend entry off its right
        # edge; on a phone, long titles, the memory legend and the A vs B chart (labels only, no bars)
        assert page.evaluate(CHART_TEXT_CUT_JS) == []
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"{page_key}-{viewport}.png"), full_page=False)
    finally:
        ctx.close()


def test_link_copied_after_a_change_restores_it(server, browser):
    ctx, page = open_page(browser, f"{server}/?page=inference&model=llama-3.1-70b&tp=2")
    try:
        # scaling-book applied-inference: Llama 3 70B caches 2·8·128·80 elements/token = 327,680 B in bf16;
        # per GPU at tp 2 and 1,280 tokens: 327,680 × 1,280 / 2 = 209,715,200 B
        assert metric(page, "KV per GPU (tp 2, pp 1)") == "210 MB"
        box = page.locator('[data-testid="stNumberInput"]', has_text="batch (requests)").locator("input")
        box.fill("4")
        box.press("Enter")
        page.wait_for_function("() => location.search.includes('batch=4')", timeout=30000)
        wait_ready(page)
        assert metric(page, "KV per GPU (tp 2, pp 1)") == "839 MB"  # 4 × 209,715,200 B
        link = page.url
    finally:
        ctx.close()
    ctx, page = open_page(browser, link)  # a fresh context: no cookies, no session
    try:
        value = page.locator('[data-testid="stNumberInput"]', has_text="batch (requests)").locator("input")
        assert value.input_value() == "4"
        assert metric(page, "KV per GPU (tp 2, pp 1)") == "839 MB"
        assert "Llama-3.1-70B" in page.locator(".llmcalc-answer").first.inner_text()
    finally:
        ctx.close()


def test_shared_link_then_change_model(server, browser):
    ctx, page = open_page(browser, f"{server}/?page=model&model=gpt2")
    try:
        assert "exactly 124,439,808 parameters" in page.content()  # OpenAI GPT-2 small, as HF counts it
        box = page.locator('[data-testid="stSidebar"] [data-testid="stSelectbox"]').filter(has_text="model").first
        box.click()
        page.get_by_role("option", name="llama-3.1-8b", exact=True).click()
        page.wait_for_function("() => document.body.innerText.includes('exactly 8,030,261,248 parameters')",
                               timeout=30000)
        # the link follows the view (llama-3.1-8b is the default); Streamlit sends it when the run ends
        page.wait_for_function("() => !location.search.includes('model=gpt2')", timeout=30000)
    finally:
        ctx.close()


def test_llmcalc_app_serves_the_packaged_dashboard(browser):
    """`llmcalc app` runs llmcalc/dashboard/main.py (what a wheel ships), not the repo's app.py."""
    cmd = lambda port: [sys.executable, "-m", "llmcalc", "app", "--headless", "--port", str(port)]  # noqa: E731
    with streamlit_server(cmd) as url:
        ctx, page = open_page(browser, f"{url}/?page=model&model=gpt2")
        try:
            page.wait_for_function("() => document.body.innerText.includes('exactly 124,439,808 parameters')",
                                   timeout=30000)
        finally:
            ctx.close()


PRINTED_JS = """() => {
  const shown = el => el.getClientRects().length > 0 && getComputedStyle(el).display !== 'none';
  return {
    canvases: Array.from(document.querySelectorAll('[data-testid="stDataFrame"]')).filter(shown).length,
    sidebar: Array.from(document.querySelectorAll('[data-testid="stSidebar"]')).filter(shown).length,
    // a collapsed expander's tables take no place in print either (no rendered text)
    tables: Array.from(document.querySelectorAll('.llmcalc-print table')).filter(t => shown(t) &&
      t.innerText.trim() !== '').map(t => ({
      rows: t.tBodies[0].rows.length, cut: t.scrollWidth > t.parentElement.clientWidth + 1 ||
        t.getBoundingClientRect().right > document.documentElement.clientWidth + 1,
      text: t.innerText.slice(0, 60)})),
  };
}"""


def test_printing_shows_every_table_row_as_text(server, browser):
    """User test: printed (chromium print-to-PDF), the plan's table was its canvas cut at the frame: 16 of the 20
    ranked layouts and 7 of 11 columns, no selectable text. Print media shows the plain-HTML twins instead,
    every row, inside the page width, and leaves the sidebar out."""
    ctx, page = open_page(browser, f"{server}/?page=plan", (1440, 900))
    try:
        page.set_viewport_size({"width": 720, "height": 1000})  # an A4 page's printable width
        page.emulate_media(media="print")
        got = page.evaluate(PRINTED_JS)
        assert got["canvases"] == 0 and got["sidebar"] == 0, got
        assert [t["rows"] for t in got["tables"]] == [20, 4, 4], got  # top 20; best per ZeRO stage and per TP
        assert not any(t["cut"] for t in got["tables"]), got
        assert "TP1 PP1 DP256 mb2 ZeRO-3 no-rc" in page.locator(".llmcalc-print").first.inner_text()
        assert page.pdf(format="A4")[:4] == b"%PDF"
        page.emulate_media(media="screen")
        assert page.evaluate(PRINTED_JS)["tables"] == []  # on screen, only the dataframes
    finally:
        ctx.close()
