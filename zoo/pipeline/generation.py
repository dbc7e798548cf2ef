"""A run of a generation task (``task.kind: generation``): the classification pipeline's steps, with responses for classes.

load the pairs -> load the base model -> score the untrained baselines (the base model writing
after the bare prompt, zero-shot; after demonstrations, in-context) -> wrap the method, or freeze
the base for a baseline -> train on the response tokens' causal-LM loss (zoo.tasks.generation) ->
decode greedily and score (zoo.evaluate_generation; the base model's responses come from the
predictions cache where an earlier run wrote them) -> save the adapter -> time a prompt's
forward pass against the base model -> record, and ``generations.jsonl``: each evaluation
pair's reference and the responses of the learner and the zero-shot base model.

Nothing here knows a method or a baseline by name: the flags decide, and a method or baseline
that does not declare ``generation`` in its ``task_kinds`` was refused when the run was planned.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

import zoo
from zoo.atomic import write_text
from zoo.baselines import untrained_baselines
from zoo.evaluate_generation import evaluate_generation
from zoo.inject import freeze
from zoo.latency import SAMPLE_BATCHES, latency_record
from zoo.method import MethodConfig, TaskContext
from zoo.models.load import load_model
from zoo.models.placement import to_device
from zoo.pipeline.base import Base, cache_folder, load_base, measure_general_text, model_id
from zoo.pipeline.plan import Plan
from zoo.pipeline.steps import Saved
from zoo.prediction_cache import cache_key, cached
from zoo.records import RunRecord
from zoo.tasks.data import examples_fingerprint
from zoo.tasks.generation import GenerationFormulation, generation_formulation, response_loss
from zoo.tasks.generation_metrics import example_scores
from zoo.tasks.generation_tasks import build_generation_task
from zoo.tasks.pairs import GenerationData
from zoo.train import TrainResult, train


@dataclass
class Generated:
    """A model scored on the evaluation pairs."""

    metrics: dict
    responses: list[str]


def _next_token_logits(model: nn.Module, batch: dict) -> torch.Tensor:
    """(B, V) logits at the end of each left-padded prompt: the forward pass timed against the base model's."""
    return model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], logits_to_keep=1).logits[:, -1]


def run_generation(plan: Plan, out_dir: Path, identity: dict) -> RunRecord:
    """Execute a run of a generation task; write its ``metrics.json`` and ``generations.jsonl`` into ``out_dir``; return its record."""
    data = build_generation_task(plan.task)
    base = load_base(plan, out_dir)
    if base.kind != "causal_lm":
        raise ValueError(f"a generation task needs a causal LM to write the response; model {plan.model.name!r} is an {base.kind}")
    general = measure_general_text(plan, base)
    size = plan.trainer.batch_size
    scores = {}
    for spec in untrained_baselines():
        if "generation" in spec.task_kinds and base.kind in spec.model_kinds and (plan.task.demonstrations or not spec.demonstrations):
            scores[spec.name] = _score_base(plan, data, base, generation_formulation(plan.task, base.tokenizer, data.train,
                                                                                       spec.demonstrations))
    form = generation_formulation(plan.task, base.tokenizer, data.train, plan.shows_demonstrations)
    result, bound, model = None, None, base.model
    if plan.baseline is not None:
        freeze(base.model)
        after = scores[plan.baseline.name]
    else:
        bound = plan.method.bind(TaskContext(list(plan.task.label_words), None, base.tokenizer))
        model = to_device(zoo.wrap(base.model, bound), base.accelerator.device, plan.model.placed_on_load)
        result = _train(plan, model, form, data, base, out_dir)
        after = Generated(*evaluate_generation(model, data.eval, form, size, base.accelerator))
    saved = Saved()
    if plan.save_adapter and plan.baseline is None and base.accelerator.is_main_process:
        saved = Saved(sum(f.stat().st_size for f in zoo.save_adapter(model, out_dir / "adapter").iterdir()))
    latency = _time(plan, model, form, data, base) if plan.latency else None
    forgetting = general.after(model) if general is not None else None
    record = generation_record(plan, data, base, scores, model, bound, result, after, saved, latency, forgetting, identity)
    if base.accelerator.is_main_process:
        _write_generations(out_dir / "generations.jsonl", data, after, scores.get("zero_shot"))
        record.write(out_dir / "metrics.json")
    return record


def _time(plan: Plan, model: nn.Module, form: GenerationFormulation, data: GenerationData, base: Base) -> dict:
    """A prompt's forward pass against a fresh base model's (wrapping changed the first), as zoo.latency times it."""
    fresh = to_device(load_model(plan.model)[0], base.accelerator.device, plan.model.placed_on_load) if plan.spec is not None else None
    return latency_record(model, form.prompt_batches(data.eval, plan.trainer.batch_size)[:SAMPLE_BATCHES], _next_token_logits, fresh)


