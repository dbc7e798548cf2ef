"""Prompt-based classification: a template, label words, demonstrations, chat templates, left-padded batches.

A template holds ``{text}`` and ``{answer}``. For a causal LM the answer is the next token
after everything before ``{answer}``; text after it is used by demonstrations only. Each
label word must be a single token (zoo refuses a word the tokenizer splits, naming the
pieces): scoring then needs the LM head at one position over k columns only.

The context a query sees, in order (LM-BFF's demonstrations, Gao et al. 2021)::

    plain:  demo_1 <sep> ... demo_m <sep> before {text} after             demo = the whole template, filled
    chat:   [system] user: prompt(demo_1)  assistant: word_1  ...  user: prompt(query)  assistant: ▌

``▌`` (the start of the assistant turn in chat mode, the end of ``after`` otherwise) is
the answer position. When the context is too long only texts are cut: each
demonstration's text to ``max_length // (m + 1)`` tokens, the query's text to what is left;
the template, the chat markup and the answer position are never cut.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from zoo.tasks.data import Example

_SLOT = "\ue000{}\ue001"  # private-use characters: no template, chat markup or tokenizer produces them
_SLOT_RE = re.compile("\ue000(\\d+)\ue001")


def check_template(template: str, example: str) -> None:
    """Refuse a template without both placeholders, or with ``{answer}`` before ``{text}``, showing ``example``."""
    for field in ("{text}", "{answer}"):
        if field not in template:
            raise ValueError(f"template {template!r} lacks the {field} placeholder; e.g. {example}")
    if template.index("{text}") > template.index("{answer}"):
        raise ValueError(f"template {template!r} puts {{answer}} before {{text}}; a causal LM answers after the text")


@dataclass(frozen=True, kw_only=True)
class PromptMarkup:
    """How a prompt is laid out around its template, a classification task's (:class:`PromptFormat`) and a generation
    task's (zoo.tasks.generation.GenerationPrompt) alike."""

    chat_template: bool = False
    """Render the prompt as the user turn of the tokenizer's chat template; the answer starts the assistant turn."""
    system_prompt: str | None = None
    """Chat mode: the system turn; None: the chat template's own default; "": an empty system turn."""
    separator: str = "\n"
    """Between demonstrations and the query (plain mode)."""


@dataclass(frozen=True)
class PromptFormat(PromptMarkup):
    template: str
    label_words: list[str]
    demonstrations: tuple[Example, ...] = ()
    """Examples rendered with the template and their label word before the query."""

    def __post_init__(self) -> None:
        check_template(self.template, "'{text} It was {answer}'")
        if len(set(self.label_words)) != len(self.label_words) or len(self.label_words) < 2:
            raise ValueError(f"label_words {self.label_words} must be at least two distinct words")
        bad = sorted({e.label for e in self.demonstrations if not 0 <= e.label < len(self.label_words)})
        if bad:
            raise ValueError(f"demonstration labels {bad} have no label word among {self.label_words}")

    def _prompt(self, text: str) -> str:
        """The template up to the answer, spaces before ``{answer}`` left to the answer's token."""
        return self.template.split("{answer}", 1)[0].replace("{text}", text).rstrip(" ")

    def answer_form(self, word: str) -> str:
        """``word`` as it follows the prompt: with the space the template puts before ``{answer}``."""
        spaced = not self.chat_template and self.template.split("{answer}", 1)[0].endswith(" ")
        return " " + word if spaced else word

    def label_token_ids(self, tokenizer) -> list[int]:
        ids = []
        for word in self.label_words:
            form = self.answer_form(word)
            pieces = tokenizer(form, add_special_tokens=False)["input_ids"]
            if len(pieces) != 1:
                shown = tokenizer.convert_ids_to_tokens(pieces)
                raise ValueError(
                    f"label word {word!r} is {len(pieces)} tokens {shown} for this tokenizer (as {form!r} after the prompt); "
                    f"choose a single-token word"
                )
            if pieces[0] == tokenizer.unk_token_id:
                raise ValueError(f"label word {word!r} is unknown to the tokenizer (it maps to {tokenizer.unk_token!r})")
            ids.append(pieces[0])
        if len(set(ids)) != len(ids):
            raise ValueError(f"label words {self.label_words} map to repeated token ids {ids}")
        return ids

    def render(self, tokenizer) -> str:
        """The whole context as text, with slot ``i`` marking demonstration i's text and slot ``m`` the query's."""
        m = len(self.demonstrations)
        if not self.chat_template:
            demos = [
                self.template.replace("{text}", _SLOT.format(i)).replace("{answer}", self.label_words[d.label])
                for i, d in enumerate(self.demonstrations)
            ]
            return "".join(d + self.separator for d in demos) + self._prompt(_SLOT.format(m))
        if getattr(tokenizer, "chat_template", None) is None:
            raise ValueError(
                "task.chat_template=true, but this model's tokenizer has no chat template; set task.chat_template=false"
            )
        messages = [{"role": "system", "content": self.system_prompt}] if self.system_prompt is not None else []
        for i, d in enumerate(self.demonstrations):
            messages += [
                {"role": "user", "content": self._prompt(_SLOT.format(i)).strip()},
                {"role": "assistant", "content": self.label_words[d.label]},
            ]
        messages.append({"role": "user", "content": self._prompt(_SLOT.format(m)).strip()})
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    def encoder(self, tokenizer, max_length: int) -> PromptEncoder:
        return PromptEncoder(self, tokenizer, max_length)

    def encode(self, tokenizer, text: str, max_length: int) -> list[int]:
        """Token ids of the context up to the answer; only texts are cut (see the module docstring)."""
        return self.encoder(tokenizer, max_length)(text)


