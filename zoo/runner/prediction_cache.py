"""A cache of the base model's predictions, so a sweep scores each untrained baseline once.

Every run scores the base model zero-shot (and in context) on its evaluation set before it
trains; across a sweep those inputs repeat. A cache entry is keyed by everything the answer
depends on: the model's name and weights (:func:`zoo.fingerprint.fingerprint`), its dtype and
device, the exact token ids, masks and labels of the evaluation batches (so the template,
label words, demonstrations, truncation and evaluation set are all in the key), the scored
label-word ids and the class names. Entries are JSON files written atomically, each with a
sha256 of its key and content: an entry that was edited, damaged or copied under another key
is a miss (with a warning naming the file), never a wrong zero-shot score. A folder zoo cannot
write (read-only, a teammate's) costs only the caching: the run warns and goes on. Deleting
the folder clears the cache.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from pathlib import Path

import torch

from zoo.runtime.atomic import write_json

log = logging.getLogger(__name__)
Scored = tuple[dict, list[int]]
"""(metrics, predictions in example order), as :func:`zoo.evaluation.classification.evaluate` returns them."""


def cache_key(model_id: dict, batches: list[dict[str, torch.Tensor]], scorer_id: list, label_names: list[str]) -> str:
    """A hex digest of the model's identity, the batches' tensors, the scorer and the class names."""
    digest = hashlib.sha256(json.dumps([model_id, scorer_id, label_names], sort_keys=True, default=str).encode())
    for batch in batches:
        for name in sorted(batch):
            tensor = batch[name].detach().cpu().contiguous()
            digest.update(f"{name}|{tuple(tensor.shape)}|{tensor.dtype};".encode())
            digest.update(tensor.numpy().tobytes())
    return digest.hexdigest()[:32]


def _checksum(key: str, metrics: dict, predictions: list[int]) -> str:
    """sha256 of the entry as JSON reads it back (so int dict keys, tuples and the like hash as they are stored)."""
    stored = json.loads(json.dumps([key, metrics, predictions], default=str))
    return hashlib.sha256(json.dumps(stored, sort_keys=True).encode()).hexdigest()


def _read(path: Path, key: str) -> Scored | None:
    """The entry at ``path``, or None (with a warning) when it is unreadable or fails its checksum."""
    try:
        entry = json.loads(path.read_text())
        metrics, predictions = entry["metrics"], entry["predictions"]
        if entry.get("sha256") != _checksum(key, metrics, predictions):
            log.warning(
                "ignoring cache entry %s: its checksum is missing or does not match its content (edited or damaged); "
                "scoring again",
                path,
            )
            return None
    except (OSError, ValueError, KeyError, TypeError) as err:
        log.warning("ignoring unreadable cache entry %s: %s", path, err)
        return None
    log.info("base-model predictions from the cache: %s", path)
    return metrics, predictions


def cached(folder: str | Path | None, key: str, compute: Callable[[], Scored]) -> Scored:
    """``compute()``'s result, read from ``folder/<key>.json`` when present and intact, else computed and stored there."""
    if folder is None:
        return compute()
    path = Path(folder).expanduser() / f"{key}.json"
    if path.is_file() and (entry := _read(path, key)) is not None:
        return entry
    metrics, predictions = compute()
    try:
        write_json(path, {"metrics": metrics, "predictions": predictions, "sha256": _checksum(key, metrics, predictions)})
    except OSError as err:
        log.warning(
            "could not store the base-model predictions in the cache (%s); the run goes on, later runs score them "
            "again (predictions_cache=null turns the cache off)",
            err,
        )
    return metrics, predictions
