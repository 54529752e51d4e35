"""The engine's import rules (README 'Layout'; ../shared/DESIGN.md 'Layout: an engine in wings'), read from
the source with ``ast`` so a rule cannot be broken by an import hidden inside a function.

- the engine never imports a face (cli, dashboard);
- ``training`` and ``inference`` never import each other;
- arrows point down only: a wing imports only wings at or below its own level;
- no import cycles between modules.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "llmcalc"
FACES = {"cli", "dashboard"}
# The level of each wing; a module may import its own wing and any wing of a lower level.
LEVEL = {"core": 0, "model": 1, "network": 1, "training": 2, "inference": 2, "rl": 3, "study": 3,
         "plan": 3, "validation": 4, "report": 4, "cli": 5, "dashboard": 5, "__init__": 5, "__main__": 5}
ALLOWED = {  # wing -> wings it may import (besides itself), from the levels plus the named exceptions
    w: {o for o, lo in LEVEL.items() if lo < lvl and o not in FACES} for w, lvl in LEVEL.items()}
for face in FACES | {"__init__", "__main__"}:
    ALLOWED[face] |= FACES
ALLOWED["model"] -= {"network"}
ALLOWED["network"] -= {"model"}


def _module_name(path: Path) -> str:
    rel = path.relative_to(PKG.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    """Absolute llmcalc module names imported anywhere in ``path`` (module level or inside functions)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    me = _module_name(path).split(".")
    package = me if path.name == "__init__.py" else me[:-1]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "llmcalc"}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if mod.split(".")[0] != "llmcalc":
                continue
            found.add(mod)
            for a in node.names:  # `from ..model import flops` imports the module llmcalc.model.flops
                if (PKG.parent / (mod.replace(".", "/") + f"/{a.name}.py")).exists():
                    found.add(f"{mod}.{a.name}")
    return found


def _wing(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


GRAPH = {_module_name(p): _imports(p) for p in sorted(PKG.rglob("*.py"))}


def test_the_walk_sees_the_engine():
    """Guard the guard: the walk must find the wings and the arrows we know are there."""
    assert {"llmcalc.core.units", "llmcalc.training.comms", "llmcalc.inference.latency",
            "llmcalc.network.collectives"} <= set(GRAPH)
    assert "llmcalc.network.collectives" in GRAPH["llmcalc.training.comms"]
    assert "llmcalc.network.collectives" in GRAPH["llmcalc.inference.latency"]


@pytest.mark.parametrize("module", sorted(GRAPH))
def test_arrows_point_down(module):
    wing = _wing(module)
    if wing.endswith(("__init__", "__main__")) and module.count(".") == 0:
        return  # llmcalc/__init__.py re-exports the public API lazily (strings, not imports)
    assert wing in LEVEL, f"{module}: wing {wing!r} has no level in tests/test_architecture.py (add it)"
    bad = sorted(t for t in GRAPH[module] if _wing(t) != wing and _wing(t) not in ALLOWED[wing])
    assert not bad, f"{module} ({wing}) imports {bad}: not allowed by the wing rules"


def test_engine_never_imports_a_face():
    bad = [(m, t) for m, ts in GRAPH.items() if _wing(m) not in FACES | {"__init__", "__main__"}
           for t in ts if _wing(t) in FACES]
    assert not bad


def test_training_and_inference_do_not_import_each_other():
    bad = [(m, t) for m, ts in GRAPH.items() for t in ts
           if {_wing(m), _wing(t)} == {"training", "inference"}]
    assert not bad


def test_no_import_cycles():
    """Depth-first search over module imports (package __init__ edges included)."""
    graph = {m: {t for t in ts if t in GRAPH and t != m} for m, ts in GRAPH.items()}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m):
        state[m] = 1
        stack.append(m)
        for t in sorted(graph[m]):
            if state.get(t) == 1:
                raise AssertionError("import cycle: " + " -> ".join(stack[stack.index(t):] + [t]))
            if t not in state:
                visit(t)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)


def test_every_wing_says_what_it_is_for():
    for init in PKG.glob("*/__init__.py"):
        doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8")))
        assert doc and "import" in doc, f"{init}: docstring must say what the wing is for and may import"


def test_readme_module_paths_import():
    """Every `from llmcalc.… import …` the README shows notebook users resolves (no stale flat paths)."""
    import importlib
    import re

    readme = (PKG.parent / "README.md").read_text(encoding="utf-8")
    shown = re.findall(r"from (llmcalc(?:\.\w+)+) import (\w+)", readme)
    assert len(shown) >= 4
    for module, name in shown:
        assert hasattr(importlib.import_module(module), name), f"README: from {module} import {name}"
