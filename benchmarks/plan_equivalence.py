"""Does a change to the planner change any output? Run the same ~30 varied plan cases on two trees and compare.

    PYTHONPATH=/path/to/old python benchmarks/plan_equivalence.py --dump old.json
    PYTHONPATH=$PWD         python benchmarks/plan_equivalence.py --dump new.json
    python benchmarks/plan_equivalence.py --compare old.json new.json

Each of the 33 cases is one ``llmcalc plan`` command line (dense and MoE catalogue models, several accelerators, one or
several GPU counts, pinned dimensions, objectives, schedules, recipes, a case where nothing fits) run in-process
twice: as text and with ``--json``; the exit code and the whole output are stored. A few API cases also store
``plan_training(..., keep_evaluated=True)``: every timed candidate's arrays, compared bit for bit (the dashboard
and the reports read them). ``--compare`` prints every difference and exits 1 if there is one.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time

CASES = [
    "gpt-3-175b -H a100-sxm-80gb --gpus 1024,2048,4096 --global-batch 1536 --tokens 300B --price 2",
    "llama-3.1-405b -H h100-sxm --gpus 16384 --global-batch 2048 --seq 8192 --tp 8 --pp 16",
    "gpt-3-175b -H a100-sxm-80gb --gpus 4096 --global-batch 1536",
    "llama-3.1-70b -H h100-sxm --gpus 64,128 --global-batch 512 --seq 4096 --objective cost",
    "llama-3.1-8b -H h100-sxm --gpus 8 --global-batch 64 --seq 8192 --objective mfu",
    "mixtral-8x7b -H h100-sxm --gpus 64,128,256 --global-batch 1024 --seq 4096 --top 20 --tokens 15T",
    "deepseek-v3 -H h100-sxm --gpus 64,128,256 --global-batch 1024 --seq 4096 --top 20 --tokens 15T",
    "mixtral-8x22b -H h100-sxm --gpus 128,256 --global-batch 512 --seq 4096",
    "deepseek-v3 -H h100-sxm --gpus 2048 --global-batch 15360 --seq 4096 --schedule dualpipe --recompute-norm-up "
    "--fp8-activations --optimizer adam-bf16-moments --dtype fp8 --ep 64 --tp 1",
    "gemma-2-27b -H tpu-v5p --gpus 256 --global-batch 256 --seq 8192",
    "qwen2.5-72b -H mi300x --gpus 8 --global-batch 64 --seq 4096",
    "llama-2-7b -H a100-sxm-40gb --gpus 8 --global-batch 32 --seq 4096",
    "gpt2 -H l4 --gpus 1 --global-batch 8 --seq 1024",
    "llama-3.1-70b -H b200 --gpus 1024 --global-batch 1024 --seq 8192 --zero 3",
    "llama-3.1-405b -H h100-sxm --gpus 8192 --global-batch 1024 --seq 8192 --recompute full",
    "mixtral-8x7b -H h100-sxm --gpus 32 --global-batch 64 --seq 4096 --ep 8 --etp 1",
    "llama-2-13b -H a100-sxm-40gb --gpus 8 --global-batch 64 --seq 4096 --offload-optimizer",
    "llama-2-13b -H a100-sxm-40gb --gpus 8 --global-batch 64 --seq 4096 --no-offload-optimizer",
    "llama-2-70b -H h100-sxm --gpus 256 --global-batch 512 --seq 4096 --sp --objective mfu",
    "llama-2-70b -H h100-sxm --gpus 256 --global-batch 512 --seq 4096 --no-sp --attention unfused",
    "llama-3.1-8b -H h200-sxm --gpus 64 --global-batch 128 --seq 32768 --max-cp 4 --tp-comm-overlap",
    "llama-3.1-70b -H h100-sxm --gpus 512 --global-batch 256 --seq 16384 --cp 2 -v 2 -b 1",
    "gpt-3-175b -H a100-sxm-80gb --gpus 1024 --global-batch 1536 --dp 16 --reserve 0",
    "llama-3.1-70b -H gb200 --gpus 576 --global-batch 576 --seq 8192 --compute-efficiency 0.5",
    "phi-3-mini -H h100-pcie --gpus 4 --global-batch 32 --seq 4096 --objective cost",
    "mistral-7b -H tpu-v6e --gpus 64 --global-batch 256 --seq 8192",
    "llama-3.1-8b -H a100-sxm-80gb --gpus 8..64 --global-batch 256 --seq 4096 --objective cost --top 5",
    "qwen2.5-7b -H mi325x --gpus 4,8 --global-batch 64 --seq 8192 --zero 1 --recompute selective",
    "gpt-3-175b -H l4 --gpus 8 --global-batch 8",
    "llama-3.1-405b -H h100-sxm --gpus 8 --global-batch 64 --seq 4096",
    "llama-2-70b -H h100-sxm --gpus 64 --global-batch 64 --seq 4096 --explain",
    "gemma-2-9b -H h100-nvl --gpus 16 --global-batch 64 --seq 8192 --micro-batch 2 --zero 2",
    "deepseek-v3 -H h200-sxm --gpus 512 --global-batch 512 --seq 4096 --objective cost --top 5",
]

# (model, hardware, gpus, global batch, seq, extra keyword arguments): every timed candidate kept
API_CASES = [
    ("gpt-3-175b", "a100-sxm-80gb", [1024], 1536, 2048, {}),
    ("mixtral-8x7b", "h100-sxm", [32, 64], 64, 4096, {"top": 3}),
    ("llama-3.1-8b", "h100-sxm", [8, 16], 64, 4096, {"objective": "cost"}),
    ("llama-2-13b", "a100-sxm-40gb", [8], 64, 4096, {}),
]


def _digest(arr) -> str:
    import numpy as np

    a = np.ascontiguousarray(arr)
    return f"{a.dtype.kind}{a.shape}:" + hashlib.sha256(a.tobytes()).hexdigest()[:16]


def dump(path: str) -> None:
    from typer.testing import CliRunner

    from llmcalc.cli import app
    from llmcalc.core.catalogue import load_hardware, load_model
    from llmcalc.training.plan import plan_training

    runner = CliRunner()
    out: dict[str, dict] = {}
    for case in CASES:
        for extra in ([], ["--json"]):
            args = ["plan", *case.split(), *extra]
            t0 = time.perf_counter()
            res = runner.invoke(app, args)
            out[" ".join(args)] = {"rc": res.exit_code, "out": res.output}
            print(f"{time.perf_counter() - t0:6.2f} s  rc {res.exit_code}  {' '.join(args)}", flush=True)
    for model, hw, gpus, gb, seq, kw in API_CASES:
        r = plan_training(load_model(model), load_hardware(hw), gpus=gpus, global_batch=gb, seq=seq,
                          keep_evaluated=True, **kw)
        ev = r.data.pop("evaluated")
        key = f"api {model} {hw} {gpus} {gb} {seq} {kw}"
        out[key] = {"data": json.dumps(r.data, sort_keys=True, default=repr),
                    "evaluated": {k: _digest(v) for k, v in sorted(ev.items())}}
        print(f"api {key}: {len(ev['tp'])} timed", flush=True)
    with open(path, "w") as f:
        json.dump(out, f, indent=1, sort_keys=True)


def compare(a_path: str, b_path: str) -> int:
    with open(a_path) as f:
        a = json.load(f)
    with open(b_path) as f:
        b = json.load(f)
    bad = 0
    for key in sorted(set(a) | set(b)):
        if a.get(key) != b.get(key):
            bad += 1
            print(f"DIFFERS: {key}")
            x, y = a.get(key) or {}, b.get(key) or {}
            for k in sorted(set(x) | set(y)):
                if x.get(k) != y.get(k):
                    xs, ys = str(x.get(k)).splitlines(), str(y.get(k)).splitlines()
                    for i, (p, q) in enumerate(zip(xs, ys, strict=False)):
                        if p != q:
                            print(f"  {k} line {i}:\n    - {p}\n    + {q}")
                            break
                    else:
                        print(f"  {k}: {len(xs)} vs {len(ys)} lines")
    print(f"{len(set(a) | set(b))} outputs compared, {bad} differ")
    return 1 if bad else 0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dump", metavar="FILE")
    ap.add_argument("--compare", nargs=2, metavar=("OLD", "NEW"))
    a = ap.parse_args()
    if a.dump:
        dump(a.dump)
    if a.compare:
        sys.exit(compare(*a.compare))


if __name__ == "__main__":
    main()
