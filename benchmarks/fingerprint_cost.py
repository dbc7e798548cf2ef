"""What the base-model fingerprint (zoo.fingerprint) costs: seconds to fingerprint a model of SmolLM2-135M's shapes.

    python -m benchmarks.fingerprint_cost             # SmolLM2-135M's shapes: 30 layers, d=576, vocab 49,152
    python -m benchmarks.fingerprint_cost --layers 2  # the same widths, fewer layers

The cost depends on the parameters' shapes and dtype only, not their values, so a randomly initialised model of
the real model's config measures it without the real weights. Prints parameters, seconds and nanoseconds per
parameter for the current scheme and for scheme 1 (16 values and the sum of each tensor).
"""

from __future__ import annotations

import argparse
import time

import torch
from transformers import LlamaConfig, LlamaForCausalLM

from zoo.fingerprint import sampled_weights_fingerprint, weights_fingerprint

SMOLLM2_135M = {
    "vocab_size": 49152,
    "hidden_size": 576,
    "intermediate_size": 1536,
    "num_attention_heads": 9,
    "num_key_value_heads": 3,
    "tie_word_embeddings": True,
}
"""SmolLM2-135M's config (its 30 layers are ``--layers``' default)."""


def measure(layers: int) -> dict[str, float]:
    """Parameters, and seconds and ns per parameter of each scheme, on a model of SmolLM2-135M's widths with ``layers`` layers."""
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(num_hidden_layers=layers, **SMOLLM2_135M)).eval()
    params = sum(p.numel() for p in model.parameters())
    found: dict[str, float] = {"parameters": params}
    for name, scheme in (("bytes", weights_fingerprint), ("sampled", sampled_weights_fingerprint)):
        start = time.perf_counter()
        scheme(model)
        found[f"{name}_seconds"] = time.perf_counter() - start
        found[f"{name}_ns_per_parameter"] = found[f"{name}_seconds"] / params * 1e9
    return found


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=30)
    found = measure(parser.parse_args(argv).layers)
    for key, value in found.items():
        print(f"{key}: {value:,.3f}" if isinstance(value, float) else f"{key}: {value:,}")
    return found


if __name__ == "__main__":
    main()
