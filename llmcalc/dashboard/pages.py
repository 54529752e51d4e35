"""The page registry: which pages exist, their titles and the group the page picker shows them under.

Adding a page is one line in :data:`PAGES`: ``Page(key, title, group, module)``, where ``module`` (in
llmcalc/dashboard/) has ``render(model, hardware, state)`` and draws, first, its answer line with
:func:`llmcalc.dashboard.panels.answer` and its parts inside :func:`llmcalc.dashboard.panels.section`.
``tests/test_app.py`` renders every page listed here. Pure (no Streamlit), so URL decoding can use it.
"""

from __future__ import annotations

from dataclasses import dataclass

GROUPS = ("Size & FLOPs", "Training", "Inference & serving", "Study")


@dataclass(frozen=True)
class Page:
    key: str  # the ?page= value in links
    title: str
    group: str  # one of GROUPS
    module: str  # llmcalc.dashboard.<module> with render(model, hardware, s)


PAGES: tuple[Page, ...] = (
    Page("model", "Model", "Size & FLOPs", "model_page"),
    Page("training", "Training", "Training", "training"),
    Page("plan", "Plan a training run", "Training", "plan"),
    Page("rl", "RL post-training", "Training", "rl"),
    Page("inference", "Inference", "Inference & serving", "inference"),
    Page("serving", "Serving", "Inference & serving", "serving"),
    Page("compare", "A vs B", "Study", "compare"),
)

BY_KEY = {p.key: p for p in PAGES}


def label(key: str) -> str:
    """What the page picker shows: 'Training › Plan'."""
    p = BY_KEY[key]
    return f"{p.group} › {p.title}"


def ordered() -> list[str]:
    """Page keys grouped in GROUPS order (registration order inside a group)."""
    return [p.key for g in GROUPS for p in PAGES if p.group == g]
