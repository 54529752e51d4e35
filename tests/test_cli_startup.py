"""What the CLI's start-up skips (issue #13: every README one-liner within 0.3 s) stays equivalent to not skipping."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_catalogue_one_liners_import_neither_pydantic_nor_a_package_metadata_scanner():
    """Specs are validated by llmcalc.core.record, not pydantic (~95 ms of imports and schema building a start-up;
    typer still imports it for an option value its fast path leaves to it), and nothing scans the installed
    packages' metadata (importlib.metadata, ~12 ms)."""
    code = ("import sys; sys.argv = ['llmcalc', 'params', 'llama-3.1-8b']\n"
            "from llmcalc.cli import main\n"
            "try:\n    main()\nexcept SystemExit as e:\n    assert e.code in (0, None), e.code\n"
            "print('pydantic' in sys.modules, 'importlib.metadata' in sys.modules, file=sys.stderr)")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert p.returncode == 0, p.stderr
    assert "8,030,261,248" in p.stdout  # Llama-3.1-8B's published parameter count: the command ran in full
    assert p.stderr.split() == ["False", "False"]


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
