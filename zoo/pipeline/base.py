"""Step 2: the base model on its device, and the base model's untrained baselines (zero-shot, in-context)."""
from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from pathlib import Path

from accelerate import Accelerator
from torch import nn

import zoo
from zoo.baselines import untrained_baselines
from zoo.evaluate import evaluate
from zoo.fingerprint import fingerprint
from zoo.forgetting import Forgetting, next_token_loss
from zoo.models.arch import model_kind
from zoo.models.load import load_model
from zoo.models.placement import to_device
from zoo.models.quantization import check_quantized_base
from zoo.pipeline.plan import Plan
from zoo.prediction_cache import cache_key, cached
from zoo.tasks.data import ClassificationData
from zoo.tasks.formulation import Formulation, check_formulation, formulation_for
from zoo.train import make_accelerator

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
    """A model scored on the evaluation split with one formulation."""

    formulation: Formulation
    batches: list[dict]
    metrics: dict
    predictions: list[int]


def load_base(plan: Plan, out_dir: Path) -> Base:
    """The base model and tokenizer, and the accelerator the run trains with (its tracker logs in ``out_dir``)."""
    check_quantized_base(plan.model.quantization, plan.spec)  # before a model that cannot be used loads
    model, tokenizer = load_model(plan.model)
    kind = model_kind(model)
    check_formulation(plan.formulation, kind, plan.spec)
    accelerator = make_accelerator(plan.trainer, project_dir=out_dir)
    model = to_device(model, accelerator.device, plan.model.placed_on_load)  # left where model.device_map/quantization put it
    return Base(model, tokenizer, kind, accelerator, zoo.count_parameters(model)[1])


def measure_general_text(plan: Plan, base: Base) -> Forgetting | None:
    """The base model's next-token loss on general text (zoo.forgetting), for a method run of a causal LM; else None.

    A baseline changes no weight of the language model, and an encoder predicts no next token.
    """
    if plan.spec is None or base.kind != "causal_lm":
        return None

    def measure(batches: list[dict]) -> tuple[float, int]:  # the base model's loss, the same in every run: cached
        key = cache_key(model_id(plan, base), batches, ["next_token_loss"], [])
        metrics, _ = cached(cache_folder(plan, base), key,
                            lambda: (dict(zip(("loss", "tokens"), next_token_loss(base.model, batches))), []))
        return metrics["loss"], metrics["tokens"]

    return Forgetting.before(plan.forgetting, base.model, base.tokenizer, plan.task.cache_dir, measure)


def score_untrained(plan: Plan, data: ClassificationData, base: Base) -> dict[str, Score]:
    """Every untrained baseline the run can score on its base model (predictions cached across runs), by name.

    Those the model cannot run (an encoder has no next-token scores), that need demonstrations the
    task has none of, or whose label words are not single tokens of this tokenizer are skipped; the
    last with a warning, and a run that scores the label words itself then stops on the same error.
    """
    scores = {}
    for spec in untrained_baselines():
        if base.kind not in spec.model_kinds or (spec.demonstrations and not plan.task.demonstrations):
            continue
        try:
            form = formulation_for(plan.task, base.tokenizer, base.kind, name=spec.formulation, train=data.train,
                                   with_demonstrations=spec.demonstrations)
        except ValueError as err:
            log.warning("no %s baseline for this run: %s", spec.name, err)
            continue
        scores[spec.name] = _score(plan, data, base, form)
        log.info("%s accuracy %.3f", spec.name, scores[spec.name].metrics["accuracy"])
    return scores


def _score(plan: Plan, data: ClassificationData, base: Base, form: Formulation) -> Score:
    batches = form.batches(data.eval, plan.trainer.batch_size, base.tokenizer.pad_token_id, seed=None)
    labels = [e.label for e in data.eval]
    key = cache_key(model_id(plan, base), batches, form.label_token_ids, data.label_names)
    metrics, predictions = cached(cache_folder(plan, base), key,
                                  functools.partial(evaluate, base.model, batches, form.scorer, labels, data.label_names, base.accelerator))
    return Score(form, batches, metrics, predictions)


def model_id(plan: Plan, base: Base) -> dict:
    """What a cached answer of the base model depends on besides its inputs (zoo.prediction_cache)."""
    return {"name": plan.model.name, "gguf_file": plan.model.gguf_file, "dtype": plan.model.dtype,
            "weights": fingerprint(base.model), "device": str(base.accelerator.device)}


def cache_folder(plan: Plan, base: Base) -> str | None:
    """The predictions cache, for a single-process run only.

    The processes of a distributed run must agree on scoring together (they gather), which one
    process finding a file another process wrote could break.
    """
    return plan.predictions_cache if base.accelerator.num_processes == 1 else None
