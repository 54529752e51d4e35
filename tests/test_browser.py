"""End-to-end: the dashboard in a real headless browser (Debian's chromium, driven by Playwright).

A fixture starts ``streamlit run app.py`` on a free localhost port. Each test opens a shared link
(query params), changes an input, and checks a figure and a chart. Expected numbers are published
counts (Meta's Llama 3.1 8B config: 8,030,261,248 parameters, published-cases.yaml params-llama3-8b;
GPT-2 124M: 124,439,808, OpenAI's checkpoint as counted by HF).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parent.parent
ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]

if not Path(CHROMIUM).exists():
    pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(cmd: list[str], port: int):
    """Start ``cmd`` (a Streamlit server on ``port``); yield its URL once healthy; stop it afterwards."""
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 30
        while True:
            try:
                urllib.request.urlopen(url + "/_stcore/health", timeout=1)
                break
            except OSError:
                if proc.poll() is not None or time.time() > deadline:
                    out = proc.stdout.read().decode() if proc.poll() is not None else ""
                    pytest.fail(f"streamlit did not start on {url}: {out[-2000:]}")
                time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture(scope="module")
def server():
    port = free_port()
    yield from serve([sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.headless", "true",
                      "--server.port", str(port), "--server.address", "127.0.0.1",
                      "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"], port)


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = ctx.new_page()
    yield pg
    ctx.close()


def metric(page, label: str) -> str:
    """The value shown by the st.metric whose label is ``label``."""
    box = page.locator('[data-testid="stMetric"]', has_text=label).first
    return box.locator('[data-testid="stMetricValue"]').inner_text(timeout=15000)


def wait_idle(page) -> None:
    """Streamlit shows a 'running' status widget while a script runs; wait until it is gone."""
    page.wait_for_timeout(200)
    page.locator('[data-testid="stStatusWidget"]').wait_for(state="hidden", timeout=15000)


def test_shared_link_then_change_model(server, page):
    page.goto(f"{server}/?page=model&model=gpt2")
    assert metric(page, "total parameters") == "124 M param"
    assert "exactly 124,439,808 parameters" in page.content()  # OpenAI GPT-2 small, as HF counts it
    page.locator(".vega-embed").first.wait_for(timeout=15000)  # the breakdown chart drew
    # change the model in the sidebar's selectbox
    box = page.locator('[data-testid="stSidebar"] [data-testid="stSelectbox"]').filter(has_text="model").first
    box.click()
    page.get_by_role("option", name="llama-3.1-8b", exact=True).click()
    wait_idle(page)
    page.wait_for_function("() => document.body.innerText.includes('exactly 8,030,261,248 parameters')",
                           timeout=15000)
    assert metric(page, "total parameters") == "8.03 B param"  # 8,030,261,248 (params-llama3-8b)
    assert "model=gpt2" not in page.url  # the link follows the view (llama-3.1-8b is the default)
    page.locator(".vega-embed canvas, .vega-embed svg").first.wait_for(timeout=15000)


def test_shared_inference_link_then_change_batch(server, page):
    from llmcalc.core.units import fmt

    # scaling-book applied-inference: Llama 3 70B caches 2·8·128·80 = 163,840 elements per token, 327,680 B bf16
    per_token, context = 327_680, 1024 + 256
    page.goto(f"{server}/?page=inference&model=llama-3.1-70b&tp=2&prompt=1024&gen=256")
    assert metric(page, "KV per token, all layers") == fmt(per_token, "B")
    # per GPU beside the per-GPU chart: tp 2 splits the 8 KV heads, half the batch's KV on each GPU
    assert metric(page, "KV per GPU (tp 2, pp 1)") == fmt(per_token * context / 2, "B")
    page.locator(".vega-embed").nth(3).wait_for(timeout=15000)  # memory, roofline, latency, throughput charts
    # change the batch: type into the number input and press Enter
    box = page.locator('[data-testid="stNumberInput"]', has_text="batch (requests)").locator("input")
    box.fill("4")
    box.press("Enter")
    want = fmt(4 * per_token * context / 2, "B")
    page.wait_for_function(
        "w => [...document.querySelectorAll('[data-testid=stMetric]')].some(e => e.innerText.includes('KV per GPU "
        "(tp 2, pp 1)') && e.innerText.includes(w))", arg=want, timeout=15000)
    # the new input reaches the shareable link (Streamlit sends it when the run ends)
    page.wait_for_function("() => location.search.includes('batch=4')", timeout=15000)
    assert page.locator(".vega-embed").count() >= 4


def test_llmcalc_app_serves_the_packaged_dashboard(browser):
    """`llmcalc app` runs llmcalc/dashboard/main.py (what a wheel ships), not the repo's app.py."""
    port = free_port()
    for url in serve([sys.executable, "-m", "llmcalc", "app", "--headless", "--port", str(port)], port):
        page = browser.new_page()
        page.goto(f"{url}/?page=model&model=gpt2")
        page.wait_for_function("() => document.body.innerText.includes('exactly 124,439,808 parameters')",
                               timeout=15000)
        page.close()
