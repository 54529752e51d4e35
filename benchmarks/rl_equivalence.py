"""Does a change to the RL engine change any output? Run the same ~30 varied ``llmcalc rl`` command lines on two
trees and compare them byte for byte (issue #13: every speed-up of llmcalc/rl must leave its figures unchanged).

    PYTHONPATH=/path/to/old python benchmarks/rl_equivalence.py --dump old.json
    PYTHONPATH=$PWD         python benchmarks/rl_equivalence.py --dump new.json
    python benchmarks/rl_equivalence.py --compare old.json new.json

The cases: the README's two rl one-liners as text, ``--json`` and ``--explain``, then GRPO and PPO, sync and async
regimes, staleness 0-4 and inf, partial rollouts on and off, given and searched splits, rollout TP, given trainer
layouts, mini-batches, a reward model, engine log-probs, selective recompute, a dense 70B and the MoE Mixtral, H100,
H200, B200, A100, MI300X, and inputs that end in an error. Each runs as its own ``python -m llmcalc rl`` process
(the CLI a user runs, no per-process cache shared between cases); exit code, stdout and stderr are stored.
``--compare`` prints every case that differs and exits 1 if one does.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

CASES = [
    "qwen2.5-7b -H h100-sxm --gpus 64 --prompts 512 --samples 16 --response-len 3000,1.0 --max-response 8192",
    "qwen2.5-7b -H h100-sxm --gpus 64 --prompts 512 --response-len 2000,6000,8000 --rollout-gpus 16 --staleness 1",
    "qwen2.5-7b -H h100-sxm --gpus 64 --prompts 512 --samples 16 --response-len 3000,1.0 --max-response 8192 --json",
    "qwen2.5-7b -H h100-sxm --gpus 64 --prompts 512 --response-len 2000,6000,8000 --rollout-gpus 16"
    " --staleness 1 --json",
    "qwen2.5-7b -H h100-sxm --gpus 64 --prompts 512 --samples 16 --response-len 3000,1.0 --max-response 8192 --explain",
    "qwen2.5-7b -H h100-sxm --gpus 64 --prompts 512 --response-len 2000,6000,8000 --rollout-gpus 16"
    " --staleness 1 --explain",
    "qwen2.5-7b -H h100-sxm --gpus 32 --prompts 256 --samples 1 --algo ppo --response-len 2000,0.8 --json",
    "qwen2.5-7b -H h100-sxm --gpus 32 --prompts 128 --samples 8 --response-len 4000,1.2 --staleness 0 --json",
    "qwen2.5-7b -H h100-sxm --gpus 32 --prompts 128 --samples 8 --response-len 4000,1.2 --staleness 3"
    " --no-partial --json",
    "qwen2.5-7b -H h100-sxm --gpus 32 --prompts 128 --samples 8 --response-len 4000,1.2 --staleness 4 --json",
    "qwen2.5-7b -H h100-sxm --gpus 32 --prompts 128 --samples 8 --response-len 4000,1.2 --staleness inf --json",
    "qwen2.5-7b -H h100-sxm --gpus 32 --prompts 128 --samples 8 --response-len 4000,1.2 --regime sync --json",
    "qwen2.5-7b -H h100-sxm --gpus 32 --prompts 128 --samples 8 --response-len 4000,1.2 --regime async --json",
    "qwen2.5-7b -H a100-sxm-80gb --gpus 16 --prompts 64 --samples 16 --response-len table:500,1000,2000,8000 --json",
    "llama-3.1-8b -H h200-sxm --gpus 48 --prompts 256 --samples 8 --response-len 1500,3500,7000"
    " --rollout-gpus 24 --staleness 2 --json",
    "llama-3.1-8b -H b200 --gpus 16 --prompts 64 --samples 4 --response-len 3000,0.5 --algo ppo --minibatches 4 --json",
    "llama-3.1-70b -H h100-sxm --gpus 128 --prompts 256 --samples 8 --response-len 4000,1.0 --rollout-tp 4 --json",
    "llama-3.1-70b -H h100-sxm --gpus 64 --prompts 128 --samples 8 --response-len 3000,0.8 --rollout-tp"
    " 8 --train-tp 8 --zero 1 --json",
    "mixtral-8x7b -H h100-sxm --gpus 64 --prompts 256 --samples 8 --response-len 3000,1.0 --rollout-tp 2 --json",
    "mixtral-8x7b -H h100-sxm --gpus 64 --prompts 256 --samples 8 --response-len 3000,1.0 --rollout-tp 2"
    " --train-ep 8 --json",
    "qwen2.5-7b -H mi300x --gpus 16 --prompts 128 --samples 16 --response-len 2500,1.5 --max-response"
    " 16384 --rollout-logprobs --json",
    "qwen2.5-7b -H h100-sxm --gpus 8 --prompts 32 --samples 8 --response-len 1000,0.3 --recompute selective --json",
    "gemma-2-9b -H h100-sxm --gpus 24 --prompts 96 --samples 8 --response-len 2000,1.0 --rollout-gpus 8"
    " --staleness 0 --json",
    "qwen2.5-7b -H h100-sxm --gpus 64 --prompts 512 --samples 16 --response-len 3000,1.0 --reward-model"
    " qwen2.5-7b --ref --json",
    "qwen2.5-7b -H h100-sxm --gpus 64 --prompts 64 --samples 16 --response-len 3000,1.0 --staleness 1"
    " --no-partial --rollout-gpus 32 --json",
    "qwen2.5-72b -H h100-sxm --gpus 8 --prompts 8 --samples 4 --response-len 1000,0.3 --json",
    "qwen2.5-7b -H h100-sxm --gpus 2 --prompts 4 --samples 4 --response-len 500,0.5 --json",
    "qwen2.5-7b -H mi300x --gpus 8 --prompts 64 --samples 16 --response-len 2500,1.5 --max-response"
    " 16384 --rollout-logprobs --json",
    "qwen2.5-72b -H h100-sxm --gpus 32 --prompts 32 --samples 8 --response-len 2000,0.6 --rollout-tp 4 --json",
    "mixtral-8x7b -H h100-sxm --gpus 32 --prompts 128 --samples 8 --response-len 2000,1.0 --rollout-tp 2"
    " --train-tp 2 --train-ep 4 --json",
    "qwen2.5-7b -H h100-sxm --gpus 64 --prompts 256 --samples 16 --response-len 3000,1.0 --staleness 2"
    " --no-partial --json",
]


def _run(case: str) -> dict:
    p = subprocess.run([sys.executable, "-m", "llmcalc", "rl", *case.split()], capture_output=True, text=True,
                       env=dict(os.environ))
    return {"rc": p.returncode, "stdout": p.stdout, "stderr": p.stderr}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dump", metavar="FILE", help="run every case with this interpreter's llmcalc, write FILE")
    ap.add_argument("--compare", nargs=2, metavar=("OLD", "NEW"), help="compare two dumps")
    ap.add_argument("--jobs", type=int, default=2, help="cases run at once (default 2: the development machine)")
    a = ap.parse_args()
    if a.dump:
        with ThreadPoolExecutor(a.jobs) as pool:
            out = dict(zip(CASES, pool.map(_run, CASES), strict=True))
        with open(a.dump, "w") as f:
            json.dump(out, f, indent=1)
        print(f"{len(out)} cases, {sum(r['rc'] == 0 for r in out.values())} exit 0, written to {a.dump}")
        return 0
    if a.compare:
        old, new = (json.load(open(x)) for x in a.compare)
        bad = [c for c in CASES if old.get(c) != new.get(c)]
        for c in bad:
            print(f"DIFFERS: llmcalc rl {c}")
        print(f"{len(CASES) - len(bad)} of {len(CASES)} cases identical")
        return 1 if bad else 0
    ap.print_help()
    return 2


if __name__ == "__main__":
    sys.exit(main())
