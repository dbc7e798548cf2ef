"""A run's record: the typed ``metrics.json`` that ``zoo`` writes and ``zoo-report``, ``resume`` and the benchmarks read.

zoo writes metrics.json atomically and last, yet a folder can still hold one that a reader
cannot use: a truncated copy, a hand edit, a record of an older zoo (another
:data:`SCHEMA_VERSION`), another tool's file. :meth:`RunRecord.read` checks the version,
every field and its type, and raises :class:`UnusableRecord` naming the file and what is
wrong, so that a reader over a sweep skips it with a warning instead of failing on the first
KeyError. A field added with a default within a version (``processes``, ``eval_correct``) takes its default
when an older record of that version lacks it.

A run of a generation task (``task_kind: generation``) holds its scores in ``generation``
(exact match, ROUGE-L F, response log-likelihood per token; zoo.tasks.generation_metrics),
and, so that readers ranking runs by ``accuracy`` and ``macro_f1`` rank it too, its exact
match in ``accuracy`` and its ROUGE-L F in ``macro_f1``: ``task_kind`` says which they are.
Per example it holds its exact match in ``eval_correct`` and its ROUGE-L F in ``eval_rouge_l``.
A classification run's record leaves ``task_kind``, ``generation`` and ``eval_rouge_l`` out (:data:`GENERATION_FIELDS`):
it reads as it did before generation tasks existed.
"""
from __future__ import annotations

import dataclasses
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zoo.atomic import write_json

SCHEMA_VERSION = 2
"""Version 1 was the untyped dict that earlier zoo versions wrote (no ``schema_version`` key)."""
GENERATION_FIELDS = ("task_kind", "generation", "eval_rouge_l")
"""Fields a classification run's metrics.json leaves out (their defaults)."""


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
    label_names: list
    n_train: int
    n_eval: int
    seed: int
    learning_rate: float | None
    """The method's parameters' rate (zoo.learning_rate); None: a baseline."""
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
    eval: dict
    accuracy: float
    """Classification: accuracy. Generation (``task_kind``): exact match after normalisation."""
    macro_f1: float
    """Classification: macro-F1. Generation: mean ROUGE-L F."""
    baseline_scores: dict
    """Untrained baselines scored on the base model: name -> {accuracy, macro_f1} (zero_shot, in_context);
    a generation run's also hold its ``generation`` metrics' names."""
    flips: dict | None
    latency: dict | None
    adapter_bytes: int | None
    head_bytes: int | None
    history: list
    zoo_version: str
    device: str
    device_name: str | None
    run_config: dict
    """The config the run ran, without what cannot change its results (zoo.resume.run_identity)."""
    processes: int = 1
    """How many processes trained it (accelerate launch); ``peak_memory_bytes`` is the main process's."""
    train_tokens: int | None = None
    """Input tokens (not padding) of the batches trained or fitted on; None: nothing trained (or a record from before zoo counted)."""
    train_examples: int | None = None
    """Examples trained or fitted on, once per time seen."""
    forgetting: dict | None = None
    """The next-token loss on held-out general text before and after training (zoo.forgetting): text, tokens, loss_before,
    loss_after, delta; None: not measured (a baseline, an encoder, forgetting.text=none)."""
    eval_correct: list[bool] | None = None
    """Per evaluation example, in ``eval_fingerprint``'s order, whether the run answered it right (on a generation task: its
    exact match): what confidence intervals resample and paired tests pair (zoo.analysis.bootstrap). None: a record of an
    older zoo."""
    eval_fingerprint: str | None = None
    """A digest of the evaluation examples, texts and labels in order (zoo.tasks.data.examples_fingerprint): two runs
    with the same one were scored on the same examples, so their ``eval_correct`` pair up."""
    splits_read: list[str] = field(default_factory=list)
    """The task's splits the run drew examples from (train, and validation or test): a search on validation never reads test."""
    task_kind: str = "classification"
    """classification, or generation (``task.kind``): what ``accuracy`` and ``macro_f1`` mean."""
    generation: dict | None = None
    """A generation run's scores: exact_match, rouge_l, log_likelihood_per_token, response_tokens, n; None: classification."""
    eval_rouge_l: list[float] | None = None
    """A generation run's ROUGE-L F per evaluation example, in ``eval_fingerprint``'s order: what its ROUGE-L interval and
    its paired test against LoRA resample (zoo.analysis.uncertainty). None: classification, or an older record."""
    schema_version: int = field(default=SCHEMA_VERSION)

    def score(self, baseline: str) -> dict | None:
        """The base model's ``{accuracy, macro_f1}`` under an untrained baseline, or None where the run did not score it."""
        return self.baseline_scores.get(baseline)

    @property
    def is_generation(self) -> bool:
        return self.task_kind == "generation"

    @property
    def objective(self) -> float:
        """The score a search maximises, which ``zoo`` returns to a Hydra sweeper: accuracy on classification, ROUGE-L F on
        generation (the exact match of a written headline is 0 for nearly every run: it would tie every trial)."""
        return self.macro_f1 if self.is_generation else self.accuracy

    def write(self, path: Path) -> None:
        data = dataclasses.asdict(self)
        if not self.is_generation:
            for name in GENERATION_FIELDS:
                del data[name]
        write_json(path, data)

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
        if version != SCHEMA_VERSION:
            raise UnusableRecord(f"{path} is a record of schema version {version!r}, and this zoo reads version {SCHEMA_VERSION} "
                                 f"(run it again, with resume=true in a sweep)")
        hints = typing.get_type_hints(cls)
        names = [f.name for f in dataclasses.fields(cls)]
        missing = [f.name for f in dataclasses.fields(cls)
                   if f.name not in data and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
        if missing:
            raise UnusableRecord(f"{path} lacks {', '.join(missing)}: not a finished run's record")
        wrong = [f"{name} ({data[name]!r})" for name in names if name in data and not _matches(data[name], hints[name])]
        if wrong:
            raise UnusableRecord(f"{path} has values of the wrong type for {', '.join(wrong)}")
        return cls(**{name: data[name] for name in names if name in data})


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
