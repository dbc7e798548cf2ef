"""LoRA+: LoRA whose B trains at a higher learning rate than its A (Hayou, Ghosh, Yu, 2024, arXiv:2402.12354).

The model is zoo's LoRA (``zoo/methods/lora.py``), unchanged: h = W x + (alpha / r) · B A x, B = 0
at init. Only the optimiser differs. The paper shows that with one rate for both factors a wide
model's LoRA learns its features inefficiently (B is updated too little, or A too much) and sets

    η_B = λ · η_A,   λ ≫ 1

so the method declares its parameter groups (``OptimizerRecipe``): every ``lora_A`` at the run's rate η_A
(``trainer.learning_rate``, else this method's default), every ``lora_B`` at λ·η_A; both take the
trainer's weight decay, with AdamW, as peft's ``peft.optimizers.create_loraplus_optimizer`` groups them
(tests/test_lora_plus.py checks the groups, rates, weight decays and the first steps against it).
Its adapter is a LoRA adapter: it saves, merges and exports to peft's LORA format as LoRA does.

Defaults: λ = 16 (2⁴), the ratio the paper recommends for its language-model experiments and the one
peft's documentation passes to ``create_loraplus_optimizer`` (whose ``loraplus_lr_ratio`` has no
default); rank, alpha and placement are LoRA's, and so is η_A = 5e-3 (chosen for LoRA on the built-in
default task). On that task (``zoo method=lora_plus``, the default tiny-llama, seed 0) LoRA+ reaches
0.930 from 0.512 zero-shot, where LoRA reaches 0.980 at the same η_A. On a pretrained model that
rate puts B far too high: on SmolLM2-135M-Instruct the benchmark's default row (η_A = 5e-3) scores no
better than zero-shot on the movie reviews, and the search on each task's validation split
(``python -m benchmarks.tune --profile full``: η_A × 0.025 to × 2.5, 6 log-spaced values, 8 trials by
successive halving, as for every method) chose η_A = 3.2e-4 (× 0.063) on all three tasks, as the paper
advises a lower η_A than plain LoRA's (LoRA's choices: × 1, × 1, × 2.5). In
``benchmarks/RESULTS.md``, tuned rows: movie_sentiment 0.850 [0.811, 0.887] accuracy, tweet_sentiment 0.500 [0.432,
0.563] accuracy, bbc_headlines 0.168 [0.136, 0.202] ROUGE-L (zero-shot 0.630, 0.367 and 0.139; against the tuned LoRA
rows, 0.836, 0.517 and 0.210: movie_sentiment +0.014 [-0.018, +0.049]; tweet_sentiment -0.017 [-0.094, +0.056];
bbc_headlines -0.042 [-0.075, -0.011] ≠).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from torch import nn

from zoo.method import MethodConfig
from zoo.methods.lora import LoRAConfig, LoRALinear, export_lora, wrap_lora
from zoo.optimizer_recipe import OptimizerRecipe, ParamGroups
from zoo.peft_format import PeftFormat
from zoo.registry import register


@dataclass
class LoRAPlusConfig(LoRAConfig):
    lr_ratio: float = 16.0
    """λ = η_B / η_A: B's learning rate over A's (peft's ``loraplus_lr_ratio``); 1 is plain LoRA."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.lr_ratio, bool) or not isinstance(self.lr_ratio, int | float) or not 0 < self.lr_ratio < math.inf:
            raise ValueError(
                f"lr_ratio must be a finite number above 0 (B's learning rate over A's; the paper's λ, "
                f"default 16), got {self.lr_ratio!r}"
            )


def loraplus_groups(model: nn.Module, cfg: MethodConfig, lr: float) -> ParamGroups:
    """Every LoRA A at ``lr``, every LoRA B at ``lr_ratio · lr``."""
    layers = [m for m in model.modules() if isinstance(m, LoRALinear)]
    return [{"params": [m.lora_A for m in layers], "lr": lr}, {"params": [m.lora_B for m in layers], "lr": lr * cfg.lr_ratio}]


@register(
    "lora_plus",
    config=LoRAPlusConfig,
    identity_at_init=True,
    mergeable=True,
    quantized_base=True,
    learning_rate=5e-3,
    optimizer=OptimizerRecipe(groups=loraplus_groups),
    peft=PeftFormat("LORA", export=export_lora),
)
def wrap_lora_plus(model: nn.Module, cfg: LoRAPlusConfig) -> nn.Module:
    return wrap_lora(model, cfg)
