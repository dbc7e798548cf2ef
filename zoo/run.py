"""The ``zoo`` command: one Hydra run (or a sweep with ``-m``) of a method on a task.

A run loads the data and the base model, scores the baselines the task allows on the base
model (zero-shot; in-context with demonstrations), wraps the model with the method, trains
it (or fits it, for gradient-free methods) with the task's formulation (prompt or head),
evaluates, times inference against the base model, and writes ``metrics.json``,
``flips.jsonl``, the adapter and the head into its output folder. ``baseline=<name>`` runs a
baseline instead of the method. The base model's predictions are cached across runs
(``predictions_cache``); ``resume=true`` skips a run whose folder holds its finished metrics.
"""
from __future__ import annotations

import dataclasses
import functools
import logging
import math
from pathlib import Path

import hydra
import torch
from accelerate.utils import set_seed
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

import zoo
from zoo.analysis.flips import flips, write_flipped_examples
from zoo.atomic import write_json
from zoo.config import store_configs
from zoo.evaluate import evaluate
from zoo.fingerprint import fingerprint
from zoo.inject import freeze
from zoo.latency import SAMPLE_BATCHES, latency_record
from zoo.method import MethodSpec
from zoo.models.arch import model_kind
from zoo.models.load import load_model
from zoo.prediction_cache import cache_key, cached
from zoo.resume import finished_run, refuse_another_run, run_identity
from zoo.tasks import baselines
from zoo.tasks.config import build_task
from zoo.tasks.formulation import check_formulation, head_formulation, prompt_formulation
from zoo.tasks.head import save_head
from zoo.tasks.prompt import PromptFormat, classification_loss
from zoo.tasks.splits import demonstrations
from zoo.train import TrainerConfig, make_accelerator, train

log = logging.getLogger("zoo")
HEAD_LEARNING_RATE = 1e-2
"""A linear probe's learning rate when neither task.head_learning_rate nor trainer.learning_rate is set."""


