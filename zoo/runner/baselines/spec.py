"""What a baseline is, and the registry of baselines: the comparison's rows that no method produces.

A baseline is a strategy for a run, registered like a method (``zoo.register``) but with
its own flags: which formulation it scores with, whether it trains a head on the frozen
base model, whether its prompt shows the task's demonstrations, whether reports show its score
beside every row. The runner and the report read the flags and never a baseline's name, so a
new baseline is one file in this package, or a plug-in's module registered through the
entry-point group :data:`ENTRY_POINT_GROUP` that calls :func:`register_baseline` when imported,
and is at once a ``baseline=<name>`` choice, a row of ``zoo-report``, and part of
``zoo -m 'baseline=glob(*)'``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from zoo.method import MODEL_KINDS
from zoo.registry import kind_names
from zoo.runtime.plugins import load_entry_points
from zoo.tasks.config import FORMULATIONS
from zoo.tasks.formulation import trains_head

ENTRY_POINT_GROUP = "zoo.baselines"
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_baselines: dict[str, BaselineSpec] = {}


@dataclass
class BaselineConfig:
    """The ``baseline`` config group's node: which registered baseline the run is (``zoo baseline=zero_shot``)."""

    name: str


@dataclass(frozen=True)
class BaselineSpec:
    """A registered baseline and its capability flags."""

    name: str
    formulation: str
    """``prompt`` (label words after the template) or ``head`` (a classification head on the final hidden state)."""
    trains_head: bool = False
    """True: a head trains on the frozen base model (a linear probe); False: nothing trains."""
    demonstrations: bool = False
    """The prompt shows ``task.demonstrations`` examples per class (which must then be at least 1)."""
    model_kinds: tuple[str, ...] = MODEL_KINDS
    task_kinds: tuple[str, ...] | None = None
    """The task kinds it can run on (None: every kind): a linear probe's head picks a class and cannot write, so it declares
    ``("classification",)``."""
    report_column: bool = False
    """Reports show every row's base-model score under this baseline beside the row's own (the level to beat): the untrained
    baseline with the bare template declares it (zero-shot)."""
    summary: str = ""

    @property
    def untrained(self) -> bool:
        """Nothing trains: every run that can (a causal LM and label words) also scores it on its base model."""
        return not self.trains_head

    def check(self, demonstrations: int) -> None:
        """Refuse a task this baseline cannot run on, saying what would."""
        if self.demonstrations and demonstrations < 1:
            raise ValueError(
                f"baseline={self.name} needs demonstrations in the context: set task.demonstrations=1 (examples per class)"
            )


def register_baseline(spec: BaselineSpec) -> BaselineSpec:
    """Add ``spec`` to the registry; returns it.

    Raises:
        ValueError: a bad or taken name, an unknown formulation or model kind, an untrained head baseline.
    """
    if not _NAME.match(spec.name):
        raise ValueError(
            f"baseline name {spec.name!r} is invalid: use lower-case letters, digits and '_', starting with a letter"
        )
    if spec.name in _baselines:
        raise ValueError(f"baseline {spec.name!r} is already registered")
    shown = [other.name for other in _baselines.values() if other.report_column]
    if spec.report_column and shown:
        raise ValueError(f"baseline {spec.name!r} declares report_column, and {shown[0]!r} already does; reports show one")
    if spec.formulation not in FORMULATIONS:
        raise ValueError(f"baseline {spec.name!r}: formulation {spec.formulation!r} is not one of {', '.join(FORMULATIONS)}")
    if trains_head(spec.formulation) != spec.trains_head:
        raise ValueError(
            f"baseline {spec.name!r}: trains_head must say whether formulation {spec.formulation!r} trains a head "
            f"(an untrained head is zero and predicts nothing)"
        )
    if not spec.model_kinds or set(spec.model_kinds) - set(MODEL_KINDS):
        raise ValueError(f"baseline {spec.name!r}: model_kinds {spec.model_kinds!r} must be a non-empty subset of {MODEL_KINDS}")
    if spec.task_kinds is not None:  # held as a tuple, as a method's: a name alone would be tested by substring
        spec = replace(spec, task_kinds=kind_names(spec.task_kinds, f"baseline {spec.name!r}"))
    _baselines[spec.name] = spec
    return spec


def get_baseline(name: str) -> BaselineSpec:
    load_entry_points(ENTRY_POINT_GROUP, (_baselines,))
    if name not in _baselines:
        raise ValueError(f"baseline {name!r} is not one of {tuple(_baselines)} (or null: run the method)")
    return _baselines[name]


def list_baselines() -> list[str]:
    load_entry_points(ENTRY_POINT_GROUP, (_baselines,))
    return list(_baselines)


def untrained_baselines() -> list[BaselineSpec]:
    """The baselines every run scores on its base model where it can, those without demonstrations first (zero-shot, in-context)."""
    load_entry_points(ENTRY_POINT_GROUP, (_baselines,))
    return sorted((spec for spec in _baselines.values() if spec.untrained), key=lambda spec: spec.demonstrations)


def report_column() -> BaselineSpec | None:
    """The baseline whose score reports show beside every row (:attr:`BaselineSpec.report_column`), if one declares it."""
    load_entry_points(ENTRY_POINT_GROUP, (_baselines,))
    return next((spec for spec in _baselines.values() if spec.report_column), None)
