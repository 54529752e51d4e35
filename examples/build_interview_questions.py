"""Build examples/interview_questions.ipynb and its Markdown render examples/interview_questions.md.

Each section answers a canonical LLM-systems interview question twice: first by hand, in shape-suffix
notation with round numbers (as at a whiteboard), then with the llmcalc call that checks it; the gap
between the two is printed and explained. The code cells are executed here, their printed output is
stored in both files. tests/test_interview_notebook.py re-runs every cell, whose asserts bound the gap
between the hand estimate and the engine, and checks both files hold exactly these cells; the printed
outputs are the snapshot of the last build. Run: ``python examples/build_interview_questions.py``.
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

HERE = Path(__file__).resolve().parent

CELLS: list[tuple[str, str]] = [
    ("md", """# Interview questions, answered twice

Each section: the estimate **by hand** in shape-suffix notation (B batch, L sequence, D width, F MLP width,
H heads, G KV heads, K head size, V vocabulary; `llmcalc notation`) with round numbers, then the **one-liner**
that checks it, and the **gap** explained. Every number in the second half is the engine's, with its
derivation one `.explain()` away. The cells run in the test suite."""),
    ("code", """from llmcalc import (Layout, chinchilla, comm_ledger, forward_flops, kv_cache, latency, load_hardware,
                     load_model, serve, speculative, training_cost, training_memory)
from llmcalc.core.units import fmt
from llmcalc.inference.latency import Deployment
from llmcalc.study.why import why

h100 = load_hardware("h100-sxm")


def gap(name, engine, hand):
    print(f"{name}: engine {engine:.4g} vs hand {hand:.4g}  (engine / hand = {engine / hand:.3f})")
    return engine / hand"""),
    ("md", """## 1. How many tokens should a 70B model train on? And an MoE?

**By hand.** Chinchilla (Hoffmann et al. 2022): about 20 tokens per parameter, so D ≈ 20·N = 20 · 70e9 =
**1.4e12 tokens**. For an MoE the FLOPs per token follow the *active* parameters: Mixtral-8x7B activates 2 of 8
experts, ≈ 13e9 parameters, so D ≈ 20 · 13e9 = **2.6e11 tokens** (while memory must hold all ≈ 47e9)."""),
    ("code", """dense = chinchilla(load_model("llama-3.1-70b"))
moe = chinchilla(load_model("mixtral-8x7b"))
print(dense["size/rule20/tokens"].explain())
g1 = gap("Llama-3.1-70B tokens", dense.value("size/rule20/tokens"), 20 * 70e9)
g2 = gap("Mixtral-8x7B tokens", moe.value("size/rule20/tokens"), 20 * 13e9)
assert 0.95 < g1 < 1.05 and 0.95 < g2 < 1.05"""),
    ("md", """**Gap.** Within a few percent: the engine counts the exact parameters (70.6e9 with embeddings; Mixtral's
12.9e9 active), not the round names. Approach 3's fitted law (also in `chinchilla`) asks for more tokens at
this size; the 20× rule is the interview answer."""),
    ("md", """## 2. How many H100s and days to train a 70B model on 15T tokens?

**By hand.** C = 6·N·D = 6 · 70e9 · 15e12 ≈ **6.3e24 FLOP**. An H100 gives 989e12 dense bf16 FLOP/s; at 40% MFU
≈ 4e14 FLOP/s per GPU, so 6.3e24 / 4e14 ≈ 1.6e10 GPU-seconds ≈ 4.4e6 GPU-hours. On 2,048 GPUs: 1.6e10 / 2048 ≈
7.7e6 s ≈ **90 days**."""),
    ("code", """r = training_cost(load_model("llama-3.1-70b"), 15e12, h100, 2048, mfu=0.4)
print(r["days"].explain())
g = gap("days", r.value("days"), 6 * 70e9 * 15e12 / (2048 * 0.4 * 989e12) / 86400)
assert 0.95 < g < 1.05"""),
    ("md", """**Gap.** Only the exact N (70.6e9 instead of 70e9). Real runs lose more to failures and restarts; the MFU
assumption dominates everything else."""),
    ("md", """## 3. FLOPs of one transformer block: forward, backward, step

