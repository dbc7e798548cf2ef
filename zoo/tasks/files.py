"""Local files as a task: one CSV, TSV or JSONL file (split here, with a seed), or a folder of them.

A folder holds ``train.<ext>`` and ``validation.<ext>`` and/or ``test.<ext>`` (ext: csv, tsv,
jsonl). A single file is split 80/10/10 into train/validation/test, stratified by class,
with the fixed split seed (the same split for every run). Columns are mapped by :class:`zoo.tasks.columns.ColumnMapping`.
Files are read in ``task.encoding`` (UTF-8 by default); bad input is reported with its file and line.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from zoo.tasks.columns import ColumnMapping
from zoo.tasks.data import Splits
from zoo.tasks.splits import SPLIT_FRACTIONS, split_examples

SUFFIXES = (".csv", ".tsv", ".jsonl")
FIELD_LIMIT = 16 * 2**20
"""Longest CSV/TSV field read, in characters (Python's csv stops at 128 Ki). Far longer than any text a
model reads (task.max_length cuts it), yet a quote left open in a large file still fails, naming the line."""


def read_rows(path: Path, encoding: str = "utf-8") -> tuple[list[dict], list[str]]:
    """``(rows, column names)`` of a .csv, .tsv or .jsonl file.

    Raises:
        ValueError: text that is not in ``encoding``, a line that is not a JSON object, or a CSV
            error, each naming the file and line.
    """
    if path.suffix not in SUFFIXES:
        raise ValueError(f"{str(path)!r} is not a {'/'.join(SUFFIXES)} file")
    lines = io.StringIO(_decode(path, encoding), newline="")
    if path.suffix == ".jsonl":
        rows = []
        for number, line in enumerate(lines, 1):
            if line.strip():
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as err:
                    raise ValueError(f"{path}:{number} is not a JSON object: {err}") from err
                if not isinstance(row, dict):
                    raise ValueError(f"{path}:{number} is not a JSON object but a {type(row).__name__}: {line.strip()[:80]!r}")
                rows.append(row)
        columns = list(dict.fromkeys(key for row in rows for key in row))
        return rows, columns
    delimiter = "," if path.suffix == ".csv" else "\t"
    reader = csv.DictReader(lines, delimiter=delimiter)
    limit = csv.field_size_limit(FIELD_LIMIT)  # the process-wide limit, set back below
    try:
        rows = _checked_rows(reader, path, delimiter)
    except csv.Error as err:
        hint = (
            (
                f" (fields are read up to {FIELD_LIMIT:,} characters: a longer one is most likely a quote left open, "
                f"which swallows the lines after it)"
            )
            if "field limit" in str(err)
            else ""
        )
        raise ValueError(f"{path}:{reader.line_num}: {err}{hint}") from err
    finally:
        csv.field_size_limit(limit)
    return rows, list(reader.fieldnames or [])


def _checked_rows(reader: csv.DictReader, path: Path, delimiter: str) -> list[dict]:
    """The rows of ``reader``, refusing a quoted field that swallowed lines which read as rows of their own.

    A quote left open makes the rest of the file (or everything up to the next stray quote) one
    field: hundreds of rows vanish into one example. A field holding line breaks is legitimate
    text; one whose continuation lines are, nearly all of them (:data:`ROW_LIKE_SHARE`), exactly
    a row's number of fields is such a quote, and is refused naming the line where it opens.
    """
    columns = len(reader.fieldnames or [])
    rows, end = [], reader.line_num
    for row in reader:
        start, end = end + 1, reader.line_num
        for value in row.values():
            swallowed = _row_like_lines(value, delimiter, columns) if isinstance(value, str) and "\n" in value else 0
            if swallowed:
                raise ValueError(
                    f"{path}:{start}: a quoted field opens on this line and runs to line {end}, swallowing "
                    f"{swallowed} lines that read as rows of their own; close the quote on line {start} "
                    f'(a quote inside a field is written twice: "")'
                )
        rows.append(row)
    return rows


ROW_LIKE_SHARE = 0.8
"""The share of a multi-line field's continuation lines that, read alone, have a row's number of fields, above
which the field is taken for a quote left open (at least two such lines)."""


def _row_like_lines(value: str, delimiter: str, columns: int) -> int:
    """How many continuation lines of multi-line field ``value`` read as whole rows, where they are nearly all of
    them (0 where they are not: the field is ordinary text with line breaks)."""
    following = [line for line in value.split("\n")[1:] if line.strip()]
    row_like = sum(len(next(csv.reader([line], delimiter=delimiter), [])) == columns for line in following)
    return row_like if row_like >= 2 and row_like >= ROW_LIKE_SHARE * len(following) else 0


def _decode(path: Path, encoding: str) -> str:
    """The file's text; bytes that are not ``encoding`` are reported with their line and the option to fix it."""
    data = path.read_bytes()
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise ValueError(
            f"{path}:{line}: not {encoding} text ({err.reason}: byte {data[err.start : err.start + 1]!r} at offset "
            f"{err.start}); give the file's encoding, e.g. task.encoding=latin-1 or task.encoding=cp1252 "
            f"(Windows), or save it as UTF-8"
        ) from err


def load_files(path: str | Path, mapping: ColumnMapping, encoding: str = "utf-8") -> Splits:
    """The labelled splits of a file or folder (see the module docstring)."""
    path = Path(path).expanduser()
    if path.is_file():
        rows, columns = read_rows(path, encoding)
        mapping.check_columns(columns, str(path))
        names, integer_coded = mapping.class_names([r.get(mapping.label_column) for r in rows])
        examples = mapping.to_examples(rows, names, str(path), integer_coded)
        return Splits(split_examples(examples), str(path), names)
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
    return Splits(splits, str(path), names)
