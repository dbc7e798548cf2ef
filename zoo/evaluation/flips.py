"""What fine-tuning changed: the answers that flipped between the base model and the tuned one."""

from __future__ import annotations

import json
from pathlib import Path

from zoo.runtime.written import write_text
from zoo.tasks.data import Example
from zoo.tasks.metrics import classification_metrics


def flips(before: list[int], after: list[int], true: list[int], label_names: list[str]) -> dict:
    """Counts of changed answers and the metrics before and after.

    ``changed[a][b]`` counts answers that went from class a to class b (a != b);
    corrections went from wrong to right, regressions from right to wrong.
    """
    if not len(before) == len(after) == len(true):
        raise ValueError(f"before, after and true must be equally long, got {len(before)}, {len(after)}, {len(true)}")
    k = len(label_names)
    changed = [[0] * k for _ in range(k)]
    corrections = regressions = 0
    for b, a, t in zip(before, after, true):
        if a != b:
            changed[b][a] += 1
            corrections += b != t and a == t
            regressions += b == t and a != t
    n_flipped = sum(map(sum, changed))
    return {
        "flipped": n_flipped,
        "corrections": corrections,
        "regressions": regressions,
        "other_changes": n_flipped - corrections - regressions,
        "changed": {label_names[i]: {label_names[j]: changed[i][j] for j in range(k) if j != i} for i in range(k)},
        "before": classification_metrics(before, true, label_names),
        "after": classification_metrics(after, true, label_names),
    }


def write_flipped_examples(
    path: Path, examples: list[Example], before: list[int], after: list[int], label_names: list[str]
) -> None:
    """One JSON line per flipped example: its index, text, true label, and the two answers."""
    lines = [
        json.dumps({"index": i, "text": e.text, "label": label_names[e.label], "before": label_names[b], "after": label_names[a]})
        for i, (e, b, a) in enumerate(zip(examples, before, after))
        if a != b
    ]
    write_text(path, "".join(line + "\n" for line in lines), "the flipped answers")
