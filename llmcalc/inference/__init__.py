"""inference: one deployment — KV cache, prefill/decode latency, batch and context sweeps, speculative
decoding, continuous batching and serving capacity.

May import ``core``, ``model`` and ``network``; never ``training`` (what both need lives below).
"""
