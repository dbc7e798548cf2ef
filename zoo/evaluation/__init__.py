"""Evaluation: classification and generation scores, latency, forgetting and flipped answers."""
