"""Prompt-based classification: a template, label words, and left-padded batches.

A template holds ``{text}`` and ``{answer}``. For a causal LM the answer is the next token
after everything before ``{answer}``; text after it is not used. Each label word must be a
single token (zoo refuses a word the tokenizer splits, naming the pieces): scoring then
needs the LM head at one position over k columns only.
"""
from __future__ import annotations

import random
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from zoo.tasks.data import Example


@dataclass(frozen=True)
class PromptFormat:
    template: str
    label_words: list[str]

    def __post_init__(self) -> None:
        for field in ("{text}", "{answer}"):
            if field not in self.template:
                raise ValueError(f"template {self.template!r} lacks the {field} placeholder; e.g. '{{text}} It was {{answer}}'")
        if self.template.index("{text}") > self.template.index("{answer}"):
            raise ValueError(f"template {self.template!r} puts {{answer}} before {{text}}; a causal LM answers after the text")
        if len(set(self.label_words)) != len(self.label_words) or len(self.label_words) < 2:
            raise ValueError(f"label_words {self.label_words} must be at least two distinct words")

    def label_token_ids(self, tokenizer) -> list[int]:
        ids = []
        for word in self.label_words:
            pieces = tokenizer(" " + word, add_special_tokens=False)["input_ids"]
            pieces = pieces if len(pieces) == 1 else tokenizer(word, add_special_tokens=False)["input_ids"]
            if len(pieces) != 1:
                shown = tokenizer.convert_ids_to_tokens(pieces)
                raise ValueError(f"label word {word!r} is {len(pieces)} tokens {shown} for this tokenizer; choose a single-token word")
            if pieces[0] == tokenizer.unk_token_id:
                raise ValueError(f"label word {word!r} is unknown to the tokenizer (it maps to {tokenizer.unk_token!r})")
            ids.append(pieces[0])
        if len(set(ids)) != len(ids):
            raise ValueError(f"label words {self.label_words} map to repeated token ids {ids}")
        return ids

    def encode(self, tokenizer, text: str, max_length: int) -> list[int]:
        """Token ids of the templated text up to the answer; the text is cut, never the template."""
        before, rest = self.template.split("{text}", 1)
        after = rest.split("{answer}", 1)[0]
        pieces = [tokenizer(p, add_special_tokens=False)["input_ids"] if p else [] for p in (before, text, after.rstrip())]
        budget = max_length - len(pieces[0]) - len(pieces[2])
        if budget < 1:
            raise ValueError(f"template {self.template!r} alone needs {max_length - budget} tokens; max_length={max_length} leaves no room for text")
        return pieces[0] + pieces[1][:budget] + pieces[2]


def batches(
    encoded: list[list[int]], labels: list[int], batch_size: int, pad_id: int, seed: int | None
) -> list[dict[str, torch.Tensor]]:
    """Left-padded batches of similar length (little padding); shuffled when ``seed`` is set.

    Each batch carries ``index``: the positions of its examples in ``encoded``.
    """
    order = list(range(len(encoded)))
    if seed is not None:
        random.Random(seed).shuffle(order)
    window = batch_size * 32  # sort inside windows: lengths group, the order stays random
    order = [i for s in range(0, len(order), window) for i in sorted(order[s:s + window], key=lambda j: len(encoded[j]))]
    chunks = [order[s:s + batch_size] for s in range(0, len(order), batch_size)]
    if seed is not None:
        random.Random(seed + 1).shuffle(chunks)
    out = []
    for chunk in chunks:
        width = max(len(encoded[i]) for i in chunk)
        ids = torch.full((len(chunk), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(chunk), width), dtype=torch.long)
        for row, i in enumerate(chunk):
            ids[row, width - len(encoded[i]):] = torch.tensor(encoded[i])
            mask[row, width - len(encoded[i]):] = 1
        out.append({
            "input_ids": ids, "attention_mask": mask,
            "labels": torch.tensor([labels[i] for i in chunk]), "index": torch.tensor(chunk),
        })
    return out


def encode_examples(fmt: PromptFormat, tokenizer, examples: list[Example], max_length: int) -> tuple[list[list[int]], list[int]]:
    return [fmt.encode(tokenizer, e.text, max_length) for e in examples], [e.label for e in examples]


def class_logits(model, batch: dict[str, torch.Tensor], label_token_ids: torch.Tensor) -> torch.Tensor:
    """(B, k) logits of the label words at the answer position (the last, as batches are left padded)."""
    out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], logits_to_keep=1)
    return out.logits[:, -1, label_token_ids]


def classification_loss(label_token_ids: torch.Tensor):
    """Cross-entropy over the label words' logits at the answer position."""

    def loss(model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        ids = label_token_ids.to(batch["input_ids"].device)
        return F.cross_entropy(class_logits(model, batch, ids).float(), batch["labels"])

    return loss
