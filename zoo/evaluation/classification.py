"""Predictions and metrics of a classifier: label words after a prompt, or a classification head."""

from __future__ import annotations

from collections import Counter

import torch
from accelerate import Accelerator

from zoo.runtime.distributed import dealt, gathered
from zoo.tasks.metrics import classification_metrics
from zoo.tasks.prompt import as_scorer


@torch.no_grad()
def predict(model, batches: list[dict[str, torch.Tensor]], scorer) -> tuple[list[int], list[int]]:
    """``(predictions, example indices)``: the highest-scoring class of each example.

    ``scorer``: a ``(model, batch) -> (B, k)`` callable (a head), or the label words' token
    ids, scored at the answer position.
    """
    scorer = as_scorer(scorer)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    predictions, indices = [], []
    for batch in batches:
        logits = scorer(model, {k: v.to(device) for k, v in batch.items()})
        predictions += logits.argmax(-1).tolist()
        indices += batch["index"].tolist()
    model.train(was_training)
    return predictions, indices


def evaluate(
    model, batches, scorer, labels: list[int], label_names: list[str], accelerator: Accelerator | None = None
) -> tuple[dict, list[int]]:
    """``(metrics, predictions in example order)``; ``scorer`` as in :func:`predict`.

    With an ``accelerator`` of several processes each predicts its share of the batches and
    the predictions are gathered, on every process. Each example must be predicted exactly
    once: a duplicated or missing one is an error, never a silently wrong metric.
    """
    if accelerator is None:
        predicted, indices = predict(model, batches, scorer)
    else:
        predicted, indices = zip(*gathered(list(zip(*predict(model, dealt(batches, accelerator), scorer))), accelerator))
    if sorted(indices) != list(range(len(labels))):
        seen = Counter(indices)
        raise RuntimeError(
            f"evaluation predicted {len(indices)} examples for {len(labels)}: duplicated "
            f"{sorted(i for i, c in seen.items() if c > 1)[:10]}, missing {sorted(set(range(len(labels))) - set(seen))[:10]}"
        )
    ordered = [0] * len(labels)
    for i, p in zip(indices, predicted):
        ordered[i] = p
    return classification_metrics(ordered, labels, label_names), ordered
