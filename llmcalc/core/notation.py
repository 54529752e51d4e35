"""The shape-suffix legend (Noam Shazeer's notation) that every formula, einsum and study sheet uses."""

from __future__ import annotations

LETTERS = {  # letter -> meaning (the order of `llmcalc notation`)
    "B": "batch (sequences)", "L": "sequence length (tokens per sequence)",
    "M": "length attended to (KV length)", "D": "model width (d_model)",
    "V": "vocabulary", "F": "feed-forward width (per gate)",
    "H": "attention (query) heads", "K": "size of each head",
    "G": "key/value heads (GQA groups)", "E": "experts (routed)",
    "C": "compressed latent width (MLA)", "R": "rotary width (MLA)",
}

NOTATION = """Shape-suffix notation (Noam Shazeer), used in every formula and einsum:
  B  batch (sequences)                 L  sequence length (tokens per sequence)
  M  length attended to (KV length)    D  model width (d_model)
  V  vocabulary                        F  feed-forward width (per gate)
  H  attention (query) heads           K  size of each head
  G  key/value heads (GQA groups)      E  experts (routed)
  C  compressed latent width (MLA)     R  rotary width (MLA)
Scalars that are not shapes are spelled out: layers, tp, pp, dp, ep, cp, microbatches.
A matmul is written as einsum, e.g. BLD,DHK->BLHK, with FLOPs 2·B·L·D·H·K (2 per multiply-add)."""
