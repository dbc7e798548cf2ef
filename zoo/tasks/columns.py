"""Rows of any source (a CSV/TSV/JSONL file, a Hugging Face dataset) -> examples, by column mapping.

A row is a dict. ``text_column`` holds the text and ``label_column`` the label, which may be
a class name (``"positive"``), an integer or an integer string (``1``, ``"1"``: CSV cells are
strings). How labels become classes, first rule that applies:

1. ``label_map`` (raw label -> class name, keys compared as strings): renames and merges
   labels; rows whose label is not a key are dropped (that is how a class is filtered out).
   Classes are ``label_names``, or the map's values in order of first appearance.
2. ``label_names``: the classes in order; a label equal to a name is that class, an integer
   ``i`` is class ``i`` (the usual integer coding of datasets).
3. Names the source declares (a Hugging Face ``ClassLabel``): integer labels index them.
4. Otherwise the distinct labels of the training split, sorted (numerically when all are
   integers), are the classes.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from zoo.tasks.data import Example

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ColumnMapping:
    text_column: str = "text"
    label_column: str = "label"
    label_names: list[str] | None = None
    """Class names in class order (the order of the label words); None: see the module docstring."""
    label_map: dict[str, str] | None = None
    """Raw label (as a string) -> class name; rows with other labels are dropped."""

    def check_columns(self, found: Iterable[str], source: str) -> None:
        """Raise naming the missing columns and the ones ``source`` has."""
        found = list(found)
        missing = [c for c in (self.text_column, self.label_column) if c not in found]
        if missing:
            raise ValueError(
                f"{source} has no column {missing[0]!r} (columns found: {found}); "
                f"set task.text_column and task.label_column to the columns holding the text and the label"
            )

    def class_names(self, raw_labels: Iterable, declared: list[str] | None = None) -> tuple[list[str], bool]:
        """``(classes in order, integer_coded)`` for a training split with these raw labels (rules 1-4 above).

        ``integer_coded``: integer labels index the classes (rules 2-3) rather than being
        matched as names (rule 4).
        """
        if self.label_map is not None:
            return list(self.label_names or dict.fromkeys(self.label_map.values())), self.label_names is not None
        if self.label_names is not None:
            return list(self.label_names), True
        if declared is not None:
            return list(declared), True
        distinct = {str(v) for v in raw_labels if not _empty(v)}
        if all(_as_int(v) is not None for v in distinct):
            return sorted(distinct, key=_as_int), False
        return sorted(distinct), False

    def to_examples(self, rows: Iterable[dict], names: list[str], source: str, integer_coded: bool) -> list[Example]:
        """Examples of ``rows`` with labels indexing ``names`` (from :meth:`class_names`); rows with an empty text or label are dropped.

        Raises:
            ValueError: a label that is no class, naming the classes and the options to fix it.
        """
        index = {name: i for i, name in enumerate(names)}
        examples, unmapped, empty = [], {}, 0
        for row in rows:
            text, raw = row.get(self.text_column), row.get(self.label_column)
            if _empty(text) or _empty(raw):
                empty += 1
                continue
            if self.label_map is not None:
                if str(raw) not in self.label_map:
                    unmapped[str(raw)] = unmapped.get(str(raw), 0) + 1
                    continue
                raw = self.label_map[str(raw)]
            label = _label_index(raw, index, integer_coded)
            if label is None:
                raise ValueError(
                    f"{source}: label {raw!r} is not one of the classes {names}"
                    f"{' (or an integer 0..' + str(len(names) - 1) + ')' if integer_coded else ''}; "
                    f"set task.label_names or task.label_map"
                )
            examples.append(Example(str(text), label))
        if unmapped:
            log.info("%s: dropped %d rows whose label is not in task.label_map: %s", source, sum(unmapped.values()), unmapped)
        if empty:
            log.warning("%s: dropped %d rows with an empty text or label", source, empty)
        return examples


def _empty(value) -> bool:
    return value is None or not str(value).strip()


def _as_int(value) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    try:
        return int(str(value).strip())
    except ValueError:
        return None


def _label_index(raw, index: dict[str, int], integer_coded: bool) -> int | None:
    number = _as_int(raw)
    if integer_coded and number is not None and not (isinstance(raw, str) and raw in index):
        return number if 0 <= number < len(index) else None
    return index.get(str(raw))