**By hand** (Llama-3.1-8B: D = 4096, H = 32, G = 8, K = 128, F = 14336; B = 1, L = 4096). Matmul weights per
layer: attention D·(H+2G)·K + H·K·D = 4096·6144 + 4096·4096 ≈ 4.2e7; MLP 3·D·F ≈ 1.76e8; total ≈ 2.2e8.
Each weight costs 2 FLOPs per token: 2 · B·L · 2.2e8 ≈ 1.8e12. Attention scores and values: `BLHK,BMHK->BHLM` and
`BHLM,BMHK->BLHK`, 2 · 2·B·L·M·H·K = 4 · 4096² · 4096 ≈ 2.7e11. Forward ≈ **2.1e12 FLOP**, backward 2× ≈ 4.2e12,
step 3× ≈ **6.2e12**."""),
    ("code", """f = forward_flops(load_model("llama-3.1-8b"), batch=1, seq=4096)
layer = f.data["per_layer"]["dense"]
for mm in layer["matmuls"]:
    print(f"{mm['einsum']:22s} {fmt(mm['flops'], 'FLOP'):>12}")
fwd = layer["forward_flops_per_layer"]
g = gap("one layer forward", fwd, 2 * 4096 * 2.2e8 + 4 * 4096**2 * 4096)
print("backward", fmt(layer["backward_flops"] / layer["layers"], "FLOP"), " step",
      fmt(layer["train_step_flops"] / layer["layers"], "FLOP"))
assert 0.95 < g < 1.05"""),
    ("md", """**Gap.** The rounding of 2.2e8 weights; the engine counts the full L×M rectangle of attention (what
FlashAttention-free HF code executes); `causal=True` halves the attention part."""),
    ("md", """## 4. Shard a 70B model on 64 H100s: what moves, per rank?

