"""Forgetting: how far training moved the model's next-token loss on general text that no task trains on.

A run measures the causal LM's mean next-token loss (nats per predicted token) on a fixed
set of held-out texts before the method wraps the base model and again after training, and
records both and their difference (``delta``: above 0, the model got worse at plain text).
The texts are the same for every run of a model, so the deltas of a table's rows compare.

``forgetting.text``:

- ``nyt_snippets``: the first ``n_texts`` sentences of the test split of the New York Times
  editorial snippets in the vaderSentiment 3.3.2 archive (prepared once like the built-in
  tasks, zoo.tasks.nyt_snippets); no built-in task trains on them.
- ``synthetic``: reviews in the tiny models' own language (zoo.models.language), drawn from
  a stream of their own, for the tiny models, whose tokenizer knows no other words.
- ``auto`` (default): ``synthetic`` for a model with zoo's word-level tokenizer (the tiny
  models), else ``nyt_snippets``.
- ``none``: not measured.

Virtual-token methods are measured with their tokens in place and the closed-form head with
its change to the LM head: the loss is that of the model the run produced. Encoders (no
next-token prediction) and baselines, which change no weight of the language model, record none.
The base model's loss is the same for every run of a model, so the pipeline keeps it in the
predictions cache (``predictions_cache``) beside the zero-shot predictions.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from zoo.models.language import review

TEXTS = ("auto", "nyt_snippets", "synthetic", "none")


@dataclass
class ForgettingConfig:
    text: str = "auto"
    """auto, nyt_snippets, synthetic or none (see zoo.evaluation.forgetting)."""
    n_texts: int = 64
    max_length: int = 64
    """Tokens per text at most; longer texts are cut."""
    batch_size: int = 16

    def __post_init__(self) -> None:
        if self.text not in TEXTS:
            raise ValueError(f"forgetting.text {self.text!r} is not one of {TEXTS}")
        for name in ("n_texts", "max_length", "batch_size"):
            if getattr(self, name) < (2 if name == "max_length" else 1):
                raise ValueError(
                    f"forgetting.{name} must be at least {2 if name == 'max_length' else 1}, got {getattr(self, name)}"
                )


def text_source(cfg: ForgettingConfig, tokenizer) -> str:
    """The source ``auto`` stands for with this tokenizer (zoo's word-level one: the tiny models)."""
    if cfg.text != "auto":
        return cfg.text
    return "synthetic" if _word_level(tokenizer) else "nyt_snippets"


def _word_level(tokenizer) -> bool:
    backend = getattr(tokenizer, "backend_tokenizer", None)
    return backend is not None and type(backend.model).__name__ == "WordLevel"


def general_texts(source: str, n: int, cache_dir: str) -> list[str]:
    """The ``n`` held-out texts of ``source``, the same on every call."""
    if source == "synthetic":
        rng = random.Random("forgetting")
        return [review(rng, rng.random() < 0.5) for _ in range(n)]
    from zoo.tasks.nyt_snippets import NYT_SNIPPETS
    from zoo.tasks.prepared import load_prepared

    return [e.text for e in load_prepared(NYT_SNIPPETS, cache_dir).split("test")[:n]]


def text_batches(texts: list[str], tokenizer, max_length: int, batch_size: int) -> list[dict[str, torch.Tensor]]:
    """Right-padded batches (the padding follows the text, so causal attention never sees it) with a mask of real tokens."""
    encoded = [ids[:max_length] for ids in tokenizer(texts, add_special_tokens=True)["input_ids"]]
    encoded = [ids for ids in encoded if len(ids) >= 2]  # a text of one token predicts nothing
    encoded.sort(key=len)  # texts of like length share a batch: less padding to run through the vocabulary's logits
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    batches = []
    for start in range(0, len(encoded), batch_size):
        rows = encoded[start : start + batch_size]
        width = max(map(len, rows))
        ids = torch.tensor([r + [pad] * (width - len(r)) for r in rows])
        mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows])
        batches.append({"input_ids": ids, "attention_mask": mask})
    return batches


@torch.no_grad()
def next_token_loss(model: nn.Module, batches: list[dict[str, torch.Tensor]]) -> tuple[float, int]:
    """``(mean loss in nats per predicted token, predicted tokens)`` of ``model`` over ``batches``."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    for batch in batches:
        ids, mask = batch["input_ids"].to(device), batch["attention_mask"].to(device)
        logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1].float()
        target = ids[:, 1:].masked_fill(mask[:, 1:] == 0, -100)
        total += F.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), target.reshape(-1), ignore_index=-100, reduction="sum"
        ).item()
        count += int((target != -100).sum())
    model.train(was_training)
    return total / count, count


@dataclass
class Forgetting:
    """The base model's loss on the general texts, measured before the method wrapped it."""

    source: str
    batches: list[dict[str, torch.Tensor]]
    loss_before: float
    tokens: int

    @classmethod
    def before(
        cls,
        cfg: ForgettingConfig,
        model: nn.Module,
        tokenizer,
        cache_dir: str,
        measure: Callable[[list[dict[str, torch.Tensor]]], tuple[float, int]] | None = None,
    ) -> Forgetting | None:
        """The measurement on the base ``model``; None where it is off (``none``).

        ``measure``: ``next_token_loss`` of the base model on the batches, by another route (a cache); None: computed here.
        """
        source = text_source(cfg, tokenizer)
        if source == "none":
            return None
        batches = text_batches(general_texts(source, cfg.n_texts, cache_dir), tokenizer, cfg.max_length, cfg.batch_size)
        loss, tokens = (measure or functools.partial(next_token_loss, model))(batches)
        return cls(source, batches, loss, tokens)

    def after(self, model: nn.Module) -> dict:
        """The record's entry: the source, tokens, both losses and their difference, for the trained ``model``."""
        loss, _ = next_token_loss(model, self.batches)
        return {
            "text": self.source,
            "tokens": self.tokens,
            "loss_before": self.loss_before,
            "loss_after": loss,
            "delta": loss - self.loss_before,
        }
