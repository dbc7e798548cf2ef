"""Prompt tuning and P-tuning both ways, through the virtual-token embeddings (P, d) they prepend.

peft saves one tensor for either method, ``prompt_embeddings``: the soft prompt, or for P-tuning
the prompt encoder's *output* (peft's own folders hold no encoder weights; it loads them for
inference only). So a zoo P-tuning export writes its encoder's output, and a peft P-tuning
adapter imports as zoo's ``prompt_tuning`` with those embeddings: the same outputs, and a soft
prompt to train further. The encoder settings zoo writes only describe how it was trained.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from zoo.methods.p_tuning import PTuningConfig
from zoo.methods.prompt_tuning import PromptTuningConfig
from zoo.peft_interchange.format import PROMPT, ImportPlan, NotConvertible, PeftAdapter, refuse_options
from zoo.wrapped import ZooModel

SUPPORTED = {"num_transformer_submodules": (1, None), "modules_to_save": (None, [])}
ZOO_KEY = "prompt.embedding"
"""Where zoo's prompt tuning keeps its soft prompt (the wrapper's ``prompt`` module)."""


@torch.no_grad()
def _virtual_tokens(model: ZooModel) -> torch.Tensor:
    """The (P, d) embeddings the wrapped model prepends at inference (the encoder in eval mode: no dropout)."""
    prompt = model.model.prompt
    was_training = prompt.training
    prompt.eval()
    try:
        return prompt().detach().clone()
    finally:
        prompt.train(was_training)


def _shared(tokens: torch.Tensor) -> dict:
    """The config entries peft's prompt-learning methods share, for virtual tokens ``tokens`` (P, d)."""
    return {"num_virtual_tokens": tokens.shape[0], "token_dim": tokens.shape[1], "num_transformer_submodules": 1}


def export_prompt_tuning(model: ZooModel) -> PeftAdapter:
    tokens = _virtual_tokens(model)
    # peft's RANDOM init needs no tokenizer at load time; the embeddings loaded over it are what count
    return PeftAdapter({**_shared(tokens), "prompt_tuning_init": "RANDOM"}, {PROMPT: tokens})


def export_p_tuning(model: ZooModel) -> PeftAdapter:
    cfg: PTuningConfig = model.method_config
    tokens = _virtual_tokens(model)
    config = {**_shared(tokens), "encoder_reparameterization_type": cfg.encoder_type.upper(),
              "encoder_hidden_size": cfg.encoder_hidden_size or tokens.shape[1], "encoder_num_layers": cfg.encoder_num_layers,
              "encoder_dropout": cfg.encoder_dropout}
    return PeftAdapter(config, {PROMPT: tokens})


def import_virtual_tokens(base: nn.Module, adapter: PeftAdapter, folder: Path) -> ImportPlan:
    """A peft prompt-tuning or P-tuning adapter as zoo's ``prompt_tuning`` holding its embeddings."""
    refuse_options(adapter.config, SUPPORTED, str(folder))
    tokens = adapter.tensors.get(PROMPT)
    if set(adapter.tensors) != {PROMPT} or tokens.dim() != 2:
        raise NotConvertible(f"{folder}: expected one (P, d) tensor {PROMPT!r}, found "
                             f"{ {k: tuple(v.shape) for k, v in adapter.tensors.items()} }")
    cfg = PromptTuningConfig(num_virtual_tokens=tokens.shape[0], init="random")
    return ImportPlan(cfg, lambda _: {ZOO_KEY: tokens})
