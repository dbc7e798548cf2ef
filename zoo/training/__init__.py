"""Training: the loop, its budget, divergence and learning rates."""
