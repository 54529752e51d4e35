"""Use-case presets: one click fills the inputs of a page with a typical workload; every value stays editable
and goes into the link like a typed one.

The numbers are typical settings, not measurements: chat turns of ~1k prompt / ~256 output tokens (the
ShareGPT-style mix serving benchmarks such as vLLM's use), retrieval-augmented prompts of ~16k tokens,
short completions for code under tight latency, long offline summaries where only throughput matters,
128k-token pre-training with context parallelism (Llama 3 long-context stage: 128k sequences, CP), and
fine-tuning with QLoRA as Dettmers et al. 2023 (arXiv 2305.14314) ran it: a frozen 4-bit NF4 base with rank-64
LoRA adapters on every linear layer of the blocks (§4, "LoRA r = 64 … on all linear layers"), gradient
checkpointing (§3: full recompute), one GPU, batch 16.
"""

from __future__ import annotations

import streamlit as st

from . import state

PRESETS: dict[str, tuple[tuple[str, ...], dict]] = {
    "chatbot": (("inference", "serving"),
                dict(prompt=1024, gen=256, batch=16, rate=10.0, ttft_slo=2.0, tpot_slo=0.05)),
    "RAG with long prompts": (("inference", "serving"),
                              dict(prompt=16384, gen=256, batch=8, rate=2.0, ttft_slo=5.0, tpot_slo=0.05)),
    "code completion": (("inference", "serving"),
                        dict(prompt=2048, gen=64, batch=8, rate=20.0, ttft_slo=0.3, tpot_slo=0.02)),
    "batch summarisation": (("inference", "serving"),
                            dict(prompt=8192, gen=512, batch=64, rate=5.0, ttft_slo=60.0, tpot_slo=0.2)),
    "pre-training, 4k context": (("training",),
                                 dict(seq=4096, tp=1, pp=1, cp=1, dp=64, mbs=1, gbs=512, recompute="selective",
                                      zero=1, tokens="15T", lora_rank=0)),
    "long-context training (128k, CP)": (("training",),
                                         dict(seq=131072, tp=8, pp=1, cp=8, dp=1, mbs=1, gbs=64, sp=True,
                                              recompute="full", zero=1, tokens="800B", lora_rank=0)),
    "fine-tuning with QLoRA": (("training",),
                               dict(lora_rank=64, lora_targets="q,k,v,o,gate,up,down", base_bits=4, seq=2048, tp=1,
                                    pp=1, cp=1, dp=1, ep=1, mbs=1, gbs=16, sp=False, recompute="full", zero=0,
                                    tokens="100M")),
}


def apply(name: str) -> None:
    """Write a preset's values into the state and into the widgets that show them."""
    s = state.store()
    for k, v in PRESETS[name][1].items():
        s[k] = v
        st.session_state[f"w_{k}"] = v


def picker(page: str) -> None:
    """A 'start from a use case' box for the presets that fit ``page``."""
    options = [n for n, (pages, _) in PRESETS.items() if page in pages]
    key = f"preset_{page}"

    def chosen():
        if st.session_state.get(key):
            apply(st.session_state[key])

    st.selectbox("start from a use case (fills the inputs; edit any of them)", options, index=None,
                 placeholder="choose a preset…", key=key, on_change=chosen)