class PromptEncoder:
    """A :class:`PromptFormat` compiled for one tokenizer: fixed pieces tokenized once, the query's text per call."""

    def __init__(self, fmt: PromptFormat, tokenizer, max_length: int):
        self.tokenizer = tokenizer
        parts = _SLOT_RE.split(fmt.render(tokenizer))  # literal, slot, literal, ..., slot m, literal
        m = len(fmt.demonstrations)
        demo_budget = max(1, max_length // (m + 1))
        before: list[int] = []
        self.lead = ""
        for i in range(0, len(parts) - 1, 2):
            literal, slot = parts[i], int(parts[i + 1])
            # "Review: " + "great" tokenizes badly in BPE ("Ġ" alone, then "great"); "Review:" + " great" as in running text
            literal, lead = literal.rstrip(" "), literal[len(literal.rstrip(" ")) :]
            before += self._ids(literal)
            if slot == m:
                self.lead = lead
            else:
                before += self._ids(lead + fmt.demonstrations[slot].text)[:demo_budget]
        self.before, self.after = before, self._ids(parts[-1])
        self.budget = max_length - len(self.before) - len(self.after)
        if self.budget < 1:
            what = "template and demonstrations" if m else "template"
            raise ValueError(
                f"the {what} ({fmt.template!r}) alone need {len(self.before) + len(self.after)} tokens; "
                f"max_length={max_length} leaves no room for text"
            )

    def _ids(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"] if text else []

    def __call__(self, text: str) -> list[int]:
        return self.before + self._ids(self.lead + text)[: self.budget] + self.after


def batches(
    encoded: list[list[int]],
    labels: list[int],
    batch_size: int,
    pad_id: int,
    seed: int | None,
    padding_side: str = "left",
) -> list[dict[str, torch.Tensor]]:
    """Padded batches of similar length (little padding); shuffled when ``seed`` is set.

    Left padding (the default) puts every answer position last; encoders read their first
    token and take right padding, so that absolute positions start at 0.
    Each batch carries ``index``: the positions of its examples in ``encoded``.
    """
    if padding_side not in ("left", "right"):
        raise ValueError(f"padding_side {padding_side!r} is not one of left, right")
    out = []
    for chunk in length_grouped([len(e) for e in encoded], batch_size, seed):
        width = max(len(encoded[i]) for i in chunk)
        ids = torch.full((len(chunk), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(chunk), width), dtype=torch.long)
        for row, i in enumerate(chunk):
            n = len(encoded[i])
            cols = slice(width - n, width) if padding_side == "left" else slice(0, n)
            ids[row, cols] = torch.tensor(encoded[i])
            mask[row, cols] = 1
        out.append(
            {
                "input_ids": ids,
                "attention_mask": mask,
                "labels": torch.tensor([labels[i] for i in chunk]),
                "index": torch.tensor(chunk),
            }
        )
    return out


def length_grouped(lengths: list[int], batch_size: int, seed: int | None) -> list[list[int]]:
    """Indices of ``lengths`` in chunks of ``batch_size`` of similar length; in a seeded random order when ``seed`` is set."""
    order = list(range(len(lengths)))
    if seed is not None:
        random.Random(seed).shuffle(order)
    window = batch_size * 32  # sort inside windows: lengths group, the order stays random
    order = [i for s in range(0, len(order), window) for i in sorted(order[s : s + window], key=lambda j: lengths[j])]
    chunks = [order[s : s + batch_size] for s in range(0, len(order), batch_size)]
    if seed is not None:
        random.Random(seed + 1).shuffle(chunks)
    return chunks


def encode_examples(fmt: PromptFormat, tokenizer, examples: list[Example], max_length: int) -> tuple[list[list[int]], list[int]]:
    encode = fmt.encoder(tokenizer, max_length)
    return [encode(e.text) for e in examples], [e.label for e in examples]


def class_logits(model, batch: dict[str, torch.Tensor], label_token_ids: torch.Tensor) -> torch.Tensor:
    """(B, k) logits of the label words at the answer position (the last, as batches are left padded)."""
    out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], logits_to_keep=1)
    return out.logits[:, -1, label_token_ids]


@dataclass(frozen=True)
class LabelWordScorer:
    """Class scores of a prompt: the label words' logits at the answer position."""

    label_token_ids: list[int]

    def __call__(self, model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return class_logits(model, batch, torch.tensor(self.label_token_ids, device=batch["input_ids"].device))


def as_scorer(scorer):
    """A ``(model, batch) -> (B, k)`` callable; label token ids (a list or tensor) become a :class:`LabelWordScorer`."""
    if isinstance(scorer, torch.Tensor):
        return LabelWordScorer(scorer.tolist())
    if isinstance(scorer, (list, tuple)):
        return LabelWordScorer(list(scorer))
    return scorer


def classification_loss(scorer):
    """Cross-entropy over the class scores of ``scorer`` (or of these label token ids at the answer position)."""
    scorer = as_scorer(scorer)

    def loss(model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return F.cross_entropy(scorer(model, batch).float(), batch["labels"])

    return loss
