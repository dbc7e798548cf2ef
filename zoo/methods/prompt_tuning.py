"""Prompt tuning (Lester, Al-Rfou & Constant, 2021, "The Power of Scale for Parameter-Efficient
Prompt Tuning", arXiv:2104.08691).

``P`` trainable embeddings ``V`` (the soft prompt) are prepended to the input embeddings;
the whole base model stays frozen::

    V (P, d) trainable ──┐
                         concat ──► frozen model ──► outputs at the real positions
    E[x] (T, d) frozen ──┘

Only ``V`` trains (``P·d`` numbers). Initialisation matters a great deal for soft prompts
(the paper's Fig. 3; peft's own comparison: 6% with a random prompt, 34% with sampled
vocabulary), hence three choices: ``random`` (normal with the embedding table's std),
``vocab`` (rows of the frozen embedding table, sampled with ``seed``) and ``text`` (the
embeddings of a text's tokens, repeated or cut to ``P``): ``init_text``, or by default the
task's label words (``zoo method=prompt_tuning method.init=text``). The method never sees a
tokenizer: a run binds the config to its task (``bind``), which tokenizes the text into
``init_token_ids``; in Python, give ``init_token_ids`` yourself.

Prepending, masks, labels, positions, generation and output shapes are shared with p-tuning
and documented in :mod:`zoo.methods._virtual_tokens`: outputs are cut back to the real
positions, unlike peft's.

Defaults follow the literature, not a tuning run: 10 vocabulary-initialised tokens and lr 3e-2
(peft's causal-LM example uses 8 tokens and 3e-2; the paper 5-100 tokens and 0.3 with
Adafactor). A soft prompt steers what the model already represents: on a *random* tiny model
no setting tried (lr 3e-3 to 0.3, 10-50 tokens, each init) got above 0.55; on the default
tiny-llama, pretrained on the synthetic language (``zoo.models.pretrain``), seeds 0-2 reach
0.789 ± 0.007 from 0.512 zero-shot (``benchmarks/results/default_task/RESULTS.md``, ``python -m benchmarks.suite --profile default``).

peft's format (``PeftFormat("PROMPT_TUNING")``): one tensor, ``prompt_embeddings``, the (P, d) virtual tokens. peft
saves the same tensor for P-tuning (its encoder's output), so a peft P-tuning adapter imports here too, as a soft
prompt holding those embeddings (:func:`import_virtual_tokens`, declared by ``p_tuning``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from zoo.method import MethodConfig, TaskContext
from zoo.methods._virtual_tokens import VirtualTokenModel
from zoo.peft_format import (
    PROMPT,
    ImportPlan,
    NotConvertible,
    PeftAdapter,
    PeftFormat,
    check_numbers,
    check_sizes,
    refuse_options,
)
from zoo.registry import register
from zoo.runtime.typed_fields import check_seed

if TYPE_CHECKING:
    import peft
    from transformers import PretrainedConfig

    from zoo.wrapped import ZooModel

INITS = ("random", "vocab", "text")


@dataclass
class PromptTuningConfig(MethodConfig):
    num_virtual_tokens: int = 10
    """Length ``P`` of the soft prompt."""
    init: str = "vocab"
    """``random`` (normal, std of the embedding table), ``vocab`` (sampled rows of the table) or ``text``."""
    init_text: str | None = None
    """``init='text'``: the text whose tokens start the prompt; None: the task's label words, space-separated."""
    init_token_ids: list[int] = field(default_factory=list)
    """Token ids whose embeddings start the prompt, repeated or cut to ``P``; only with ``init='text'``
    (a run fills them from ``init_text``; set them yourself when wrapping in Python)."""
    seed: int = 0
    """Seed of the ``random`` and ``vocab`` initialisations."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.num_virtual_tokens, int) or self.num_virtual_tokens < 1:
            raise ValueError(f"num_virtual_tokens must be a positive integer, got {self.num_virtual_tokens!r}")
        if self.init not in INITS:
            raise ValueError(f"init must be one of {list(INITS)}, got {self.init!r}")
        ids = list(self.init_token_ids or [])
        if self.init != "text" and (ids or self.init_text is not None):
            raise ValueError(
                f"init_token_ids={ids!r} and init_text={self.init_text!r} are only used with init='text', not init={self.init!r}"
            )
        if self.init_text is not None and not self.init_text.strip():
            raise ValueError(f"init_text={self.init_text!r} has no words; give a text, or null for the task's label words")
        if any(not isinstance(i, int) or i < 0 for i in ids):
            raise ValueError(f"init_token_ids must be non-negative integers, got {ids!r}")
        check_seed(self.seed)

    def bind(self, task: TaskContext) -> PromptTuningConfig:
        """``init='text'``: the token ids of ``init_text``, else of the task's label words (where none are given)."""
        if self.init != "text" or self.init_token_ids:
            return self
        text = self.init_text if self.init_text is not None else " ".join(task.label_words)
        return dataclasses.replace(self, init_token_ids=task.token_ids(text))


