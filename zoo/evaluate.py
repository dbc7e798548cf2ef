"""Predictions and metrics of a classifier: label words after a prompt, or a classification head."""
from __future__ import annotations

import torch

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


def evaluate(model, batches, scorer, labels: list[int], label_names: list[str]) -> tuple[dict, list[int]]:
    """``(metrics, predictions in example order)``; ``scorer`` as in :func:`predict`."""
    predicted, indices = predict(model, batches, scorer)
    ordered = [0] * len(labels)
    for i, p in zip(indices, predicted):
        ordered[i] = p
    return classification_metrics(ordered, labels, label_names), ordered