def run(cfg: DictConfig, out_dir: Path) -> dict:
    """Execute one run described by ``cfg``; return (and write) its metrics."""
    model_cfg, task_cfg, trainer_cfg = (OmegaConf.to_object(cfg[k]) for k in ("model", "task", "trainer"))
    baseline = cfg.get("baseline")
    baselines.check_baseline(baseline, task_cfg)
    method_cfg = None if baseline else OmegaConf.to_object(cfg.method)
    spec = None if baseline else zoo.registry.spec_for_config(method_cfg)
    trainer_cfg = _method_learning_rate(trainer_cfg, spec, dict(cfg.method_learning_rates))
    formulation = baselines.formulation(baseline, task_cfg)
    set_seed(cfg.seed)
    torch.use_deterministic_algorithms(True, warn_only=True)

    data = build_task(task_cfg)
    demos = tuple(demonstrations(data.train, task_cfg.demonstrations, task_cfg.seed)) if task_cfg.demonstrations else ()
    zero_shot_fmt = PromptFormat(task_cfg.template, list(task_cfg.label_words), task_cfg.chat_template, task_cfg.system_prompt,
                                 separator=task_cfg.demonstration_separator)
    model, tokenizer = load_model(model_cfg)
    kind = model_kind(model)
    check_formulation(formulation, kind, spec)
    accelerator = make_accelerator(trainer_cfg)
    model.to(accelerator.device)
    base_params = zoo.count_parameters(model)[1]
    eval_labels, names, pad = [e.label for e in data.eval], data.label_names, tokenizer.pad_token_id

    # baselines on the base model: the label words after the template, with and without demonstrations
    label_ids, scored = _label_ids(zero_shot_fmt, tokenizer, kind, formulation), {}
    if label_ids is not None:
        formats = {"zero_shot": zero_shot_fmt, "in_context": dataclasses.replace(zero_shot_fmt, demonstrations=demos)}
        model_id = {"name": model_cfg.name, "gguf_file": model_cfg.gguf_file, "dtype": model_cfg.dtype,
                    "weights": fingerprint(model), "device": str(accelerator.device)}
        for name in ["zero_shot"] + (["in_context"] if demos else []):
            form = prompt_formulation(formats[name], tokenizer, task_cfg.max_length, label_ids)
            eval_batches = form.batches(data.eval, trainer_cfg.batch_size, pad, seed=None)
            metrics, predictions = cached(cfg.predictions_cache, cache_key(model_id, eval_batches, label_ids, names),
                                          functools.partial(evaluate, model, eval_batches, form.scorer, eval_labels, names))
            scored[name] = (form, eval_batches, metrics, predictions)
            log.info("%s accuracy %.3f", name, metrics["accuracy"])
    own = "in_context" if demos and baseline != "zero_shot" else "zero_shot"
    before = scored[own][3] if scored else None

    head, result, adapter_bytes, head_bytes, lr, head_lr = None, None, None, None, None, None
    if baseline is not None:
        freeze(model)  # nothing of the base model trains in a baseline
    if baseline in baselines.UNTRAINED:
        form, eval_batches, metrics, after = scored[own]
        trained = model
    else:
        if formulation == "prompt":
            form, eval_batches = scored[own][:2]
        else:
            form = head_formulation(model, tokenizer, len(names), task_cfg.max_length, kind)
            eval_batches = form.batches(data.eval, trainer_cfg.batch_size, pad, seed=None)
            head = form.head
        train_batches = form.batches(data.train, trainer_cfg.batch_size, pad, seed=cfg.seed)
        if spec is not None and spec.needs_label_words:
            method_cfg = dataclasses.replace(method_cfg, label_token_ids=label_ids)
        trained = model if baseline else zoo.wrap(model, method_cfg).to(accelerator.device)
        lr = trainer_cfg.learning_rate if trainer_cfg.learning_rate is not None else (spec.learning_rate if spec else HEAD_LEARNING_RATE)
        head_lr = (task_cfg.head_learning_rate if task_cfg.head_learning_rate is not None else lr) if head is not None else None
        result = train(
            trained, train_batches, classification_loss(form.scorer), trainer_cfg, accelerator, out_dir,
            evaluate=lambda m: evaluate(m, eval_batches, form.scorer, eval_labels, names)[0], head=head, head_learning_rate=head_lr,
        )
        trained = accelerator.unwrap_model(trained)
        metrics, after = evaluate(trained, eval_batches, form.scorer, eval_labels, names)
        if cfg.save_adapter and accelerator.is_main_process:
            if isinstance(trained, zoo.ZooModel):
                folder = zoo.save_adapter(trained, out_dir / "adapter")
                adapter_bytes = sum(f.stat().st_size for f in folder.iterdir())
            if head is not None:
                head_bytes = save_head(head, out_dir / "head.safetensors", names)
    head_params = sum(p.numel() for p in head.parameters()) if head is not None else 0
    trainable, total = (n + head_params for n in zoo.count_parameters(trained))
    base = load_model(model_cfg)[0].to(accelerator.device) if spec is not None else None  # wrap changed the first copy in place
    latency = latency_record(trained, eval_batches[:SAMPLE_BATCHES], form.scorer, base)
    del base
    if before is not None:
        write_flipped_examples(out_dir / "flips.jsonl", data.eval, before, after, names)

    record = {
        "method": baseline or spec.name,
        "method_config": dataclasses.asdict(method_cfg) if method_cfg is not None else None,
        "baseline": baseline,
        "formulation": formulation,
        "model": model_cfg.name,
        "model_config": dataclasses.asdict(model_cfg),
        "task": task_cfg.name,
        "task_config": dataclasses.asdict(task_cfg),
        "label_names": names,
        "n_train": len(data.train),
        "n_eval": len(data.eval),
        "seed": cfg.seed,
        "learning_rate": lr if spec is not None else None,
        "head_learning_rate": head_lr,
        "trainable_params": trainable,
        "total_params": total,
        "base_params": base_params,
        "trainable_percent": 100.0 * trainable / base_params,
        "train_steps": result.steps if result else 0,
        "train_seconds": result.train_seconds if result else 0.0,
        "peak_memory_bytes": result.peak_memory_bytes if result else None,
        "final_loss": result.final_loss if result else None,
        "diverged": result.diverged if result else False,
        "divergence": result.divergence if result else None,
        "max_abs_weight": result.max_abs_weight if result else None,
        "eval": metrics,
        "accuracy": metrics["accuracy"],
        "macro_f1": metrics["macro_f1"],
        **{name: ({"accuracy": s[2]["accuracy"], "macro_f1": s[2]["macro_f1"]} if (s := scored.get(name)) else None)
           for name in ("zero_shot", "in_context")},
        "flips": flips(before, after, eval_labels, names) if before is not None else None,
        "latency": latency,
        "adapter_bytes": adapter_bytes,
        "head_bytes": head_bytes,
        "history": result.history if result else [],
        "zoo_version": zoo.__version__,
        "device": str(accelerator.device),
        "device_name": torch.cuda.get_device_name(accelerator.device) if accelerator.device.type == "cuda" else None,
        "run_config": run_identity(cfg),
    }
    if accelerator.is_main_process:
        write_json(out_dir / "metrics.json", record)
    return record


