"""model: what a model is and costs on its own — exact parameter counts, FLOPs per matmul, scaling laws
(Chinchilla and kin) and weight quantisation.

May import ``core`` only.
"""
