"""Classification metrics from predicted and true class indices."""

from __future__ import annotations


def classification_metrics(predicted: list[int], true: list[int], label_names: list[str]) -> dict:
    """Accuracy, macro-F1, per-class precision/recall/F1 and the confusion matrix.

    ``confusion[i][j]`` counts examples of true class i predicted as class j.
    """
    if len(predicted) != len(true) or not true:
        raise ValueError(f"need equally long, non-empty predictions and labels, got {len(predicted)} and {len(true)}")
    k = len(label_names)
    confusion = [[0] * k for _ in range(k)]
    for p, t in zip(predicted, true):
        confusion[t][p] += 1
    per_class, f1s = {}, []
    for c, name in enumerate(label_names):
        tp = confusion[c][c]
        predicted_c = sum(confusion[t][c] for t in range(k))
        actual_c = sum(confusion[c])
        precision = tp / predicted_c if predicted_c else 0.0
        recall = tp / actual_c if actual_c else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[name] = {"precision": precision, "recall": recall, "f1": f1, "support": actual_c}
        f1s.append(f1)
    return {
        "accuracy": sum(confusion[c][c] for c in range(k)) / len(true),
        "macro_f1": sum(f1s) / k,
        "per_class": per_class,
        "confusion": confusion,
    }
