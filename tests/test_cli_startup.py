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


def _thp_mode() -> str | None:
    try:
        text = Path("/sys/kernel/mm/transparent_hugepage/enabled").read_text()
    except OSError:
        return None
    return text[text.index("[") + 1:text.index("]")] if "[" in text else None


@pytest.mark.skipif(_thp_mode() not in ("always", "madvise"), reason="no transparent huge pages to ask for here")
def test_the_console_script_asks_for_huge_pages_on_a_heap_range_it_has_reserved():
    """cli._keep_freed_memory marks a reserved heap range MADV_HUGEPAGE (the kernel shows `hg` among the range's
    VmFlags in /proc/self/smaps), and arrays below numpy's own 4 MiB madvise size fill it in 2 MiB pages: 32 x 2 MiB
    take ~32 faults instead of ~16,400 (README, Speed). Without the madvise no heap range is marked, so this fails
    if the step is lost or refused."""
    code = ("import resource, sys\nfrom llmcalc.cli import _keep_freed_memory\n"
            "if sys.argv[1] == 'on':\n    _keep_freed_memory()\n"
            "import numpy as np\nf0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt\n"
            "a = [np.ones(1 << 18) for _ in range(32)]  # 32 x 2 MiB: below numpy's own 4 MiB madvise size\n"
            "faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0\n"
            "smaps = open('/proc/self/smaps').read().split('\\n')\n"
            "hg = any(l.startswith('VmFlags:') and ' hg' in l for l in smaps)\n"
            "print(hg, faults)")
    out = {}
    for mode in ("on", "off"):
        p = subprocess.run([sys.executable, "-c", code, mode], capture_output=True, text=True, cwd=ROOT,
                           env={**os.environ, "PYTHONPATH": str(ROOT)})
        assert p.returncode == 0, p.stderr
        hg, faults = p.stdout.split()
        out[mode] = (hg == "True", int(faults))
    assert out["on"][0] and not out["off"][0], out
    assert out["on"][1] * 3 < out["off"][1], out  # 64 MiB in 4 KiB pages: 16,384 faults