class SoftPrompt(nn.Module):
    """The trainable virtual-token embeddings, initialised from the frozen embedding table."""

    def __init__(self, table: Tensor, cfg: PromptTuningConfig):
        super().__init__()
        p, (vocab_size, dim) = cfg.num_virtual_tokens, table.shape
        g = torch.Generator().manual_seed(cfg.seed)
        if cfg.init == "random":
            init = (
                torch.randn(p, dim, generator=g).to(table.device) * table.float().std()
            )  # no .item(): load_adapter wraps meta tensors first
        else:
            if cfg.init == "vocab":
                ids = torch.randint(0, vocab_size, (p,), generator=g)
            else:
                if not cfg.init_token_ids:
                    raise ValueError(
                        "init='text' has no init_token_ids: give them (tokenizer(text, add_special_tokens=False).input_ids), "
                        "or run through zoo, which binds init_text or the task's label words to them"
                    )
                bad = [i for i in cfg.init_token_ids if i >= vocab_size]
                if bad:
                    raise ValueError(f"init_token_ids {bad} are outside the vocabulary of {vocab_size} tokens")
                ids = torch.tensor((cfg.init_token_ids * p)[:p])  # repeat, then cut to P
            init = table.detach()[ids.to(table.device)].float()
        self.num_virtual_tokens = p
        self.embedding = nn.Parameter(init.to(device=table.device, dtype=table.dtype))  # (P, d)

    def adapter_params(self) -> list[str]:
        return ["embedding"]

    def forward(self) -> Tensor:
        return self.embedding  # (P, d)


PEFT_SUPPORTED = {"num_transformer_submodules": (1, None), "modules_to_save": (None, [])}
"""peft options of its prompt-learning methods zoo has no equivalent of, and the values at which they change nothing."""
ZOO_KEY = "prompt.embedding"
"""Where zoo's prompt tuning keeps its soft prompt (the wrapper's ``prompt`` module)."""


@torch.no_grad()
def virtual_tokens(model: ZooModel) -> Tensor:
    """The (P, d) embeddings a model wrapped with a prompt method prepends at inference (its prompt in eval mode: no dropout)."""
    prompt = model.model.prompt
    was_training = prompt.training
    prompt.eval()
    try:
        return prompt().detach().clone()
    finally:
        prompt.train(was_training)


def peft_prompt_config(tokens: Tensor) -> dict:
    """The config entries peft's prompt-learning methods share, for virtual tokens ``tokens`` (P, d)."""
    return {"num_virtual_tokens": tokens.shape[0], "token_dim": tokens.shape[1], "num_transformer_submodules": 1}


def export_prompt_tuning(model: ZooModel) -> PeftAdapter:
    tokens = virtual_tokens(model)
    # peft's RANDOM init needs no tokenizer at load time; the embeddings loaded over it are what count
    return PeftAdapter({**peft_prompt_config(tokens), "prompt_tuning_init": "RANDOM"}, {PROMPT: tokens})


def import_virtual_tokens(base: nn.Module, adapter: PeftAdapter, folder: Path) -> ImportPlan:
    """A peft prompt-tuning or P-tuning adapter as zoo's ``prompt_tuning`` holding its embeddings."""
    refuse_options(adapter.config, PEFT_SUPPORTED, str(folder))
    check_numbers(adapter.config, {"num_virtual_tokens": int, "token_dim": int}, str(folder))
    tokens = adapter.tensors.get(PROMPT)
    if set(adapter.tensors) != {PROMPT} or tokens.dim() != 2:
        raise NotConvertible(
            f"{folder}: expected one (P, d) tensor {PROMPT!r}, found { {k: tuple(v.shape) for k, v in adapter.tensors.items()} }"
        )
    check_sizes(adapter.config, {"num_virtual_tokens": tokens.shape[0], "token_dim": tokens.shape[1]}, str(folder))
    cfg = PromptTuningConfig(num_virtual_tokens=tokens.shape[0], init="random")
    return ImportPlan(cfg, lambda _: {ZOO_KEY: tokens})


def peft_equivalent(cfg: PromptTuningConfig, config: PretrainedConfig) -> peft.PeftConfig:
    """peft's prompt tuning of ``cfg``'s length."""
    import peft  # only here: zoo itself never needs peft

    return peft.PromptTuningConfig(num_virtual_tokens=cfg.num_virtual_tokens, task_type="CAUSAL_LM")


@register(
    "prompt_tuning",
    config=PromptTuningConfig,
    identity_at_init=False,
    mergeable=False,
    learning_rate=3e-2,
    peft=PeftFormat(
        "PROMPT_TUNING", export=export_prompt_tuning, import_=import_virtual_tokens, equivalent_config=peft_equivalent
    ),
)
def wrap_prompt_tuning(model: nn.Module, cfg: PromptTuningConfig) -> nn.Module:
    return VirtualTokenModel(model, SoftPrompt(model.get_input_embeddings().weight, cfg))
