"""The headline figures of a scenario, shared by the A vs B page and the benchmark.

Each entry is a calculator Result and the keys of its figures worth comparing; calculators that
this build lacks are skipped, so the comparison grows as the engine does.
"""

from __future__ import annotations

from ..params import param_breakdown
from ..results import Result


def results(model, hardware, scen: dict) -> list[tuple[Result, tuple[str, ...]]]:
    out = [(param_breakdown(model), ("total", "active"))]
    return out