**By hand.** Model states at 18 B/param (Megatron-Core: bf16 weights 2, fp32 main grads 4, fp32 master, m and
v 12) = 18 · 70e9 ≈ 1.3e12 B: far over 80 GB, so shard. TP 8 inside each node (NVLink), PP 2 across nodes,
DP 4 with ZeRO-1. Per GPU: weights 2 B · 70e9 / 16 ≈ 8.8 GB, grads 4 B · 70e9 / 16 ≈ 17.5 GB, optimizer
12 B · 70e9 / (16 · 4) ≈ 13 GB, plus activations.
Collectives per rank: TP all-reduces `BLD` (4 per layer per micro-batch), at L = 4096 that is
2·1·4096·8192 B ≈ 67 MB each, a ring moving 2·(8−1)/8 of it; PP sends `BLD/tp` between stages; DP
reduce-scatters and all-gathers the stage's ≈ 70e9/16 parameters once per step."""),
    ("code", """m70 = load_model("llama-3.1-70b")
lay = Layout(tp=8, pp=2, dp=4, zero=1)
mem = training_memory(m70, h100, lay, seq=4096, global_batch=64, recompute="selective")
print(mem.title)
for k in ("first_stage/weights", "first_stage/grads", "first_stage/optimizer", "memory/total"):
    print(f"  {mem[k].name:45s} {mem[k].text()}")
led = comm_ledger(m70, h100, lay, seq=4096, global_batch=64)
for row in led.data["rows"]:
    print(f"  {row['parallelism']:3s} {row['collective']:15s} {row['shape']:8s} per rank "
          f"{fmt(row['bytes_per_rank'], 'B'):>22s} x {row['count']:g}  {fmt(row['time_s'], 's')}")
tp_row = next(r for r in led.data["rows"] if r["parallelism"] == "tp")
g = gap("TP all-reduce bytes per rank", tp_row["bytes_per_rank"], 2 * 7 / 8 * 2 * 4096 * 8192)
assert g == 1.0"""),
    ("md", """**Gap.** The TP bytes are exact (the same ring formula). Memory differs from the hand sum by the
embedding and LM head on the end stages and the activations, which the engine counts tensor by tensor."""),
    ("md", """## 5. Why is ZeRO-3 rarely used at this scale?

**By hand.** ZeRO-1 moves 2Ψ per step (reduce-scatter gradients, all-gather weights); ZeRO-3 moves 3Ψ
(weights gathered for forward *and* backward), and it does so layer by layer, every micro-batch, across the
network when the DP group spans nodes. For 70e9 bf16 parameters, 3Ψ ≈ 3 · 140 GB per rank per step at 64 GPUs
over 50 GB/s InfiniBand: seconds of exposed time per step."""),
    ("code", """w = why("zero3", m70, h100, gpus=64)
print("\\n".join(w.lines))
ratio = next(f for f in w.figures if f.key == "zero3/bytes_ratio").value
assert abs(ratio - 1.5) < 1e-9"""),
    ("md", """**Gap.** None in the byte ratio (3Ψ/2Ψ). The times come from the engine's step model; TP + PP keeps the
heavy traffic on NVLink and sends only gradients across nodes."""),
    ("md", """## 6. Prefill vs decode latency for an 8B model on one H100

**By hand.** Prefill of P = 1000 tokens: 2·N·P = 2 · 8e9 · 1e3 = 1.6e13 FLOP at ≈ 8e14 FLOP/s (80% of peak) ≈
**20 ms**: compute-bound. Decode: every token reads all weights, 2 B · 8e9 = 16 GB at ≈ 2.8e12 B/s (85% of
3.35 TB/s) ≈ **5.7 ms** per token: memory-bound."""),
    ("code", """lat = latency(Deployment(load_model("llama-3.1-8b"), h100), batch=1, prompt=1000, output=300)
print("TTFT", lat["ttft_s"].text(), lat.data["ttft_bound"], "| TPOT", lat["tpot_mean_s"].text(),
      lat.data["decode_bound"])
g1 = gap("TTFT s", lat.value("ttft_s"), 2 * 8e9 * 1000 / (0.8 * 989e12))
g2 = gap("TPOT s", lat.value("tpot_mean_s"), 2 * 8e9 / (0.85 * 3.35e12))
assert 0.7 < g1 < 1.5 and 0.8 < g2 < 1.25"""),
    ("md", """**Gap.** The engine counts attention FLOPs, the KV cache read each step, the exact parameter count
(8.03e9, with a 0.5e9 embedding that is gathered, not multiplied) and the prefill's LM head for the last
position only."""),
    ("md", """## 7. How many H100s to serve 10,000 users?

**By hand.** 10,000 users × 1 request per minute ≈ 167 requests/s × 300 output tokens ≈ **5e4 tokens/s**. A
Llama-3.1-70B replica on TP 4 at batch ≈ 64 decodes a step in ≈ 30 ms: ≈ 2,000 tokens/s, so ≈ 25 replicas ×
4 ≈ **100 GPUs**, if the KV cache for 64 sequences fits and latency targets hold."""),
    ("code", """sv = serve(m70, h100, prompt=1000, output=300, users=10_000)
for k in ("qps", "tp", "capacity/concurrency", "replicas", "gpus", "tpot_s"):
    print(f"  {sv[k].name:60s} {sv[k].text()}")
g = gap("GPUs", sv.value("gpus"), 100)
assert 0.3 < g < 3"""),
    ("md", """**Gap.** The engine searches every TP degree and the largest concurrency that meets TTFT ≤ 2 s and
TPOT ≤ 50 ms within the KV memory, then adds replicas for the load: the hand guess of batch 64 is the
uncertain part."""),
    ("md", """## 8. RL post-training: synchronous vs asynchronous throughput

**By hand.** A synchronous GRPO step waits for the longest rollout, then trains: step = generate + train.
An asynchronous (one-step-off) pipeline overlaps them: step ≈ max(generate, train). If generation is ≈ 70%
of a synchronous step, overlapping gives at most 1 / 0.7 ≈ **1.4×**, less the GPUs it must split."""),
    ("code", """from llmcalc.rl.lengths import lognormal
from llmcalc.rl.step import rl_step

rl = rl_step(load_model("llama-3.1-8b"), h100, gpus=64, prompts=512, samples=16, prompt_len=512,
             response=lognormal(3000, 1.0, 8192))
for name, g_ in rl.data["regimes"].items():
    print(f"  {name:20s} step {fmt(g_['step_s'], 's'):>10s}  trained tokens/s {g_['trained_tokens_per_s']:,.0f}")
print("speed-up vs sync colocated:", {k: round(float(v), 2) for k, v in rl.data["speedup"].items()})
assert rl.data["speedup"]["fully_async"] > 1"""),
    ("md", """**Gap.** The engine models the drain (a step waits for its longest sample), the split of GPUs between the
rollout pool and the trainer (each gets fewer GPUs than the colocated step), weight sync and staleness; the
hand bound ignores all of them. Fully asynchronous rollouts with a staleness bound beat the synchronous
step; one-step-off gains little when the split halves each phase's GPUs."""),
    ("md", """## 9. Speculative decoding: how much faster?

**By hand** (Leviathan et al. 2023). Acceptance α = 0.8, γ = 4 drafted tokens: expected tokens per target
step (1 − α^(γ+1)) / (1 − α) = (1 − 0.33) / 0.2 ≈ **3.4**. With a draft costing c = 0.2 of a target step:
speed-up 3.4 / (γ·c + 1) = 3.4 / 1.8 ≈ **1.9×**."""),
    ("code", """s = speculative(0.8, 4, 0.2)
print(s["speedup"].explain())
g = gap("speed-up", s.value("speedup"), 3.4 / 1.8)
w = why("speculative", m70, h100)
print(w.lines[0])
assert 0.98 < g < 1.02"""),
    ("md", """**Gap.** Rounding only. `why speculative` measures c from the draft's and target's own decode steps
(Llama-3.1-8B drafting for 70B) instead of assuming it."""),
    ("md", """## 10. KV cache per token: GQA vs MLA

**By hand.** GQA (Llama-3.1-70B): 2 (K and V) · layers 80 · G 8 · K 128 · 2 B = **327,680 B ≈ 0.33 MB** per
token. MLA (DeepSeek-V3): a latent C = 512 plus a rotary key R = 64 per layer, no factor 2: 61 · 576 · 2 B =
**70,272 B ≈ 0.07 MB**, while MHA with its 128 heads of K = 192 + Kv = 128 would cache 61 · 128 · 320 · 2 B ≈ 5 MB."""),
    ("code", """gqa = kv_cache(m70, 4096).data["bytes_per_token_uncapped"]
mla = kv_cache(load_model("deepseek-v3"), 4096).data["bytes_per_token_uncapped"]
print(fmt(gqa, "B"), fmt(mla, "B"))
assert gap("GQA", gqa, 2 * 80 * 8 * 128 * 2) == 1.0 and gap("MLA", mla, 61 * 576 * 2) == 1.0"""),
    ("md", """**Gap.** None: both are exact. MLA pays in compute instead (`llmcalc why mla deepseek-v3`): the plain form
up-projects every cached latent each step, the absorbed form does not."""),
]


