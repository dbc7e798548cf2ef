"""A run's record: the typed ``metrics.json`` that ``zoo`` writes and ``zoo-report``, ``resume`` and the benchmarks read.

zoo writes metrics.json atomically and last, yet a folder can still hold one that a reader
cannot use: a truncated copy, a hand edit, a record of another zoo (another
:data:`SCHEMA_VERSION`), another tool's file. :meth:`RunRecord.read` checks the version,
every field and its type, and raises :class:`UnusableRecord` naming the file and what is
wrong, so that a reader over a sweep skips it with a warning instead of failing on the first
KeyError. A field added with a default within a version (``processes``) takes its default
when an older record of that version lacks it.

Scores are held by what they mean: ``scores`` maps each metric the task's kind declares
(zoo.task_kinds: accuracy and macro-F1 for classification; ROUGE-L, exact match and the
response log-likelihood per token for generation) to its value, ``example_scores`` holds each
evaluation example's value of the metrics that are means over examples, and
``objective_metric`` names the one a search maximises. A record of schema 2 (which held a
generation run's exact match in ``accuracy`` and its ROUGE-L in ``macro_f1``) is read through
its kind's :meth:`~zoo.task_kinds.TaskKind.upgrade_v2`.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zoo.runtime.written import write_json_file
from zoo.tasks.config import TaskConfig
from zoo.tasks.kind import get_task_kind

SCHEMA_VERSION = 3
"""Version 1 was the untyped dict that earlier zoo versions wrote (no ``schema_version`` key); version 2 held every score in
``accuracy`` and ``macro_f1``, whatever the task's kind (read through an upgrade)."""
UPGRADABLE = (2,)


class UnusableRecord(ValueError):
    """A metrics.json that is not a run's record this zoo can read."""


