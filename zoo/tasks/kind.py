"""A task kind as a plug-in: what a task asks of a model, behind one protocol the runner calls without knowing which.

A kind (a subclass of :class:`TaskKind`, registered with :func:`register_task_kind`) says how a
task of its kind is loaded (:meth:`TaskKind.load`), how its examples become batches, a loss and
per-example scores for one model and tokenizer (:meth:`TaskKind.formulate`, a :class:`Formulation`),
which metrics it scores (:class:`~zoo.tasks.metric.MetricSpec`; the first is the one a search
maximises and a report ranks by), what it adds to a run's record (:meth:`TaskKind.record_fields`) and
which file of per-example answers it writes beside it (:meth:`TaskKind.write_outputs`). ``task.kind``
names it. The built-in kinds are ``classification`` and ``generation`` (zoo.task_kinds); a third-party
package registers more through the entry-point group :data:`ENTRY_POINT_GROUP`, whose each entry point
is a module that calls :func:`register_task_kind` when imported.
"""

from __future__ import annotations

import difflib
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from torch import Tensor, nn

from zoo.method import MODEL_KINDS, MethodSpec
from zoo.runtime.plugins import load_entry_points
from zoo.tasks.metric import MetricSpec, _metrics, check_metric, register_metric

if TYPE_CHECKING:
    from accelerate import Accelerator

    from zoo.tasks.config import TaskConfig

ENTRY_POINT_GROUP = "zoo.task_kinds"
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_kinds: dict[str, TaskKind] = {}


@dataclass
class Evaluation:
    """A model scored on a task's evaluation examples."""

    scores: dict[str, float]
    """Every metric the kind declares, by name."""
    example_scores: dict[str, list[float]]
    """Per metric that is a mean over the examples (``MetricSpec.per_example``), each example's value, in order."""
    outputs: list
    """Each example's answer, in order: a class index, a written response."""
    details: dict = field(default_factory=dict)
    """What else the evaluation measured (a confusion matrix, the response tokens): kept in the record as it is."""

    def cached(self) -> tuple[dict, list]:
        """The ``(content, outputs)`` pair zoo.runner.prediction_cache stores."""
        return {"scores": self.scores, "example_scores": self.example_scores, "details": self.details}, self.outputs

    @classmethod
    def from_cache(cls, content: dict, outputs: list) -> Evaluation:
        return cls(content["scores"], content["example_scores"], outputs, content["details"])


class TaskData(Protocol):
    """The examples a run trains and evaluates on, as a kind's :meth:`TaskKind.load` returns them."""

    train: list
    eval: list
    splits_read: tuple[str, ...]
    """The source's splits the examples were drawn from (a search on validation shows it never read test)."""


class Formulation(Protocol):
    """A task's examples made into batches, a loss and scores for one tokenizer and model (:meth:`TaskKind.formulate`)."""

    head: nn.Module | None
    """A new module that trains beside the method (a classification head), or None."""
    label_token_ids: list[int] | None
    """Token ids a method may bind to (the label words a prompt scores), or None."""

    def train_batches(self, examples: list, batch_size: int, seed: int | None) -> list[dict[str, Tensor]]:
        """Training batches of ``examples``, shuffled with ``seed`` (None: in order)."""

    def trainable(self, model: nn.Module) -> nn.Module:
        """The one module that trains (``model``, or ``model`` with the head): what accelerate prepares and :meth:`loss` takes."""

    def loss(self, module: nn.Module, batch: dict[str, Tensor]) -> Tensor:
        """The training loss of ``module`` (:meth:`trainable`'s) on ``batch``."""

    def evaluate(self, model: nn.Module, examples: list, batch_size: int, accelerator: Accelerator | None = None) -> Evaluation:
        """``model`` scored on ``examples``; under several processes each scores its share and all get the whole."""

    def cache_identity(self, examples: list, batch_size: int) -> tuple[list[dict[str, Tensor]], list]:
        """What the base model's :meth:`evaluate` depends on besides the model: its input batches and any other settings."""

    def timing(self, examples: list, batch_size: int) -> tuple[list[dict[str, Tensor]], Any]:
        """Evaluation batches and a ``(model, batch) -> (B, k)`` scorer whose forward pass zoo.evaluation.latency times."""


