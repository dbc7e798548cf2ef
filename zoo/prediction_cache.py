"""A cache of the base model's predictions, so a sweep scores each untrained baseline once.

Every run scores the base model zero-shot (and in context) on its evaluation set before it
trains; across a sweep those inputs repeat. A cache entry is keyed by everything the answer
depends on: the model's name and weights (:func:`zoo.fingerprint.fingerprint`), its dtype and
device, the exact token ids, masks and labels of the evaluation batches (so the template,
label words, demonstrations, truncation and evaluation set are all in the key), the scored
label-word ids and the class names. Entries are JSON files written atomically; deleting the
folder clears the cache.
"""
from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from pathlib import Path

import torch

from zoo.atomic import write_json

log = logging.getLogger(__name__)
Scored = tuple[dict, list[int]]
"""(metrics, predictions in example order), as :func:`zoo.evaluate.evaluate` returns them."""


def cache_key(model_id: dict, batches: list[dict[str, torch.Tensor]], scorer_id: list, label_names: list[str]) -> str:
    """A hex digest of the model's identity, the batches' tensors, the scorer and the class names."""
    digest = hashlib.sha256(json.dumps([model_id, scorer_id, label_names], sort_keys=True, default=str).encode())
    for batch in batches:
        for name in sorted(batch):
            tensor = batch[name].detach().cpu().contiguous()
            digest.update(f"{name}|{tuple(tensor.shape)}|{tensor.dtype};".encode())
            digest.update(tensor.numpy().tobytes())
    return digest.hexdigest()[:32]


def cached(folder: str | Path | None, key: str, compute: Callable[[], Scored]) -> Scored:
    """``compute()``'s result, read from ``folder/<key>.json`` when present, else computed and stored there."""
    if folder is None:
        return compute()
    path = Path(folder).expanduser() / f"{key}.json"
    if path.is_file():
        try:
            entry = json.loads(path.read_text())
            log.info("base-model predictions from the cache: %s", path)
            return entry["metrics"], entry["predictions"]
        except (json.JSONDecodeError, KeyError) as err:
            log.warning("ignoring unreadable cache entry %s: %s", path, err)
    metrics, predictions = compute()
    write_json(path, {"metrics": metrics, "predictions": predictions})
    return metrics, predictions
