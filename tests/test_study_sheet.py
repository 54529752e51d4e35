"""Study sheets (issue #14): every topic renders for every catalogue model in text, Markdown and HTML; the HTML
is exactly one page on A4 and on US Letter in real headless chromium; sheet numbers are the engine's."""

from __future__ import annotations

import math
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from llmcalc.cli import app
from llmcalc.core.catalogue import load_hardware, load_model, names
from llmcalc.study.render import render
from llmcalc.study.sheet import TOPICS, sheet

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or "/usr/bin/chromium"
H100 = load_hardware("h100-sxm")


def pages(pdf: bytes) -> int:
    return len(re.findall(rb"/Type\s*/Page[^s]", pdf))


@pytest.mark.parametrize("model", names("models"))
def test_every_topic_renders_for_every_model_in_every_format(model):
    m = load_model(model)
    for topic in TOPICS:
        s = sheet(topic, m, H100)  # built once, rendered three ways
        txt, md, html = render(s, "text"), render(s, "md"), render(s, "html")
        assert m.display_name in txt and m.display_name in md and m.display_name in html
        assert html.count("<html") == 1 and "@page" in html
        for f in s.figures():
            vals = f.value.ravel().tolist() if hasattr(f.value, "ravel") else [f.value]
            assert all(math.isfinite(float(v)) for v in vals), (topic, f.key, f.value)
            assert f.text() in txt, (topic, f.key)  # the renderer drops nothing
            assert f.formula or f.source, (topic, f.key)  # every number says where it comes from


def test_parallelism_sheet_tp_row_matches_a_hand_derivation():
    """Llama-3.1-70B, TP 8, micro-batch 1, L 4096, bf16: the TP all-reduce buffer is BLD = 1·4096·8192·2 B
    = 67,108,864 B; a ring all-reduce moves 2(n−1)/n of it per rank = 117,440,512 B (nccl-tests
    PERFORMANCE.md); 4 all-reduces per layer fwd+bwd (Korthikanti et al. 2022 §4.2.2) × 80 layers × 8
    micro-batches = 2,560 calls per step."""
    s = sheet("parallelism", load_model("llama-3.1-70b"), H100)
    rows = [r for b in s.blocks for r in b.rows if r[0] == "TP 8" and r[1] == "all-reduce"]
    assert len(rows) == 1
    strategy, coll, tensor, shape, n, per_rank, calls, *_ = rows[0]
    assert shape == "BLD = 1×4,096×8,192" and n == "8"
    assert per_rank == "117 MB" and calls == "2560"


def test_notation_sheet_shows_this_models_letters():
    s = sheet("notation", load_model("llama-3.1-70b"), H100)
    legend = {r[0]: r[2] for r in s.blocks[0].rows}
    # meta-llama/Llama-3.1-70B config.json: hidden 8192, 64 heads, 8 KV heads, intermediate 28672, vocab 128256
    assert legend == {**legend, "D": "8,192", "H": "64", "G": "8", "F": "28,672", "V": "128,256", "K": "128"}


def test_sheet_all_writes_every_topic(tmp_path):
    r = CliRunner().invoke(app, ["sheet", "all", "gpt2", "-f", "md", "-o", str(tmp_path)])
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"gpt2-{t}.md" for t in TOPICS)


def test_sheet_errors_are_one_line():
    from conftest import one_line_error

    one_line_error(["sheet", "flopz", "gpt2"], "unknown topic", "flops")
    one_line_error(["sheet", "flops", "gpt2", "--format", "pdf"], "--format")
    one_line_error(["sheet", "all", "gpt2"], "-o DIR")


browser = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"chromium is missing ({CHROMIUM})")


@browser
def test_html_sheet_is_one_page_on_a4_and_letter_in_chromium():
    """Every topic, for the model with the most rows (DeepSeek-V3: MLA, dense + MoE blocks, expert DP) and a
    dense GQA model, printed by real chromium on A4 and on Letter."""
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        page = b.new_page()
        for model in ("deepseek-v3", "llama-3.1-70b"):
            m = load_model(model)
            for topic in TOPICS:
                page.set_content(render(sheet(topic, m, H100), "html"))
                for paper in ("A4", "Letter"):
                    assert pages(page.pdf(format=paper)) == 1, (model, topic, paper)
        b.close()


@browser
def test_print_to_pdf_from_the_command_line(tmp_path):
    """The way a user prints it: `llmcalc sheet … -f html -o FILE`, then chromium --print-to-pdf."""
    out = tmp_path / "sheet.html"
    r = CliRunner().invoke(app, ["sheet", "parallelism", "mixtral-8x22b", "-f", "html", "-o", str(out)])
    assert r.exit_code == 0, r.output
    pdf = tmp_path / "sheet.pdf"
    subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                    "--no-first-run", f"--print-to-pdf={pdf}", out.as_uri()], capture_output=True, timeout=120)
    assert pages(pdf.read_bytes()) == 1