class TaskKind(ABC):
    """What a task asks of a model. Subclass, set the class attributes, implement the abstract methods, register an instance."""

    name: str
    """``task.kind``'s value."""
    metrics: tuple[MetricSpec, ...]
    """The metrics its evaluation returns; the first is its objective (what a search maximises, what ranks a report)."""
    model_kinds: tuple[str, ...] = MODEL_KINDS
    """Base models it can run on (``causal_lm``, ``encoder``)."""
    outputs: str
    """The file of per-example answers a run writes beside its ``metrics.json``."""
    builtin_tasks: tuple[str, ...] = ()
    """Names of the built-in tasks of this kind (``task=<name>``): a run that names one under another kind is refused."""

    @property
    def objective(self) -> MetricSpec:
        return self.metrics[0]

    def check_task(self, task: TaskConfig) -> None:  # noqa: B027  (a hook a kind may override)
        """Refuse a task config this kind cannot run, naming the field and what would do; the default accepts any."""

    def check_model(self, formulation: str, model_kind: str, spec: MethodSpec | None) -> None:
        """Refuse a base model (``causal_lm``, ``encoder``) the kind cannot run with this formulation and method."""
        if model_kind not in self.model_kinds:
            raise ValueError(
                f"a {self.name} task runs on a {' or '.join(self.model_kinds)} model, and this model is an {model_kind}"
            )

    def recorded_task(self, config: dict) -> dict:
        """A task's config as its run's record and identity hold it (a kind may leave out fields it never reads)."""
        return dict(config)

    @abstractmethod
    def load(self, task: TaskConfig) -> TaskData:
        """The run's training and evaluation examples."""

    @abstractmethod
    def formulate(
        self, task: TaskConfig, tokenizer, model_kind: str, *, name: str, data: TaskData, demonstrations: bool, model: nn.Module
    ) -> Formulation:
        """``task`` for this tokenizer and model: ``name`` the formulation (``task.formulation``, or a baseline's own);
        ``demonstrations`` whether the prompt shows the task's demonstrations, drawn from ``data.train``."""

    def record_fields(self, data: TaskData, before: Evaluation | None, after: Evaluation) -> dict:
        """Fields of zoo.io.records.RunRecord the kind fills (``label_names``, ``flips``): ``before`` is the base model's
        evaluation with the run's own prompt, where the run has one."""
        return {}

    @abstractmethod
    def write_outputs(self, folder: Path, data: TaskData, before: Evaluation | None, after: Evaluation) -> None:
        """Write :attr:`outputs` into the run's folder: each evaluation example's answer, before and after."""

    def upgrade_v2(self, record: dict) -> dict:
        """A record of schema 2 of this kind as schema 3 holds it (zoo.io.records); a kind that postdates schema 2 has none."""
        raise ValueError(f"task kind {self.name!r} has no records of schema 2")


def register_task_kind(kind: TaskKind) -> TaskKind:
    """Add ``kind`` (and its metrics) to the registry; returns it.

    Raises:
        ValueError: a bad or taken name, no metrics, an unknown model kind.
    """
    if not isinstance(kind, TaskKind):
        raise TypeError(f"register_task_kind takes an instance of a zoo.task_kinds.TaskKind subclass, got {kind!r}")
    name = getattr(kind, "name", None)
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(f"task kind name {name!r} is invalid: use lower-case letters, digits and '_', starting with a letter")
    if name in _kinds:
        raise ValueError(f"task kind {name!r} is already registered ({type(_kinds[name]).__name__}); choose another name")
    if not getattr(kind, "metrics", ()):
        raise ValueError(f"task kind {name!r} declares no metrics; the first one is what a search maximises")
    if not kind.model_kinds or set(kind.model_kinds) - set(MODEL_KINDS):
        raise ValueError(f"task kind {name!r}: model_kinds {kind.model_kinds!r} must be a non-empty subset of {MODEL_KINDS}")
    for metric in kind.metrics:
        check_metric(metric)
    for metric in kind.metrics:
        register_metric(metric)
    _kinds[name] = kind
    return kind


def _load_plugins() -> None:
    """Load the kinds of installed plug-ins (once); a plug-in that fails leaves neither its kind nor its metrics behind."""
    load_entry_points(ENTRY_POINT_GROUP, (_kinds, _metrics))


def unregister_task_kind(name: str) -> None:
    """Remove a task kind (for tests and interactive sessions)."""
    del _kinds[get_task_kind(name).name]


def get_task_kind(name: str) -> TaskKind:
    """The registered kind ``name`` (plug-ins loaded first).

    Raises:
        ValueError: naming the closest registered kind and every one.
    """
    _load_plugins()
    if name in _kinds:
        return _kinds[name]
    close = difflib.get_close_matches(str(name), list(_kinds), n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise ValueError(f"task.kind {name!r} is not a registered task kind.{hint} Registered: {', '.join(sorted(_kinds))}")


def list_task_kinds() -> list[str]:
    _load_plugins()
    return sorted(_kinds)
