"""Predictions and metrics of a prompt-based classifier."""
from __future__ import annotations

import torch

from zoo.tasks.metrics import classification_metrics
from zoo.tasks.prompt import class_logits


@torch.no_grad()
def predict(model, batches: list[dict[str, torch.Tensor]], label_token_ids: list[int]) -> tuple[list[int], list[int]]:
    """``(predictions, example indices)``: the argmax label word for each example."""
    device = next(model.parameters()).device
    ids = torch.tensor(label_token_ids, device=device)
    was_training = model.training
    model.eval()
    predictions, indices = [], []
    for batch in batches:
        logits = class_logits(model, {k: v.to(device) for k, v in batch.items()}, ids)
        predictions += logits.argmax(-1).tolist()
        indices += batch["index"].tolist()
    model.train(was_training)
    return predictions, indices


def evaluate(model, batches, label_token_ids: list[int], labels: list[int], label_names: list[str]) -> tuple[dict, list[int]]:
    """``(metrics, predictions in example order)``."""
    predicted, indices = predict(model, batches, label_token_ids)
    ordered = [0] * len(labels)
    for i, p in zip(indices, predicted):
        ordered[i] = p
    return classification_metrics(ordered, labels, label_names), ordered
