"""RL post-training loops built from the training and inference wings (may import both)."""
