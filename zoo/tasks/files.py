"""Local files as a task: one CSV, TSV or JSONL file (split here, with a seed), or a folder of them.

A folder holds ``train.<ext>`` and ``validation.<ext>`` and/or ``test.<ext>`` (ext: csv, tsv,
jsonl). A single file is split 80/10/10 into train/validation/test, stratified by class,
with the fixed split seed (the same split for every run). Columns are mapped by :class:`zoo.tasks.columns.ColumnMapping`.
"""
from __future__ import annotations

import csv
import json
from pathlib import Path

from zoo.tasks.columns import ColumnMapping
from zoo.tasks.data import LabelledSplits
from zoo.tasks.splits import SPLIT_FRACTIONS, split_examples

SUFFIXES = (".csv", ".tsv", ".jsonl")


def read_rows(path: Path, encoding: str = "utf-8") -> tuple[list[dict], list[str]]:
    """``(rows, column names)`` of a .csv, .tsv or .jsonl file."""
    if path.suffix not in SUFFIXES:
        raise ValueError(f"{str(path)!r} is not a {'/'.join(SUFFIXES)} file")
    with path.open(encoding=encoding, newline="") as f:
        if path.suffix == ".jsonl":
            rows = []
            for number, line in enumerate(f, 1):
                if line.strip():
                    try:
                        rows.append(json.loads(line))
                    except json.JSONDecodeError as err:
                        raise ValueError(f"{path}:{number} is not a JSON object: {err}") from err
            columns = list(dict.fromkeys(key for row in rows for key in row))
            return rows, columns
        reader = csv.DictReader(f, delimiter="," if path.suffix == ".csv" else "\t")
        rows = list(reader)
        return rows, list(reader.fieldnames or [])


def load_files(path: str | Path, mapping: ColumnMapping, encoding: str = "utf-8") -> LabelledSplits:
    """The labelled splits of a file or folder (see the module docstring)."""
    path = Path(path).expanduser()
    if path.is_file():
        rows, columns = read_rows(path, encoding)
        mapping.check_columns(columns, str(path))
        names, integer_coded = mapping.class_names([r.get(mapping.label_column) for r in rows])
        examples = mapping.to_examples(rows, names, str(path), integer_coded)
        return LabelledSplits(split_examples(examples), names, str(path))
    if not path.is_dir():
        raise FileNotFoundError(f"task.path {str(path)!r} is neither a file nor a folder")
    files = {p.stem: p for p in sorted(path.iterdir()) if p.suffix in SUFFIXES and p.stem in SPLIT_FRACTIONS}
    if "train" not in files:
        found = sorted(p.name for p in path.iterdir())
        raise FileNotFoundError(f"folder {str(path)!r} has no train{{{','.join(SUFFIXES)}}} file (it holds {found})")
    tables = {}
    for split, file in files.items():
        rows, columns = read_rows(file, encoding)
        mapping.check_columns(columns, str(file))
        tables[split] = rows
    names, integer_coded = mapping.class_names([r.get(mapping.label_column) for r in tables["train"]])
    splits = {split: mapping.to_examples(rows, names, str(files[split]), integer_coded) for split, rows in tables.items()}
    return LabelledSplits(splits, names, str(path))
