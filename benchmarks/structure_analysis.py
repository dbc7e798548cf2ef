"""What fine-tuning changed in the weight matrices (He & Cao 2025, arXiv:2509.17866), on fine-tunes we make.

Tiny mode (default, no download, a few minutes on 2 CPU cores): a random tiny Llama of
``--layers`` blocks is fine-tuned on the built-in synthetic task three ways, fully (a plain
AdamW loop over every weight) and with each method of ``--methods`` through zoo's own
loop (merged afterwards; LoRA on all seven projections unless ``--lora-targets default``).
Each is analysed against the base with ``zoo-analyze``'s code and the paper's interventions::

    python benchmarks/structure_analysis.py --out benchmarks/results/structure
    python benchmarks/structure_analysis.py --methods lora,ia3,gift --steps 300

Sweep mode: every run of a ``zoo`` sweep whose method is mergeable, against its own base model
(read from the run's ``.hydra/config.yaml``), scored on its own task::

    python benchmarks/structure_analysis.py --sweep multirun/2026-11-22/12-00-00 --out structure-sweep
    python benchmarks/structure_analysis.py --sweep multirun/benchmark-full/movie_sentiment --runs '*/seed0' \
        --out benchmarks/results/structure_benchmark          # the benchmark suite's fine-tunes, seed 0

Writes one ``zoo-analyze`` report per fine-tune into ``--out/<name>/`` and ``--out/summary.md``.
"""
from __future__ import annotations

import argparse
import copy
import fnmatch
import json
import statistics
import time
from pathlib import Path

import torch
from omegaconf import OmegaConf
from torch import nn

import zoo
from zoo.analysis.cli import run_analysis
from zoo.analysis.structure_experiments import EXPERIMENTS
from zoo.atomic import write_text
from zoo.models.load import ModelConfig, load_model
from zoo.models.tiny import tiny_model
from zoo.models.tokenizer import word_tokenizer
from zoo.tasks.config import TaskConfig, build_task
from zoo.tasks.prompt import PromptFormat, batches, classification_loss, encode_examples
from zoo.tasks.synthetic import VOCABULARY
from zoo.train import TrainerConfig, make_accelerator, train

ALL_PROJECTIONS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def task_batches(tokenizer, task: TaskConfig, batch_size: int, seed: int):
    data = build_task(task)
    fmt = PromptFormat(task.template, list(task.label_words))
    ids, labels = encode_examples(fmt, tokenizer, data.train, task.max_length)
    return batches(ids, labels, batch_size, tokenizer.pad_token_id, seed=seed), fmt.label_token_ids(tokenizer)


def full_finetune(base: nn.Module, train_batches, label_ids: list[int], steps: int, lr: float, seed: int) -> nn.Module:
    """A copy of ``base`` with every weight trained by AdamW on the label-word cross-entropy (constant lr)."""
    torch.manual_seed(seed)
    model = copy.deepcopy(base).train()
    for p in model.parameters():
        p.requires_grad_(True)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    loss_fn = classification_loss(torch.tensor(label_ids))
    for step in range(steps):
        loss = loss_fn(model, train_batches[step % len(train_batches)])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad()
    return model.eval().requires_grad_(False)


def method_finetune(base: nn.Module, method: str, train_batches, label_ids, steps: int, lora_targets: str, out: Path):
    """``base`` tuned with ``method`` through zoo's loop, then merged; returns the model with merged adapters."""
    overrides = {"target_modules": ALL_PROJECTIONS} if method == "lora" and lora_targets == "all" else {}
    wrapped = zoo.wrap(copy.deepcopy(base), method, **overrides)
    trainer = TrainerConfig(max_steps=steps, batch_size=len(train_batches[0]["labels"]), checkpoint_every=0, progress=False)
    accelerator = make_accelerator(trainer)
    train(wrapped, train_batches, classification_loss(torch.tensor(label_ids)), trainer, accelerator, out)
    wrapped = zoo.merge(accelerator.unwrap_model(wrapped).eval())
    zoo.save_adapter(wrapped, out / "adapter")
    return wrapped.model


def tiny_mode(args) -> list[dict]:
    tokenizer = word_tokenizer(VOCABULARY)
    base = tiny_model("tiny-llama", len(tokenizer), seed=args.seed, layers=args.layers)
    task = TaskConfig(n_eval=args.n_eval)
    train_batches, label_ids = task_batches(tokenizer, task, args.batch_size, args.seed)
    experiments = list(EXPERIMENTS)
    results = []
    start = time.perf_counter()
    tuned = {"full": full_finetune(base, train_batches, label_ids, args.steps, args.full_lr, args.seed)}
    for method in args.methods:
        tuned[method] = method_finetune(base, method, train_batches, label_ids, args.steps, args.lora_targets, args.out / method)
    print(f"fine-tuning took {time.perf_counter() - start:.0f}s")
    for name, model in tuned.items():
        label = "full fine-tune" if name == "full" else f"{name} (merged)"
        title = f"{label} vs random tiny-llama ({args.layers} layers)"
        results.append(run_analysis(base, model, args.out / name, title, experiments, tokenizer, task, args.batch_size, args.seed))
    return results


