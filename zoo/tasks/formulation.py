"""The two ways a run turns a model into a classifier, behind one shape.

A :class:`Formulation` says how a text becomes token ids, how batches are padded, and how
class scores come out of the model (``scorer(model, batch) -> (B, k)``):

- ``prompt``: the template (with demonstrations, chat markup) and the label words' logits at
  the answer position; causal LMs only. Nothing new trains: the method's parameters do.
- ``head``: the text alone and a new :class:`~zoo.tasks.head.ClassificationHead` on the
  final hidden state; causal LMs and encoders. The head trains beside the method.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from torch import nn

from zoo.method import MethodSpec
from zoo.tasks.config import TaskConfig, label_words_mismatch
from zoo.tasks.data import Example
from zoo.tasks.head import ClassificationHead, encode_text
from zoo.tasks.prompt import LabelWordScorer, PromptFormat, batches
from zoo.tasks.splits import demonstrations


@dataclass
class Formulation:
    encode: Callable[[str], list[int]]
    scorer: Callable
    padding_side: str
    head: ClassificationHead | None = None
    label_token_ids: list[int] | None = None
    """The label words' token ids a prompt formulation scores (None: a head formulation)."""

    def batches(self, examples: list[Example], batch_size: int, pad_id: int, seed: int | None) -> list[dict]:
        encoded = [self.encode(e.text) for e in examples]
        return batches(encoded, [e.label for e in examples], batch_size, pad_id, seed, self.padding_side)


def formulation_for(
    task: TaskConfig,
    tokenizer,
    kind: str,
    *,
    name: str | None = None,
    train: Sequence[Example] = (),
    with_demonstrations: bool = True,
    model: nn.Module | None = None,
    label_names: Sequence[str] | None = None,
) -> Formulation:
    """The one way every caller (the runner, ``zoo-analyze``, proxy tuning, the benchmarks) turns ``task`` into a formulation.

    Args:
        name: ``prompt`` or ``head``; None: the task's own ``formulation``.
        train: the training examples the task's demonstrations are drawn from (prompt only; a head ignores them).
        with_demonstrations: False scores the bare template, as the zero-shot baseline does.
        model: the model a head sits on (head only: its hidden size and device; a prompt ignores it).
        label_names: the task's classes: a head has one output per class, a prompt needs one label word per class (refused
            otherwise); None: as many classes as label words.
    """
    name = name or task.formulation
    check_formulation(name, kind, None)
    if name == "head":
        if model is None:
            raise ValueError("a head formulation needs the model it sits on (model=...)")
        return head_formulation(
            model, tokenizer, len(task.label_words if label_names is None else label_names), task.max_length, kind
        )
    if label_names is not None and len(label_names) != len(task.label_words):
        raise ValueError(label_words_mismatch(task, list(label_names)))
    shown = (
        tuple(demonstrations(list(train), task.demonstrations, task.training_seed))
        if with_demonstrations and task.demonstrations
        else ()
    )
    if with_demonstrations and task.demonstrations and not shown:
        raise ValueError(f"task.demonstrations={task.demonstrations} needs the training examples to draw them from (train=...)")
    return prompt_formulation(prompt_format(task, shown), tokenizer, task.max_length)


def prompt_format(task: TaskConfig, shown: tuple[Example, ...] = ()) -> PromptFormat:
    """The task's prompt: template, label words, chat markup, system turn, and ``shown`` demonstrations."""
    return PromptFormat(
        task.template,
        list(task.label_words),
        shown,
        chat_template=task.chat_template,
        system_prompt=task.system_prompt,
        separator=task.demonstration_separator,
    )


def prompt_formulation(fmt: PromptFormat, tokenizer, max_length: int) -> Formulation:
    ids = fmt.label_token_ids(tokenizer)
    return Formulation(fmt.encoder(tokenizer, max_length), LabelWordScorer(ids), "left", label_token_ids=ids)


def head_formulation(model: nn.Module, tokenizer, num_classes: int, max_length: int, kind: str) -> Formulation:
    encoder = kind == "encoder"
    head = ClassificationHead(model.config.hidden_size, num_classes, encoder).to(next(model.parameters()).device)
    return Formulation(
        lambda text: encode_text(tokenizer, text, max_length, encoder),
        head,
        "right" if encoder else "left",
        head,  # an encoder reads its first token: right padding keeps positions from 0
    )


def trains_head(name: str) -> bool:
    """Whether formulation ``name`` adds a classification head that trains (beside the method, or alone in a linear probe)."""
    return name == "head"


def check_formulation(formulation: str, kind: str, spec: MethodSpec | None) -> None:
    """Refuse combinations that cannot work, saying what would."""
    if formulation == "prompt" and kind != "causal_lm":
        raise ValueError(
            f"task.formulation=prompt scores the next token of a causal LM, and this model is an {kind}; "
            f"use task.formulation=head (a classification head on its first token)"
        )
    if formulation == "head" and spec is not None and spec.needs_label_words:
        raise ValueError(f"method {spec.name!r} works on the label words' logits; use task.formulation=prompt")
    if formulation == "head" and spec is not None and spec.gradient_free:
        raise ValueError(
            f"method {spec.name!r} is solved in closed form and cannot train a classification head; use task.formulation=prompt"
        )
