"""Every published case in shared/reference/published-cases.yaml: our figure, the published one, the
error, and the tolerance the case states. Prints a table; exits 0 (a report, not a test).

    python benchmarks/validate.py

Published values and tolerances are copied here with their original sources (the papers, model cards and
repositories named in each row), so the report runs without the shared folder.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling report scripts


def _cases():
    import llmcalc as lc
    from llmcalc.inference.kv import kv_cache, per_token_per_layer
    from llmcalc.model.scaling import chinchilla
    from llmcalc.training.activations import korthikanti_layer_bytes
    from llmcalc.training.cost import training_cost
    from llmcalc.training.memory import model_state_bytes

    def p(name):
        return lc.param_breakdown(lc.load_model(name)).data

    gb, gib = 1e9, 2**30
    # (case id, quantity, ours, published, tolerance as relative error or (low, high) band on ours/published)
    yield "params-gpt2-124m", "total params", p("gpt2")["total"], 124_439_808, 0.0
    yield "params-llama2-7b", "total params", p("llama-2-7b")["total"], 6_738_415_616, 0.0
    yield "params-llama3-8b", "total params", p("llama-3.1-8b")["total"], 8_030_261_248, 0.0
    mx = p("mixtral-8x7b")
    yield "params-mixtral-8x7b", "total params", mx["total"], 46_702_792_704, 0.0
    yield "params-mixtral-8x7b", "active params", mx["active"], 12.9e9, 0.002
    ds = p("deepseek-v3")
    yield "params-deepseek-v3", "total params", ds["total"], 671e9, 0.0001 + 26e6 / 671e9  # "671B", rounded
    yield "params-deepseek-v3", "active params", ds["active"], 37e9, 0.03
    g = p("gemma-2-9b")
    yield "params-gemma2-9b", "non-embedding params", g["total"] - g["breakdown"]["embedding"], 8_324_201_984, 0.0
    yield "params-gemma2-9b", "HF checkpoint total", g["total"], 9_241_705_984, 0.0
    gpt3 = training_cost(lc.load_model("gpt-3-175b"), 300e9, lc.load_hardware("a100-sxm-80gb"), 1024)
    yield "flops-gpt3-175b-total", "training FLOPs (6ND)", gpt3.value("model_flops"), 3.14e23, 0.005
    yield "chinchilla-table3-1b", "tokens for 1B params", chinchilla(params=1e9).value("size/rule20/tokens"), \
        20.2e9, 0.02
    yield "chinchilla-table3-175b", "tokens for 175B (20x)", chinchilla(params=175e9).value("size/rule20/tokens"), \
        3.7e12, (3.5e12 / 3.7e12, 4.2e12 / 3.7e12)
    yield "chinchilla-approach3-loss-law", "N_opt at 5.76e23 (Approach 3)", \
        chinchilla(flops=5.76e23).value("budget/approach3/params"), 40e9, 0.25
    yield "chinchilla-70b-model", "6ND Chinchilla vs Gopher budget", 6 * 70e9 * 1.4e12, 5.76e23, 0.15
    narayanan = training_cost(lc.load_model("gpt-3-175b"), 300e9, lc.load_hardware("a100-sxm-80gb"), 1024,
                              params=175e9, achieved_flops_per_s=140e12, flops_per_token_factor=8)
    yield "train-time-megatron2021-gpt3-34-days", "training days", narayanan.value("days"), 34, 0.02
    llama3 = training_cost(lc.load_model("llama-3.1-405b"), 15.6e12, lc.load_hardware("h100-sxm"), 16384)
    yield "llama3-405b-flops (Llama 3 paper §3.3)", "training FLOPs", llama3.value("model_flops"), 3.8e25, 0.02
    palm = training_cost(None, 780e9, lc.load_hardware("tpu-v4"), 6144, params=540.35e9, step_time_s=1.0,
                         batch_tokens=238.3e3)  # PaLM §4.1: 238.3K tokens/s on 6144 TPU v4 chips
    yield "mfu-palm-540b-6144-tpuv4", "MFU without attention (6N)", palm.value("mfu_achieved"), 0.457, 0.003
    for stage, pub in enumerate((120, 31.4, 16.6, 1.9)):
        ours = model_state_bytes(7.5e9, dp=64, zero=stage).data["model_states_bytes"] / gb
        yield "zero-7p5b-nd64-model-states", f"ZeRO stage {stage} GB", ours, pub, 0.02
    for label, kw, pub in (("no parallelism", {}, 2.672), ("TP 8", dict(t=8), 0.539),
                           ("TP 8 + SP", dict(t=8, sp=True), 0.334),
                           ("TP 8 + SP + selective", dict(t=8, sp=True, recompute="selective"), 0.0996)):
        ours = korthikanti_layer_bytes(2048, 1, 12288, 96, **kw).value / gib
        yield "activations-korthikanti-gpt3-selective", f"per layer GiB, {label}", ours, pub, 0.002
    l70 = lc.load_model("llama-3.1-70b")
    yield "kv-llama3-70b-per-token", "int8 bytes/token", kv_cache(l70, 1, kv_dtype="int8").data["bytes_per_token"], \
        160e3, 0.03
    yield "kv-llama3-70b-per-token", "int8 bytes per 32k sequence", \
        kv_cache(l70, 32768, kv_dtype="int8").data["bytes_per_request"], 5.3e9, 0.02
    dsv3 = lc.load_model("deepseek-v3")
    yield "kv-deepseek-mla-vs-gqa", "V3 bf16 bytes/token", kv_cache(dsv3, 1).data["bytes_per_token"], 70_272, 0.0
    elems = per_token_per_layer(dsv3, "bf16").value / 2
    # DeepSeek-V2 abstract: -93.3% vs DeepSeek 67B (95 layers x 8 KV heads x 128, 16 bit), V2 at 6 bits, 60 layers
    yield "kv-deepseek-mla-vs-gqa", "KV reduction vs DeepSeek 67B", 1 - elems * 60 * 6 / (2 * 8 * 128 * 95 * 16), \
        0.933, 0.002
    from report_inference import latency_rows
    for row in latency_rows():
        case, ours, pub = row[0], row[1], row[2]
        if "TPOT" in case and "h100" in case:
            yield "inference-trtllm-gptj-h100-bs1", case, ours, pub, (1 / 3, 1 / 1.5)
    from report_training import evaluate

    for r in evaluate():  # shipped per-accelerator efficiencies; calibration rows marked, the rest held out
        if r["reference"]:
            qty = f"step time s ({r['role']}, shipped efficiency)"
            yield r["case"], qty, r["predicted_s"], r["published_s"], r["band"]


def main() -> None:
    rows, out = list(_cases()), 0
    print(f"{'case':42} {'quantity':34} {'ours':>12} {'published':>12} {'error':>8} {'tolerance':>12}  ok")
    for case, qty, ours, pub, tol in rows:
        ratio = ours / pub
        err = ratio - 1
        if isinstance(tol, tuple):
            ok, tol_s = tol[0] <= ratio <= tol[1], f"{tol[0]:.2f}-{tol[1]:.2f}x"
        else:
            ok, tol_s = abs(err) <= tol + 1e-12, "exact" if tol == 0 else f"±{tol:.1%}"
        out += not ok
        print(f"{case[:42]:42} {qty[:34]:34} {ours:12.4g} {pub:12.4g} {err:+8.2%} {tol_s:>12}  {'yes' if ok else 'NO'}")
    print(f"\n{len(rows) - out} of {len(rows)} within the tolerance their case states")


if __name__ == "__main__":
    main()
