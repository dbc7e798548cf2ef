"""Metrics as declared specs: what a task kind's records score, and how a report resamples, ranks and prints each.

A task kind (zoo.tasks.kind) declares the metrics its evaluation returns. A record keeps
each metric's value under its name (``RunRecord.scores``) and, for a metric that is a mean over
the evaluation examples (``per_example``), the value of every example (``RunRecord.example_scores``):
what confidence intervals resample and paired tests pair (zoo.report.uncertainty). Reports print a metric
under its ``label`` with its ``format`` and sort by its ``direction``, and pick a row's paired test
by whether each example's value is ``binary``; nothing reads a metric by name except the kind that declared it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_metrics: dict[str, MetricSpec] = {}


@dataclass(frozen=True)
class MetricSpec:
    """A metric a task kind's evaluation returns."""

    name: str
    """Its key in a record's ``scores`` (lower case, ``[a-z][a-z0-9_]*``)."""
    label: str
    """How tables and plots name it (``ROUGE-L``)."""
    higher_is_better: bool = True
    """Its direction: reports rank rows by it, best first."""
    per_example: bool = False
    """The score is the mean of a value per evaluation example, which the record keeps: the report gives it a 95% bootstrap
    interval over runs and examples and tests rows against the reference row on the same examples. False: an aggregate
    (macro-F1), shown as mean ± std over runs."""
    binary: bool = False
    """Each example's value is 0 or 1 (right or wrong: accuracy, exact match): a row with one run is tested against the
    reference row's by McNemar's exact test, and the report refuses values other than 0 and 1. False: a score per example
    (ROUGE-L F), tested by a paired permutation test."""
    format: str = ".3f"
    """Its number format (``format(value, spec.format)``)."""

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ValueError(
                f"metric name {self.name!r} is invalid: use lower-case letters, digits and '_', starting with a letter"
            )
        if self.binary and not self.per_example:
            raise ValueError(f"metric {self.name!r} is binary but not per_example: only a value per example can be 0 or 1")

    def cell(self, value: float | None) -> str:
        """``value`` as a table prints it; ``-`` where there is none."""
        return "-" if value is None else format(value, self.format)


def check_metric(spec: MetricSpec) -> None:
    """Refuse ``spec`` where another spec holds its name (the same spec twice is one registration)."""
    if _metrics.get(spec.name, spec) != spec:
        raise ValueError(f"metric {spec.name!r} is already registered as {_metrics[spec.name]}; choose another name")


def register_metric(spec: MetricSpec) -> MetricSpec:
    """Add ``spec`` to the metrics reports know.

    Raises:
        ValueError: another spec under a taken name.
    """
    check_metric(spec)
    _metrics[spec.name] = spec
    return spec


def get_metric(name: str) -> MetricSpec:
    """The registered spec of ``name``; a metric no installed kind declares (a record of a plugin not installed here)
    reads as an aggregate under its own name."""
    return _metrics.get(name) or MetricSpec(name, name)
