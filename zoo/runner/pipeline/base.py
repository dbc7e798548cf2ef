"""Step 2: the base model on its device, and the base model's untrained baselines (zero-shot, in-context)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from accelerate import Accelerator
from torch import nn

import zoo
from zoo.evaluation.forgetting import Forgetting, next_token_loss
from zoo.fingerprint import fingerprint
from zoo.models.arch import model_kind
from zoo.models.load import load_model
from zoo.models.placement import to_device
from zoo.models.quantization import check_quantized_base
from zoo.runner.baselines import BaselineSpec, untrained_baselines
from zoo.runner.plan import Plan
from zoo.runner.prediction_cache import cache_key, cached
from zoo.task_kinds import Formulation, TaskData
from zoo.tasks.kind import Evaluation
from zoo.training.loop import make_accelerator

log = logging.getLogger("zoo")


@dataclass
class Base:
    model: nn.Module
    tokenizer: object
    kind: str
    """``causal_lm`` or ``encoder`` (zoo.models.arch.model_kind)."""
    accelerator: Accelerator
    params: int
    """The base model's parameter count, before any method adds to it."""


@dataclass
class Score:
    """A model scored on the evaluation examples with one formulation."""

    formulation: Formulation
    evaluation: Evaluation


def load_base(plan: Plan, out_dir: Path) -> Base:
    """The base model and tokenizer, and the accelerator the run trains with (its tracker logs in ``out_dir``)."""
    check_quantized_base(plan.model.quantization, plan.spec)  # before a model that cannot be used loads
    model, tokenizer = load_model(plan.model)
    kind = model_kind(model)
    plan.kind.check_model(plan.formulation, kind, plan.spec)
    accelerator = make_accelerator(plan.trainer, project_dir=out_dir)
    model = to_device(model, accelerator.device, plan.model.placed_on_load)  # left where model.device_map/quantization put it
    return Base(model, tokenizer, kind, accelerator, zoo.count_parameters(model)[1])


def measure_general_text(plan: Plan, base: Base) -> Forgetting | None:
    """The base model's next-token loss on general text (zoo.evaluation.forgetting), for a method run of a causal LM; else None.

    A baseline changes no weight of the language model, and an encoder predicts no next token.
    """
    if plan.spec is None or base.kind != "causal_lm":
        return None

    def measure(batches: list[dict]) -> tuple[float, int]:  # the base model's loss, the same in every run: cached
        key = cache_key(model_id(plan, base), batches, ["next_token_loss"], [])
        metrics, _ = cached(
            cache_folder(plan, base), key, lambda: (dict(zip(("loss", "tokens"), next_token_loss(base.model, batches))), [])
        )
        return metrics["loss"], metrics["tokens"]

    return Forgetting.before(plan.forgetting, base.model, base.tokenizer, plan.task.cache_dir, measure)


def scores_untrained(spec: BaselineSpec, plan: Plan, base: Base) -> bool:
    """Whether the run scores untrained baseline ``spec`` on its base model: one the model, the task's kind and its
    demonstrations allow."""
    kinds_ok = spec.task_kinds is None or plan.kind.name in spec.task_kinds
    return kinds_ok and base.kind in spec.model_kinds and (plan.task.demonstrations > 0 or not spec.demonstrations)


def score_untrained(plan: Plan, data: TaskData, base: Base) -> dict[str, Score]:
    """Every untrained baseline the run can score on its base model (answers cached across runs), by name.

    Those the model, the task's kind or its demonstrations rule out are skipped; so, with a
    warning, is one the kind cannot formulate (label words that are not single tokens of this
    tokenizer), and a run that formulates the task the same way then stops on the same error.
    """
    scores = {}
    for spec in untrained_baselines():
        if not scores_untrained(spec, plan, base):
            continue
        try:
            form = plan.kind.formulate(
                plan.task,
                base.tokenizer,
                base.kind,
                name=spec.formulation,
                data=data,
                demonstrations=spec.demonstrations,
                model=base.model,
            )
        except ValueError as err:
            log.warning("no %s baseline for this run: %s", spec.name, err)
            continue
        scores[spec.name] = Score(form, _evaluate_base(plan, data, base, form))
        log.info(
            "%s %s %.3f", spec.name, plan.kind.objective.label, scores[spec.name].evaluation.scores[plan.kind.objective.name]
        )
    return scores


def _evaluate_base(plan: Plan, data: TaskData, base: Base, form: Formulation) -> Evaluation:
    """The untrained base model's evaluation with ``form``, read from the predictions cache where another run wrote it."""
    size = plan.trainer.batch_size
    batches, settings = form.cache_identity(data.eval, size)
    key = cache_key(model_id(plan, base), batches, [plan.kind.name, *settings], [])
    return Evaluation.from_cache(
        *cached(cache_folder(plan, base), key, lambda: form.evaluate(base.model, data.eval, size, base.accelerator).cached())
    )


def model_id(plan: Plan, base: Base) -> dict:
    """What a cached answer of the base model depends on besides its inputs (zoo.runner.prediction_cache)."""
    return {
        "name": plan.model.name,
        "gguf_file": plan.model.gguf_file,
        "dtype": plan.model.dtype,
        "weights": fingerprint(base.model),
        "device": str(base.accelerator.device),
    }


def cache_folder(plan: Plan, base: Base) -> str | None:
    """The predictions cache, for a single-process run only.

    The processes of a distributed run must agree on scoring together (they gather), which one
    process finding a file another process wrote could break.
    """
    return plan.predictions_cache if base.accelerator.num_processes == 1 else None