def _label_ids(fmt: PromptFormat, tokenizer, kind: str, formulation: str) -> list[int] | None:
    """The label words' token ids where the model can score them; a head run without usable label words skips the baselines."""
    if kind != "causal_lm":
        return None
    try:
        return fmt.label_token_ids(tokenizer)
    except ValueError as err:
        if formulation == "prompt":
            raise
        log.warning("no zero-shot baseline for this head run: %s", err)
        return None


def _method_learning_rate(trainer_cfg: TrainerConfig, spec: MethodSpec | None, rates: dict[str, float]) -> TrainerConfig:
    """``trainer_cfg`` with the learning rate ``method_learning_rates`` gives the run's method, where the trainer sets none."""
    unknown = sorted(set(rates) - set(zoo.list_methods()))
    if unknown:
        raise ValueError(f"method_learning_rates names unknown method(s) {unknown}; registered methods: {zoo.list_methods()}")
    bad = {name: rate for name, rate in rates.items() if not 0 < rate < math.inf}
    if bad:
        raise ValueError(f"method_learning_rates must be finite numbers above 0, got {bad}")
    if spec is None or trainer_cfg.learning_rate is not None or spec.name not in rates:
        return trainer_cfg
    return dataclasses.replace(trainer_cfg, learning_rate=rates[spec.name])


store_configs()


@hydra.main(version_base=None, config_path="pkg://zoo.conf", config_name="config")
def main(cfg: DictConfig) -> float:
    out_dir = Path(HydraConfig.get().runtime.output_dir)
    if cfg.resume and (done := finished_run(out_dir, cfg)) is not None:
        print(f"skipped (done): {done['method']} on {done['task']}, seed {done['seed']}: accuracy {done['accuracy']:.3f} "
              f"-> {out_dir / 'metrics.json'}")
        return done["accuracy"]
    if not cfg.resume:
        refuse_another_run(out_dir, cfg)
    record = run(cfg, out_dir)
    zero_shot = f"{record['zero_shot']['accuracy']:.3f}" if record["zero_shot"] else "n/a"
    in_context = f", in-context {record['in_context']['accuracy']:.3f}" if record["in_context"] else ""
    diverged = f" (diverged: {record['divergence']})" if record["diverged"] else ""
    print(
        f"{record['method']} ({record['formulation']}): accuracy {record['accuracy']:.3f} (zero-shot {zero_shot}{in_context}), "
        f"macro-F1 {record['macro_f1']:.3f}, {record['trainable_params']:,} trainable "
        f"({record['trainable_percent']:.2f}% of the base model's {record['base_params']:,}), "
        f"{record['train_seconds']:.1f}s{diverged} -> {out_dir / 'metrics.json'}"
    )
    return record["accuracy"]


if __name__ == "__main__":
    main()
