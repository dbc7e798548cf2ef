"""A wrapped model tuned the way a zoo run tunes it, for benchmarks that tune several models in one process.

The runner's own step (zoo.runner.pipeline.steps.train_learner) needs a whole run's plan; the
benchmarks that tune a pair of models (proxy_gain.py) or one model several ways
(structure_analysis.py) call the same pieces directly: the learning rate from
zoo.training.learning_rate, ``fit`` for a gradient-free method (its spec's flag), else ``zoo.training.loop.train``
on the classification loss of the formulation's scores, with the method's own optimiser (zoo.training.optimizer).
"""

from __future__ import annotations

from accelerate import Accelerator

import zoo
from zoo.task_kinds.classification import Classifier, classification_loss
from zoo.tasks.formulation import Formulation
from zoo.training.learning_rate import resolve
from zoo.training.loop import TrainerConfig, TrainResult, fit, train
from zoo.training.optimizer import method_groups, optimizer_of


def tune(
    wrapped: zoo.ZooModel,
    formulation: Formulation,
    batches: list[dict],
    trainer: TrainerConfig,
    accelerator: Accelerator,
    desc: str = "train",
) -> TrainResult:
    """Train (or fit) ``wrapped``'s own parameters on ``batches``, in place; the loop's result."""
    spec = wrapped.spec
    if spec.gradient_free:
        return fit(wrapped, batches, accelerator)
    rate = resolve(trainer.learning_rate, {}, spec, head=False, head_rate=None).method
    return train(
        Classifier(wrapped, formulation),
        method_groups(wrapped, rate),
        batches,
        classification_loss,
        trainer,
        accelerator,
        desc=desc,
        make_optimizer=optimizer_of(spec),
    )
