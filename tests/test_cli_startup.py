"""What the CLI's start-up skips (issue #13: every README one-liner within 0.3 s) stays equivalent to not skipping."""

import ast
import os
import subprocess
import sys
from pathlib import Path

import pydantic
import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_pydantic_asks_its_plugin_loader_only_for_get_plugins():
    """cli.main() stands in for pydantic.plugin._loader with a ``get_plugins`` returning () when
    PYDANTIC_DISABLE_PLUGINS disables every plugin (what the real one returns then). That is equivalent only while
    no pydantic module takes anything else from _loader: read every import of it in the installed pydantic."""
    taken = set()
    for path in Path(pydantic.__file__).parent.rglob("*.py"):
        if path.name == "_loader.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").endswith("_loader") and "plugin" in (
                    f"{path.parent.name}/{node.module}"):
                taken |= {(path.name, a.name) for a in node.names}
            elif isinstance(node, ast.Import) and any(a.name.endswith("plugin._loader") for a in node.names):
                taken.add((path.name, "<module>"))
    assert taken == {("_schema_validator.py", "get_plugins")}

    from pydantic.plugin import _loader as real  # the real module, in this (pytest) process

    os.environ["PYDANTIC_DISABLE_PLUGINS"], before = "__all__", os.environ.get("PYDANTIC_DISABLE_PLUGINS")
    try:
        assert tuple(real.get_plugins()) == ()
    finally:
        if before is None:
            del os.environ["PYDANTIC_DISABLE_PLUGINS"]
        else:
            os.environ["PYDANTIC_DISABLE_PLUGINS"] = before


def test_one_liner_imports_no_package_metadata_scanner():
    """A catalogue one-liner validates pydantic specs without importing importlib.metadata (~12 ms)."""
    code = ("import sys; sys.argv = ['llmcalc', 'params', 'llama-3.1-8b']\n"
            "from llmcalc.cli import main\n"
            "try:\n    main()\nexcept SystemExit as e:\n    assert e.code in (0, None), e.code\n"
            "print('importlib.metadata' in sys.modules, type(sys.modules['pydantic.plugin._loader']).__name__,"
            " file=sys.stderr)")
    env = {k: v for k, v in os.environ.items() if k != "PYDANTIC_DISABLE_PLUGINS"}
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                       env={**env, "PYTHONPATH": str(ROOT)})
    assert p.returncode == 0, p.stderr
    assert "8,030,261,248" in p.stdout  # Llama-3.1-8B's published parameter count: the command ran in full
    assert p.stderr.split() == ["False", "module"]


def test_building_the_spec_schemas_tokenizes_no_builtin_signature():
    """pydantic reads each default_factory's signature when it builds a spec's schema; a builtin's (``dict``,
    ``list``) is text that inspect tokenizes, compiling tokenize's large regex (~3 ms a start-up). Spec defaults are
    Python functions: loading a model (with MoE) and an accelerator (with links) compiles no tokenizer regex."""
    code = ("import tokenize\nfrom llmcalc.core.catalogue import load_hardware, load_model\n"
            "m, h = load_model('mixtral-8x7b'), load_hardware('h100-sxm')\n"
            "assert m.moe.dense_layers == []\n"
            "print(tokenize._compile.cache_info().currsize)")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "0"


@pytest.mark.parametrize("argv", [
    "plan gpt-3-175b -H a100-sxm-80gb --gpus 1024,2048 --global-batch 1536 --tokens 300B",
    "plan-serve llama-3.1-70b -H h100-sxm --users 1000 --prompt 1000 --output 300",
    "rl qwen2.5-7b -H h100-sxm --gpus 64 --prompts 512 --samples 16 --response-len 3000,1.0 --max-response 8192",
    "batching llama-3.1-8b -H h100-sxm --qps 10",
    "infer llama-3.1-8b -H h100-sxm --batch 8 --prompt 1000 --output 300",
    "serve llama-3.1-70b -H h100-sxm --users 10000 --prompt 1000 --output 300 --ttft 2s --tpot 50ms",
])
def test_one_liners_do_not_import_numpy_ma(argv):
    """numpy 2's plain np.unique imports numpy.ma (~10 ms of start-up): the engine asks core.pointmemo.distinct."""
    code = (f"import sys\nsys.argv = ['llmcalc', *{argv.split()!r}]\nfrom llmcalc.cli import main\n"
            "try:\n    main()\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
            "print('numpy.ma' in sys.modules, file=sys.stderr)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert (r.returncode, r.stderr.strip()) == (0, "False"), r.stderr
