"""The ``classification`` task kind: a class for each text, scored by the label words after a prompt or by a new head.

Data comes from the built-in classification tasks, local files or the hub (zoo.tasks.config);
the two formulations are zoo.tasks.formulation's. Training minimises the cross-entropy of the
class scores; evaluation predicts the highest-scoring class (zoo.evaluation.classification). Its metrics are
accuracy (each example right or not: the objective) and macro-F1; a record also holds the class
names, the confusion matrix and the answers that flipped against the base model with the run's
own prompt (zoo.evaluation.flips), whose examples go to ``flips.jsonl``.
"""

from __future__ import annotations

from pathlib import Path

import torch.nn.functional as F
from torch import Tensor, nn

from zoo.evaluation.classification import evaluate
from zoo.evaluation.flips import flips, write_flipped_examples
from zoo.method import MethodSpec
from zoo.tasks.config import TASKS, TaskConfig, build_task
from zoo.tasks.data import ClassificationData, Example
from zoo.tasks.formulation import Formulation as Scoring
from zoo.tasks.formulation import check_formulation, formulation_for
from zoo.tasks.kind import Evaluation, TaskKind, register_task_kind
from zoo.tasks.metric import MetricSpec

ACCURACY = MetricSpec("accuracy", "accuracy", per_example=True, binary=True)
MACRO_F1 = MetricSpec("macro_f1", "macro-F1")
_SCHEMA_2_ONLY = ("kind", "max_new_tokens")
"""Task fields a classification run's record and identity leave out: they read as before other kinds existed."""


class Classifier(nn.Module):
    """A model and its formulation's scorer as one module, ``forward(batch) -> (B, k)`` class scores.

    Everything that trains (the method's parameters, a classification head) is inside it, so
    accelerate prepares, and under several processes synchronises, one module.
    """

    def __init__(self, model: nn.Module, formulation: Scoring):
        super().__init__()
        self.model = model
        self.scorer = formulation.scorer  # a head is a module: registered here, so it trains and moves with the model

    def forward(self, batch: dict):
        return self.scorer(self.model, batch)


def classification_loss(classifier: nn.Module, batch: dict) -> Tensor:
    return F.cross_entropy(classifier(batch).float(), batch["labels"])


class ClassificationFormulation:
    """A classification task's :class:`~zoo.tasks.formulation.Formulation` for one tokenizer, as the runner uses it."""

    def __init__(self, scoring: Scoring, pad_id: int, label_names: list[str]):
        self.scoring, self.pad_id, self.label_names = scoring, pad_id, label_names
        self.head, self.label_token_ids = scoring.head, scoring.label_token_ids
        self._evaluated: tuple[list[Example], int, list[dict]] | None = None
        """The examples last evaluated, the batch size and their batches."""

    def train_batches(self, examples: list[Example], batch_size: int, seed: int | None) -> list[dict]:
        return self.scoring.batches(examples, batch_size, self.pad_id, seed)

    def _batches(self, examples: list[Example], batch_size: int) -> list[dict]:
        """The evaluation batches of ``examples``, built once (a run evaluates the same examples at every ``eval_every``)."""
        if self._evaluated is None or self._evaluated[0] is not examples or self._evaluated[1] != batch_size:
            self._evaluated = (examples, batch_size, self.scoring.batches(examples, batch_size, self.pad_id, seed=None))
        return self._evaluated[2]

    def trainable(self, model: nn.Module) -> nn.Module:
        return Classifier(model, self.scoring)

    def loss(self, module: nn.Module, batch: dict) -> Tensor:
        return classification_loss(module, batch)

    def evaluate(self, model: nn.Module, examples: list[Example], batch_size: int, accelerator=None) -> Evaluation:
        labels = [e.label for e in examples]
        metrics, predicted = evaluate(
            model, self._batches(examples, batch_size), self.scoring.scorer, labels, self.label_names, accelerator
        )
        return Evaluation(
            {"accuracy": metrics["accuracy"], "macro_f1": metrics["macro_f1"]},
            {"accuracy": [int(p == t) for p, t in zip(predicted, labels, strict=True)]},
            predicted,
            {"per_class": metrics["per_class"], "confusion": metrics["confusion"]},
        )

    def cache_identity(self, examples: list[Example], batch_size: int) -> tuple[list[dict], list]:
        return self._batches(examples, batch_size), [self.label_token_ids, self.label_names]

    def timing(self, examples: list[Example], batch_size: int) -> tuple[list[dict], object]:
        return self._batches(examples, batch_size), self.scoring.scorer


class ClassificationKind(TaskKind):
    name = "classification"
    metrics = (ACCURACY, MACRO_F1)
    builtin_tasks = tuple(TASKS)
    outputs = "flips.jsonl"

    def recorded_task(self, config: dict) -> dict:
        return {k: v for k, v in config.items() if k not in _SCHEMA_2_ONLY}

    def check_model(self, formulation: str, model_kind: str, spec: MethodSpec | None) -> None:
        check_formulation(formulation, model_kind, spec)

    def load(self, task: TaskConfig) -> ClassificationData:
        return build_task(task)

    def formulate(
        self,
        task: TaskConfig,
        tokenizer,
        model_kind: str,
        *,
        name: str,
        data: ClassificationData,
        demonstrations: bool,
        model: nn.Module,
    ) -> ClassificationFormulation:
        scoring = formulation_for(
            task,
            tokenizer,
            model_kind,
            name=name,
            train=data.train,
            with_demonstrations=demonstrations,
            model=model,
            label_names=data.label_names,
        )
        return ClassificationFormulation(scoring, tokenizer.pad_token_id, data.label_names)

    def record_fields(self, data: ClassificationData, before: Evaluation | None, after: Evaluation) -> dict:
        labels = [e.label for e in data.eval]
        changed = flips(before.outputs, after.outputs, labels, data.label_names) if before is not None else None
        return {"label_names": data.label_names, "flips": changed}

    def write_outputs(self, folder: Path, data: ClassificationData, before: Evaluation | None, after: Evaluation) -> None:
        if before is not None:
            write_flipped_examples(folder / self.outputs, data.eval, before.outputs, after.outputs, data.label_names)

    def upgrade_v2(self, record: dict) -> dict:
        evaluation = record.pop("eval")
        correct = record.pop("eval_correct", None)
        return {
            **record,
            "objective_metric": ACCURACY.name,
            "scores": {"accuracy": record.pop("accuracy"), "macro_f1": record.pop("macro_f1")},
            "example_scores": {"accuracy": [int(c) for c in correct]} if correct is not None else {},
            "eval_details": {k: v for k, v in evaluation.items() if k not in ("accuracy", "macro_f1")},
        }


CLASSIFICATION = register_task_kind(ClassificationKind())