def sweep_mode(args) -> list[dict]:
    results = []
    runs = [m.parent for m in sorted(args.sweep.rglob("metrics.json"))]
    chosen = [r for r in runs if fnmatch.fnmatch(r.relative_to(args.sweep).as_posix(), args.runs)]
    if runs and not chosen:
        raise SystemExit(f"--runs {args.runs!r} matches none of the {len(runs)} runs under {args.sweep}, e.g. "
                         f"{runs[0].relative_to(args.sweep).as_posix()!r}")
    for run_dir in chosen:
        adapter, config = run_dir / "adapter", run_dir / ".hydra" / "config.yaml"
        if not (adapter / "adapter_config.json").is_file() or not config.is_file():
            print(f"skip {run_dir}: no adapter/ or .hydra/config.yaml")
            continue
        method = json.loads((adapter / "adapter_config.json").read_text())["method"]
        if not zoo.get_method(method).mergeable:
            print(f"skip {run_dir}: {method} is not mergeable")
            continue
        cfg = OmegaConf.load(config)
        base, tokenizer = load_model(ModelConfig(**OmegaConf.to_container(cfg.model, resolve=True)))
        tuned = zoo.merge(zoo.load_adapter(copy.deepcopy(base), adapter)).model
        task = TaskConfig(**OmegaConf.to_container(cfg.task, resolve=True))
        name = run_dir.relative_to(args.sweep).as_posix().replace("/", "_") or run_dir.name
        results.append(run_analysis(base, tuned, args.out / name, f"{method} (merged) vs {cfg.model.name}, {name}",
                                    list(EXPERIMENTS), tokenizer, task, args.batch_size, args.seed))
    return results


def summary_markdown(results: list[dict]) -> str:
    lines = ["# Structural change after fine-tuning (He & Cao 2025)", "",
             "Over every block matrix that tuning changed (`all`): ‖ΔW‖/‖W‖, scale c (least squares S_t ≈ c·S_b), its coefficient of variation "
             "across layers (within each matrix kind, averaged over kinds), rotation ‖R − I‖_F/√(2k) (0 none, ≈1 random), left/right agreement tr(R_Uᵀ R_V)/k, similarity "
             "of the rotations across layers; chance: the same for a random perturbation of the same norm. Then the task "
             "accuracy of the base, the tuned model and each intervention.", "",
             "| fine-tune | ‖ΔW‖/‖W‖ | scale c | CV of c across layers | rotation (chance) | agreement (chance) | similarity across layers | "
             + " | ".join(["base acc.", "tuned acc."] + list(EXPERIMENTS)) + " |",
             "|" + "---|" * (7 + 2 + len(EXPERIMENTS))]
    for r in results:
        if not r["kinds"]:
            lines.append(f"| {r['title']} | no block matrix changed |")
            continue
        overall = r["kinds"][-1]  # "all" comes last
        cv_within = statistics.fmean(k.scale_cv for k in r["kinds"] if k.kind != "all")  # the paper's "across layers", per kind
        acc = {e["variant"]: e["accuracy"] for e in r["experiments"]}
        cells = [f"{acc[v]:.3f}" if v in acc else "-" for v in ["base", "tuned", *EXPERIMENTS]]
        change = statistics.fmean(m.relative_change for m in r["matrices"] if m.relative_change > 0)
        lines.append(f"| {r['title']} | {change:.3f} | {overall.scale_mean:.3f} | {cv_within:.3f} "
                     f"| {overall.rotation_mean:.3f} ({overall.null_rotation:.3f}) "
                     f"| {overall.left_right_agreement:.3f} ({overall.null_agreement:.3f}) "
                     f"| {overall.rotation_similarity:.3f} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("structure-analysis"))
    parser.add_argument("--sweep", type=Path, help="a zoo (multi)run folder: analyse its mergeable runs instead of tiny fine-tunes")
    parser.add_argument("--runs", default="*",
                        help="with --sweep: only runs whose folder, relative to it, matches this pattern (e.g. '*/seed0')")
    parser.add_argument("--layers", type=int, default=4, help="depth of the tiny base model")
    parser.add_argument("--methods", type=lambda v: [m for m in v.split(",") if m], default=["lora"],
                        help="mergeable zoo methods to fine-tune besides the full fine-tune (comma-separated)")
    parser.add_argument("--lora-targets", choices=["all", "default"], default="all",
                        help="LoRA on all seven projections (comparable with the full fine-tune) or zoo's default q/v")
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--full-lr", type=float, default=1e-3)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--n-eval", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    for method in args.methods:
        if not zoo.get_method(method).mergeable:
            mergeable = [m for m in zoo.list_methods() if zoo.get_method(m).mergeable]
            parser.error(f"method {method!r} is not mergeable; mergeable: {mergeable}")
    results = sweep_mode(args) if args.sweep else tiny_mode(args)
    if not results:
        print("nothing to analyse")
        return 1
    text = summary_markdown(results)
    write_text(args.out / "summary.md", text)
    print(text)
    print(f"wrote {args.out / 'summary.md'} and one report per fine-tune under {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