def execute() -> list[tuple[str, str, str]]:
    """(kind, source, printed output) for every cell, code cells executed in one namespace."""
    scope: dict = {}
    out = []
    for kind, src in CELLS:
        text = ""
        if kind == "code":
            buf = io.StringIO()
            with contextlib.redirect_stdout(buf):
                exec(compile(src, "interview_questions.ipynb", "exec"), scope)
            text = buf.getvalue()
        out.append((kind, src, text))
    return out


def notebook(cells) -> str:
    nb = {"nbformat": 4, "nbformat_minor": 5, "metadata": {"kernelspec": {"name": "python3", "display_name":
          "Python 3", "language": "python"}, "language_info": {"name": "python"}}, "cells": []}
    for i, (kind, src, text) in enumerate(cells):
        lines = src.splitlines(keepends=True)
        if kind == "md":
            nb["cells"].append({"cell_type": "markdown", "id": f"c{i}", "metadata": {}, "source": lines})
        else:
            outputs = [{"output_type": "stream", "name": "stdout", "text": text.splitlines(keepends=True)}] if text \
                else []
            nb["cells"].append({"cell_type": "code", "id": f"c{i}", "metadata": {}, "execution_count": None,
                                "source": lines, "outputs": outputs})
    return json.dumps(nb, indent=1, ensure_ascii=False) + "\n"


def markdown(cells) -> str:
    parts = ["<!-- generated by examples/build_interview_questions.py from the notebook's cells (outputs: a snapshot "
             "of the engine at build time); do not edit -->\n"]
    for kind, src, text in cells:
        if kind == "md":
            parts.append(src + "\n")
        else:
            parts.append("```python\n" + src + "\n```\n")
            if text:
                parts.append("```text\n" + text.rstrip("\n") + "\n```\n")
    return "\n".join(parts)


if __name__ == "__main__":
    cells = execute()
    (HERE / "interview_questions.ipynb").write_text(notebook(cells))
    (HERE / "interview_questions.md").write_text(markdown(cells))
    print("wrote examples/interview_questions.ipynb and examples/interview_questions.md")
