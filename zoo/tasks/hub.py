"""A Hugging Face dataset by name as a task (the path users take when online).

Needs the optional ``datasets`` package (``pip install 'zoo-peft[datasets]'``), imported
only here and only when a task names a dataset. Columns are mapped by
:class:`zoo.tasks.columns.ColumnMapping`; a ``ClassLabel`` label column supplies the class
names unless ``label_names`` or ``label_map`` are given.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from zoo.tasks.columns import ColumnMapping
from zoo.tasks.data import Splits


def load_hub(name: str, config: str | None, mapping: ColumnMapping, eval_split: str) -> Splits:
    """The train and ``eval_split`` splits of ``datasets.load_dataset(name, config)``, mapped to examples."""
    try:
        import datasets
    except ImportError as err:
        raise ImportError(
            f"task.dataset={name!r} needs the Hugging Face `datasets` package: pip install 'zoo-peft[datasets]' "
            f"(or use a built-in task, or a local CSV/TSV/JSONL file through task.path)"
        ) from err
    return from_dataset_dict(
        datasets.load_dataset(name, config), mapping, name if config is None else f"{name}/{config}", eval_split
    )


def from_dataset_dict(splits: Mapping[str, Any], mapping: ColumnMapping, source: str, eval_split: str) -> Splits:
    """Map the train and ``eval_split`` splits of a ``DatasetDict`` (or any mapping of split
    name -> dataset with ``column_names``, ``features`` and column access ``ds[column]``).

    Other splits are left alone: a benchmark's unlabelled test split (GLUE's labels are -1)
    must not stop a run that evaluates on validation.
    """
    for needed, option in (("train", ""), (eval_split, " (set task.eval_split)")):
        if needed not in splits:
            raise ValueError(f"dataset {source!r} has no {needed!r} split; it has {sorted(splits)}{option}")
    splits = {name: splits[name] for name in dict.fromkeys(["train", eval_split])}
    for split, ds in splits.items():
        mapping.check_columns(ds.column_names, f"dataset {source!r} [{split}]")
    train = splits["train"]
    declared = getattr(train.features.get(mapping.label_column), "names", None)  # a ClassLabel's names
    names, integer_coded = mapping.class_names(train[mapping.label_column], declared)
    out = {}
    for split, ds in splits.items():
        rows = (
            {mapping.text_column: t, mapping.label_column: y} for t, y in zip(ds[mapping.text_column], ds[mapping.label_column])
        )
        out[split] = mapping.to_examples(rows, names, f"dataset {source!r} [{split}]", integer_coded)
    return Splits(out, f"dataset {source!r}", names)
