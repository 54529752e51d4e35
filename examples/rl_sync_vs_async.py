"""7B GRPO on 64 H100s, 16 samples per prompt, 8k responses with a heavy tail: sync or async, and how to split?

A notebook-style walk-through (run it, or open it in VS Code / Jupytext: each ``# %%`` is a cell). Every
number below comes from ``llmcalc.rl_step``; ``--explain`` on the CLI shows the same derivations:

    llmcalc rl qwen2.5-7b -H h100-sxm --gpus 64 --prompts 512 --samples 16 --prompt-len 512 \\
        --response-len 3000,1.0 --max-response 8192 --explain
"""

# %% The question, as inputs
from llmcalc import load_hardware, load_model, rl_step
from llmcalc.rl.lengths import lognormal

model, hw = load_model("qwen2.5-7b"), load_hardware("h100-sxm")
GPUS, PROMPTS, SAMPLES, PROMPT = 64, 512, 16, 512
# "8k responses with a heavy tail": mean 3,000 tokens, coefficient of variation 1.0, generation capped at 8,192
response = lognormal(3000, 1.0, cap=8192)
batch = PROMPTS * SAMPLES

# %% 1. How long is the tail? The synchronous step waits for the longest of the 8,192 samples.
print(f"mean response {response.mean():,.0f} tokens; expected longest of the {batch:,} samples "
      f"{response.expected_max(batch):,.0f} tokens; p50 {float(response.quantile(0.5)):,.0f}, "
      f"p99 {float(response.quantile(0.99)):,.0f}")

# %% 2. All four regimes at the best split (searched over the splits the assumptions name, async throughput bound)
r = rl_step(model, hw, gpus=GPUS, prompts=PROMPTS, samples=SAMPLES, prompt_len=PROMPT, response=response,
            staleness=2)
for name, x in r.data["regimes"].items():
    b = x["breakdown_s"]
    print(f"{name:20s} step {x['step_s']:7.1f} s  generate {b['generate_s']:6.1f}  train {b['train_s']:6.1f}  "
          f"rollout busy {x['rollout_utilisation']:4.0%}  trainer busy {x['trainer_utilisation']:4.0%}  "
          f"{x['trained_tokens_per_s'] / 1e3:6.1f}k tokens/s")
best = r.data["best_regime"]
split = r.data["split"]
print(f"best: {best} with {split['rollout_gpus']} rollout + {split['trainer_gpus']} trainer GPUs, "
      f"{r.data['speedup'][best]:.2f}x the synchronous colocated step")

# %% 3. Why: in sync colocated, the GPUs sit in the drain while the last samples finish
sync = r.data["regimes"]["sync_colocated"]
print(f"sync colocated generates for {sync['breakdown_s']['generate_s']:.0f} s of a {sync['step_s']:.0f} s step; "
      f"the bulk of the tokens is done long before the longest sample ends")

# %% 4. Throughput against the split (the search's bound for every candidate, one vectorised call)
tokens = (r.data["response_mean"] + PROMPT) * batch
for k, t in list(zip(split["candidates"], split["bound_s"], strict=True))[::3]:
    print(f"  {int(k):3d} rollout + {GPUS - int(k):3d} trainer GPUs: async step >= {t:7.1f} s, "
          f"<= {tokens / t / 1e3:6.1f}k trained tokens/s")

# %% 5. Throughput against the staleness bound η at the chosen split (η = 0 is synchronous)
k = split["rollout_gpus"]
for eta in (0, 1, 2, 4, None):
    x = rl_step(model, hw, gpus=GPUS, prompts=PROMPTS, samples=SAMPLES, prompt_len=PROMPT, response=response,
                staleness=eta, rollout_gpus=k, regime="async").data["regimes"]["fully_async"]
    print(f"  η = {'inf' if eta is None else eta}: step {x['step_s']:6.1f} s, "
          f"{x['trained_tokens_per_s'] / 1e3:6.1f}k tokens/s, staleness mean {x['staleness_mean']:.2f}")

# %% 6. The answer
fa = r.data["regimes"]["fully_async"]
print(f"Answer: go asynchronous with ~{k} of {GPUS} GPUs on rollout; at η = 2 the step drops from "
      f"{sync['step_s']:.0f} s to {fa['step_s']:.0f} s ({sync['step_s'] / fa['step_s']:.2f}x), at a mean "
      f"staleness of {fa['staleness_mean']:.2f} policy versions.")
