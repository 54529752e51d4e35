"""training: one training job — parallel layout, memory per GPU, activations, the per-step communication
ledger, step time and MFU, and time/cost for a token budget.

May import ``core``, ``model`` and ``network``; never ``inference`` (what both need lives below).
"""