@dataclass
class RunRecord:
    method: str
    """The method's registered name, or the baseline's."""
    method_config: dict | None
    baseline: str | None
    formulation: str
    model: str
    model_config: dict
    task: str
    task_config: dict
    task_kind: str
    """The task's kind (``task.kind``, zoo.task_kinds): which metrics ``scores`` holds."""
    n_train: int
    n_eval: int
    seed: int
    learning_rate: float | None
    """The method's parameters' rate (zoo.training.learning_rate); None: a baseline, or a ``gradient_free`` method."""
    head_learning_rate: float | None
    trainable_params: int
    total_params: int
    base_params: int
    trainable_percent: float
    train_steps: int
    train_seconds: float
    peak_memory_bytes: int | None
    final_loss: float | None
    diverged: bool
    divergence: str | None
    max_abs_weight: float | None
    objective_metric: str
    """The metric of ``scores`` a search maximises and a report ranks by: the kind's first."""
    scores: dict
    """Metric name -> its value on the evaluation examples, for every metric the kind declares."""
    example_scores: dict
    """Metric name -> its value on each evaluation example, in ``eval_fingerprint``'s order, for the metrics that are means
    over the examples: what confidence intervals resample and paired tests pair (zoo.report.bootstrap)."""
    eval_details: dict
    """What else the evaluation measured: per-class figures and the confusion matrix (classification), the response tokens
    counted (generation)."""
    baseline_scores: dict
    """Untrained baselines scored on the base model (zero_shot, in_context): name -> {metric: value}, as ``scores``."""
    latency: dict | None
    adapter_bytes: int | None
    head_bytes: int | None
    history: list
    zoo_version: str
    device: str
    device_name: str | None
    run_config: dict
    """The config the run ran, without what cannot change its results (zoo.runner.resume.run_identity)."""
    processes: int = 1
    """How many processes trained it (accelerate launch); ``peak_memory_bytes`` is the main process's."""
    train_tokens: int | None = None
    """Input tokens (not padding) of the batches trained or fitted on; None: nothing trained (or a record from before zoo counted)."""
    train_examples: int | None = None
    """Examples trained or fitted on, once per time seen."""
    forgetting: dict | None = None
    """The next-token loss on held-out general text before and after training (zoo.evaluation.forgetting): text, tokens, loss_before,
    loss_after, delta; None: not measured (a baseline, an encoder, forgetting.text=none)."""
    eval_fingerprint: str | None = None
    """A digest of the evaluation examples, texts and labels in order (zoo.tasks.data.examples_fingerprint): two runs
    with the same one were scored on the same examples, so their ``example_scores`` pair up."""
    splits_read: list[str] = field(default_factory=list)
    """The task's splits the run drew examples from (train, and validation or test): a search on validation never reads test."""
    label_names: list = field(default_factory=list)
    """The task's classes in class order, where its kind has classes."""
    learning_rate_search: dict | None = None
    """``trainer.learning_rate=auto`` (zoo.runner.rate_search): the search's split, schedule, every trial (rung, steps, scale,
    learning rate, validation score) and the chosen rate; None: the rate was given or the method's default."""
    flips: dict | None = None
    """The answers that changed against the base model's with the run's own prompt (zoo.evaluation.flips), where the kind
    counts them; None: not counted (another kind, a run with no untrained score)."""
    optimizer: dict | None = None
    """The optimiser the run trained with (zoo.training.optimizer): ``name`` (its class), ``groups`` (per parameter group:
    ``tensors``, ``parameters``, ``lr``, ``weight_decay`` and the method's own settings, as GaLore's ``rank``),
    ``state_bytes`` (its state after the first step: zoo.training.optimizer_state) and, for an optimiser other than
    AdamW, ``adamw_state_bytes`` (AdamW's over the same parameters, stepped once on the same gradients, in the same
    run); None: nothing was stepped (an untrained baseline, a gradient-free fit, a record from before zoo kept it)."""
    schema_version: int = field(default=SCHEMA_VERSION)

    @property
    def objective(self) -> float:
        """The score a search maximises, which ``zoo`` returns to a Hydra sweeper: ``scores[objective_metric]``."""
        return self.scores[self.objective_metric]

    def write(self, path: Path) -> None:
        """Write the record to ``path`` atomically; it replaces only a file zoo wrote (zoo.runtime.written).

        Raises:
            FileExistsError: a file zoo did not write is at ``path``.
        """
        write_json_file(path, dataclasses.asdict(self), "a run's record", ours=is_record)

    @classmethod
    def read(cls, path: Path) -> RunRecord:
        """The record in ``path``.

        Raises:
            UnusableRecord: naming the file and what is wrong with it.
        """
        try:
            data = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise UnusableRecord(f"{path} is unreadable ({err})") from err
        if not isinstance(data, dict):
            raise UnusableRecord(f"{path} holds a JSON {type(data).__name__}, not a run's record (an object)")
        version = data.get("schema_version", 1)
        if version in UPGRADABLE:
            data = _upgrade(path, data)
        elif version != SCHEMA_VERSION:
            raise UnusableRecord(
                f"{path} is a record of schema version {version!r}, and this zoo reads versions "
                f"{', '.join(map(str, (*UPGRADABLE, SCHEMA_VERSION)))} (run it again, with resume=true in a sweep)"
            )
        hints = typing.get_type_hints(cls)
        names = [f.name for f in dataclasses.fields(cls)]
        missing = [
            f.name
            for f in dataclasses.fields(cls)
            if f.name not in data and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        ]
        if missing:
            raise UnusableRecord(f"{path} lacks {', '.join(missing)}: not a finished run's record")
        wrong = [f"{name} ({data[name]!r})" for name in names if name in data and not _matches(data[name], hints[name])]
        if wrong:
            raise UnusableRecord(f"{path} has values of the wrong type for {', '.join(wrong)}")
        return cls(**{name: data[name] for name in names if name in data})


def is_record(path: Path) -> bool:
    """Whether ``path`` holds a run's record this zoo reads (one written before zoo kept manifests is recognised by it)."""
    try:
        RunRecord.read(path)
    except UnusableRecord:
        return False
    return True


def _upgrade(path: Path, data: dict) -> dict:
    """A schema-2 record as schema 3 holds it, by its task kind (a classification record of schema 2 names none: the default)."""
    kind = data.get("task_kind") or TaskConfig.kind
    try:
        return {**get_task_kind(kind).upgrade_v2(dict(data, task_kind=kind)), "schema_version": SCHEMA_VERSION}
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        raise UnusableRecord(
            f"{path} is a record of schema version 2 that cannot be read as version {SCHEMA_VERSION} ({err!r})"
        ) from err


def _matches(value: Any, hint: Any) -> bool:
    """Whether a JSON value fits a field's type: an int is a float too; a bool is no int."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        return any(_matches(value, arg) for arg in typing.get_args(hint))
    if hint is type(None):
        return value is None
    kind = typing.get_origin(hint) or hint
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, kind)
