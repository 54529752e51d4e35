"""Run the published cases: our number (from an evaluator), the published one, the error, the tolerance the
case's source states, and a verdict.

A case (one YAML mapping in ``cases/*.yaml``)::

    id: params-gpt2-124m            # unique
    category: params
    quantity: total parameters
    source: {title: ..., location: ..., url: ...}
    evaluator: params                # llmcalc.validation.evaluators
    inputs: {model: gpt2, part: total}
    published: 124439808
    unit: param
    tolerance: {rel: 0}              # or {abs: 0.05} or {band: [low, high]} on ours/published
    tolerance_source: why this tolerance (the source's precision or its stated band, never our own excess)
    role: test                       # or calibration: a default was fitted on this case
    expect: inside                   # or outside, with reason: ...

``expect: outside`` cases stay visible with their reason; a case expected inside that falls outside fails
the run (exit 1 from ``llmcalc validate``).
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass
from pathlib import Path

from ..core.errors import LlmcalcError
from .evaluators import CASES_DIR, evaluate

REQUIRED = ("id", "category", "quantity", "source", "evaluator", "inputs", "published", "tolerance",
            "tolerance_source", "expect")


@dataclass(frozen=True)
class Outcome:
    id: str
    category: str
    quantity: str
    ours: float | None
    published: float
    unit: str
    error: float | None  # ours/published - 1
    tolerance: str
    inside: bool
    expect: str  # inside | outside
    role: str
    reason: str
    source: str
    problem: str = ""  # an evaluator that raised: the case fails

    @property
    def verdict(self) -> str:
        if self.problem:
            return "ERROR" if self.expect == "inside" else "not expressible yet (known)"
        if self.inside:
            if self.expect == "outside":
                return "inside (known outside: update the case)"
            return "inside (calibration)" if self.role == "calibration" else "inside"
        return "OUTSIDE" if self.expect == "inside" else "outside (known)"

    @property
    def failed(self) -> bool:
        return self.expect == "inside" and (bool(self.problem) or not self.inside)

    def as_dict(self) -> dict:
        return {"id": self.id, "category": self.category, "quantity": self.quantity, "ours": self.ours,
                "published": self.published, "unit": self.unit, "error": self.error, "tolerance": self.tolerance,
                "inside": self.inside, "expect": self.expect, "verdict": self.verdict, "role": self.role,
                "reason": self.reason, "source": self.source, "problem": self.problem}


_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)[eE][+-]?\d+$")


def _numbers(x):
    """YAML 1.1 reads 5.76e23 (no '.', no exponent sign) as a string: make such scalars floats."""
    if isinstance(x, dict):
        return {k: _numbers(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_numbers(v) for v in x]
    if isinstance(x, str) and _NUMBER.match(x.strip()):
        return float(x)
    return x


def load_cases(category: str | None = None, directory: Path | None = None) -> list[dict]:
    import yaml

    cases, seen = [], set()
    for path in sorted((directory or CASES_DIR).glob("*.yaml")):
        for c in _numbers(yaml.safe_load(path.read_text()) or []):
            missing = [k for k in REQUIRED if k not in c]
            if missing:
                raise LlmcalcError(f"{path.name}: case {c.get('id', '?')} lacks {', '.join(missing)}")
            if c["id"] in seen:
                raise LlmcalcError(f"{path.name}: duplicate case id {c['id']}")
            if c["expect"] not in ("inside", "outside") or (c["expect"] == "outside" and not c.get("reason")):
                raise LlmcalcError(f"{path.name}: case {c['id']}: expect is inside, or outside with a reason")
            seen.add(c["id"])
            cases.append(c)
    if category is not None:
        known = sorted({c["category"] for c in cases})
        cases = [c for c in cases if c["category"] == category]
        if not cases:
            raise LlmcalcError(f"--category: no case in {category!r}; categories: {', '.join(known)}")
    return cases


def check(ours: float, published: float, tol: dict) -> tuple[bool, str]:
    """Is ours inside the tolerance around published? And the tolerance as text."""
    if "rel" in tol:
        r = tol["rel"]
        return abs(ours / published - 1) <= r + 1e-12, "exact" if r == 0 else f"±{r * 100:.3g}%"
    if "abs" in tol:
        return abs(ours - published) <= tol["abs"] + 1e-12, f"±{tol['abs']:g} abs"
    if "band" in tol:
        lo, hi = tol["band"]
        return lo <= ours / published <= hi, f"{lo:.3g}-{hi:.3g}x"
    raise LlmcalcError(f"tolerance must have rel, abs or band, got {tol}")


def run_case(c: dict) -> Outcome:
    src = c["source"]
    source = src if isinstance(src, str) else "; ".join(str(src[k]) for k in ("title", "location") if k in src)
    common = dict(id=c["id"], category=c["category"], quantity=c["quantity"], published=float(c["published"]),
                  unit=c.get("unit", ""), expect=c["expect"], role=c.get("role", "test"),
                  reason=c.get("reason", ""), source=source)
    tol_text = check(1.0, 1.0, c["tolerance"])[1]
    try:
        ours = evaluate(c["evaluator"], c["inputs"])
    except Exception as e:  # noqa: BLE001 - a broken case is reported as a failing row, not a crash
        return Outcome(ours=None, error=None, tolerance=tol_text, inside=False,
                       problem=f"{type(e).__name__}: {e}", **common)
    if not math.isfinite(ours):
        return Outcome(ours=ours, error=None, tolerance=tol_text, inside=False, problem="non-finite result",
                       **common)
    inside, tol = check(ours, float(c["published"]), c["tolerance"])
    return Outcome(ours=ours, error=ours / float(c["published"]) - 1, tolerance=tol, inside=inside, **common)


def run(category: str | None = None, directory: Path | None = None) -> dict:
    t0 = time.perf_counter()
    outcomes = [run_case(c) for c in load_cases(category, directory)]
    n = len(outcomes)
    ok = sum(o.inside and o.expect == "inside" and not o.problem for o in outcomes)
    known = sum(o.expect == "outside" and not o.inside for o in outcomes)
    failed = [o for o in outcomes if o.failed]
    newly = [o for o in outcomes if o.inside and o.expect == "outside" and not o.problem]
    summary = (f"{n} published cases: {ok} inside their stated tolerance as expected, {known} known outside "
               f"(reasons listed), {len(failed)} unexpected failure{'s' if len(failed) != 1 else ''}")
    if newly:
        summary += f", {len(newly)} known-outside now inside"
    return {"outcomes": outcomes, "summary": summary, "failed": len(failed), "seconds": time.perf_counter() - t0}