def _score_base(plan: Plan, data: GenerationData, base: Base, form: GenerationFormulation) -> Generated:
    """The untrained base model's responses after ``form``'s prompts, read from the predictions cache where another run wrote them.

    The key holds the prompts' and the teacher-forced references' tokens, the decoding's
    settings and the reference texts: everything the responses and their scores depend on.
    """
    size = plan.trainer.batch_size
    inputs = form.prompt_batches(data.eval, size) + form.training_batches(data.eval, size, seed=None)
    key = cache_key(model_id(plan, base), inputs, ["generate", form.max_new_tokens, form.eos_token_id, form.pad_token_id],
                    [p.response for p in data.eval])
    return Generated(*cached(cache_folder(plan, base), key,
                             lambda: evaluate_generation(base.model, data.eval, form, size, base.accelerator)))


def _train(plan: Plan, model: nn.Module, form: GenerationFormulation, data: GenerationData, base: Base, out_dir: Path) -> TrainResult:
    """Train the method's parameters on the response tokens (a gradient-free method fits class labels: it has nothing to fit here)."""
    if plan.spec.gradient_free:
        raise ValueError(f"method {plan.spec.name!r} is solved in closed form on class labels, and a generation task has none; "
                         f"it should declare task_kinds=('classification',)")
    groups = [{"params": [p for p in model.parameters() if p.requires_grad], "lr": plan.rates.method}]
    batches = form.training_batches(data.train, plan.trainer.batch_size, seed=plan.seed)
    return train(
        model, groups, batches, response_loss, plan.trainer, base.accelerator,
        checkpoint=lambda: zoo.save_adapter(model, out_dir / "checkpoint"),
        evaluate=lambda: evaluate_generation(model, data.eval, form, plan.trainer.batch_size, base.accelerator)[0], desc=plan.name,
    )


def _write_generations(path: Path, data: GenerationData, after: Generated, zero_shot: Generated | None) -> None:
    rows = [{"index": i, "text": p.text, "reference": p.response, "response": after.responses[i],
             "zero_shot": zero_shot.responses[i] if zero_shot is not None else None} for i, p in enumerate(data.eval)]
    write_text(path, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))


def _scores(metrics: dict) -> dict:
    """A score as records hold it: exact match as ``accuracy`` and ROUGE-L as ``macro_f1`` (zoo.records), and every metric by name."""
    return {"accuracy": metrics["exact_match"], "macro_f1": metrics["rouge_l"], **metrics}


def generation_record(plan: Plan, data: GenerationData, base: Base, scores: dict[str, Generated], model: nn.Module,
                      bound: MethodConfig | None, result: TrainResult | None, after: Generated, saved: Saved, latency: dict | None,
                      forgetting: dict | None, identity: dict) -> RunRecord:
    trainable, total = zoo.count_parameters(model)
    device = base.accelerator.device
    matches, rouge = example_scores(after.responses, [p.response for p in data.eval])
    return RunRecord(
        method=plan.name, method_config=dataclasses.asdict(bound) if bound is not None else None,
        baseline=plan.baseline.name if plan.baseline else None, formulation=plan.formulation,
        model=plan.model.name, model_config=dataclasses.asdict(plan.model), task=plan.task.name, task_config=dataclasses.asdict(plan.task),
        label_names=[], n_train=len(data.train), n_eval=len(data.eval), seed=plan.seed,
        learning_rate=plan.rates.method, head_learning_rate=None,
        trainable_params=trainable, total_params=total, base_params=base.params, trainable_percent=100.0 * trainable / base.params,
        train_steps=result.steps if result else 0, train_seconds=result.train_seconds if result else 0.0,
        peak_memory_bytes=result.peak_memory_bytes if result else None, final_loss=result.final_loss if result else None,
        diverged=result.diverged if result else False, divergence=result.divergence if result else None,
        max_abs_weight=result.max_abs_weight if result else None,
        eval=after.metrics, accuracy=after.metrics["exact_match"], macro_f1=after.metrics["rouge_l"],
        baseline_scores={name: _scores(s.metrics) for name, s in scores.items()},
        flips=None, latency=latency, adapter_bytes=saved.adapter_bytes, head_bytes=None, history=result.history if result else [],
        zoo_version=zoo.__version__, device=str(device),
        device_name=torch.cuda.get_device_name(device) if device.type == "cuda" else None, run_config=identity,
        processes=base.accelerator.num_processes, task_kind="generation", generation=after.metrics,
        train_tokens=result.tokens if result else None, train_examples=result.examples if result else None, forgetting=forgetting,
        splits_read=list(data.splits_read), eval_correct=matches, eval_rouge_l=rouge, eval_fingerprint=examples_fingerprint(data.eval),
    )
