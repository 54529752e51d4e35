"""First steps with llmcalc from Python: run `python examples/quickstart.py`.

Every result carries SI numbers and, for each figure, the formula, the values plugged in and its source.
"""

import llmcalc

# 1. Exact parameter counts, as the Hugging Face implementation instantiates them.
for name in ("llama-3.1-8b", "mixtral-8x7b", "deepseek-v3"):
    d = llmcalc.param_breakdown(llmcalc.load_model(name)).data
    print(f"{name:15s} total {d['total']:>16,}  active {d['active']:>16,}")

# 2. Where does a number come from?
r = llmcalc.param_breakdown(llmcalc.load_model("gemma-2-9b"))
print(r["attention"].explain())

# 3. Specs are plain SI floats; units are explicit in the names.
h100 = llmcalc.load_hardware("h100-sxm")
print(f"H100 SXM: {h100.peak('bf16'):.3e} FLOP/s dense bf16, {h100.memory_bytes / 2**30:.1f} GiB, "
      f"{h100.scale_up.per_direction_bytes_per_s / 1e9:.0f} GB/s NVLink per direction")
