"""The ``zoo`` command: one Hydra run (or a sweep with ``-m``) of a method on a task.

A run loads the base model, scores the task zero-shot, wraps the model with the method,
trains it (or fits it, for gradient-free methods), evaluates, and writes ``metrics.json``,
``flips.jsonl`` and the adapter into its output folder.
"""
from __future__ import annotations

import dataclasses
import logging
import time
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
from zoo.models.load import load_model
from zoo.tasks.config import build_task
from zoo.tasks.prompt import PromptFormat, batches, classification_loss, encode_examples
from zoo.train import make_accelerator, train

log = logging.getLogger("zoo")


def run(cfg: DictConfig, out_dir: Path) -> dict:
    """Execute one run described by ``cfg``; return (and write) its metrics."""
    method_cfg = OmegaConf.to_object(cfg.method)
    model_cfg, task_cfg, trainer_cfg = (OmegaConf.to_object(cfg[k]) for k in ("model", "task", "trainer"))
    spec = zoo.registry.spec_for_config(method_cfg)
    set_seed(cfg.seed)
    torch.use_deterministic_algorithms(True, warn_only=True)

    data = build_task(task_cfg)
    fmt = PromptFormat(task_cfg.template, list(task_cfg.label_words))
    model, tokenizer = load_model(model_cfg)
    label_ids = fmt.label_token_ids(tokenizer)
    train_ids, train_labels = encode_examples(fmt, tokenizer, data.train, task_cfg.max_length)
    eval_ids, eval_labels = encode_examples(fmt, tokenizer, data.eval, task_cfg.max_length)
    pad = tokenizer.pad_token_id
    train_batches = batches(train_ids, train_labels, trainer_cfg.batch_size, pad, seed=cfg.seed)
    eval_batches = batches(eval_ids, eval_labels, trainer_cfg.batch_size, pad, seed=None)

    accelerator = make_accelerator(trainer_cfg)
    model.to(accelerator.device)
    zero_shot, before = evaluate(model, eval_batches, label_ids, eval_labels, data.label_names)
    log.info("zero-shot accuracy %.3f", zero_shot["accuracy"])

    if spec.needs_label_words:
        method_cfg = dataclasses.replace(method_cfg, label_token_ids=label_ids)
    wrapped = zoo.wrap(model, method_cfg).to(accelerator.device)
    trainable, total = zoo.count_parameters(wrapped)
    result = train(
        wrapped, train_batches, classification_loss(torch.tensor(label_ids)), trainer_cfg, accelerator, out_dir,
        evaluate=lambda m: evaluate(m, eval_batches, label_ids, eval_labels, data.label_names)[0],
    )
    wrapped = accelerator.unwrap_model(wrapped)
    metrics, after = evaluate(wrapped, eval_batches, label_ids, eval_labels, data.label_names)
    latency = _latency(wrapped, eval_batches[:4], label_ids)

    adapter_bytes = None
    if cfg.save_adapter and accelerator.is_main_process:
        folder = zoo.save_adapter(wrapped, out_dir / "adapter")
        adapter_bytes = sum(f.stat().st_size for f in folder.iterdir())
    write_flipped_examples(out_dir / "flips.jsonl", data.eval, before, after, data.label_names)
    record = {
        "method": spec.name,
        "method_config": dataclasses.asdict(method_cfg),
        "model": model_cfg.name,
        "task": task_cfg.name,
        "seed": cfg.seed,
        "learning_rate": trainer_cfg.learning_rate if trainer_cfg.learning_rate is not None else spec.learning_rate,
        "trainable_params": trainable,
        "total_params": total,
        "trainable_percent": 100.0 * trainable / total,
        "train_steps": result.steps,
        "train_seconds": result.train_seconds,
        "peak_memory_bytes": result.peak_memory_bytes,
        "final_loss": result.final_loss,
        "eval": metrics,
        "accuracy": metrics["accuracy"],
        "macro_f1": metrics["macro_f1"],
        "zero_shot": {"accuracy": zero_shot["accuracy"], "macro_f1": zero_shot["macro_f1"]},
        "flips": flips(before, after, eval_labels, data.label_names),
        "eval_seconds_per_batch": latency,
        "adapter_bytes": adapter_bytes,
        "history": result.history,
        "zoo_version": zoo.__version__,
        "device": str(accelerator.device),
    }
    if accelerator.is_main_process:
        write_json(out_dir / "metrics.json", record)
    return record


@torch.no_grad()
def _latency(model, sample: list[dict], label_ids: list[int]) -> float:
    from zoo.evaluate import predict

    start = time.perf_counter()
    predict(model, sample, label_ids)
    return (time.perf_counter() - start) / max(1, len(sample))


store_configs()


@hydra.main(version_base=None, config_path="pkg://zoo.conf", config_name="config")
def main(cfg: DictConfig) -> float:
    out_dir = Path(HydraConfig.get().runtime.output_dir)
    record = run(cfg, out_dir)
    print(
        f"{record['method']}: accuracy {record['accuracy']:.3f} (zero-shot {record['zero_shot']['accuracy']:.3f}), "
        f"macro-F1 {record['macro_f1']:.3f}, {record['trainable_params']:,} trainable of {record['total_params']:,} "
        f"({record['trainable_percent']:.2f}%), {record['train_seconds']:.1f}s -> {out_dir / 'metrics.json'}"
    )
    return record["accuracy"]


if __name__ == "__main__":
    main()
