"""``zoo-analyze``: what fine-tuning changed in every weight matrix (He & Cao 2025, arXiv:2509.17866).

Compares a base model with a tuned one, a full fine-tune folder or a saved zoo adapter of a
mergeable method (merged into the base), matrix by matrix through their SVDs
(:mod:`zoo.research.structure`), optionally runs the paper's two interventions
(:mod:`zoo.research.structure_experiments`) scored on a task, and writes tables and plots::

    zoo-analyze --base tiny-llama --adapter outputs/.../adapter --out structure/lora
    zoo-analyze --base path/to/base --tuned path/to/full-finetune --experiments scaled_spectrum,random_rotation
    zoo-analyze --run outputs/.../<run folder> --experiments all   # the run's base model, adapter and task

With ``--run`` the interventions are scored on exactly the prompts the run trained and
evaluated on (its task config: template, label words, chat template, system prompt,
demonstrations), through the same :func:`~zoo.tasks.formulation.formulation_for`.
"""

from __future__ import annotations

import argparse
import copy
from pathlib import Path

import torch
from torch import nn

import zoo
from zoo.evaluation.classification import evaluate
from zoo.io.records import RunRecord
from zoo.models.load import ModelConfig, load_model
from zoo.research.structure import analyse, summarise
from zoo.research.structure_experiments import EXPERIMENTS, apply_experiment
from zoo.research.structure_report import claim_report, write_report
from zoo.runtime.errors import run_command
from zoo.tasks.config import TaskConfig, build_task
from zoo.tasks.formulation import formulation_for


def score(model: nn.Module, tokenizer, task: TaskConfig, batch_size: int) -> dict:
    """Accuracy and macro-F1 of ``model`` on the evaluation split of ``task`` (its prompt, as a run formulates it)."""
    data = build_task(task)
    form = formulation_for(task, tokenizer, "causal_lm", name="prompt", train=data.train)
    batches = form.batches(data.eval, batch_size, tokenizer.pad_token_id, seed=None)
    metrics, _ = evaluate(model, batches, form.scorer, [e.label for e in data.eval], data.label_names)
    return {"accuracy": metrics["accuracy"], "macro_f1": metrics["macro_f1"]}


def run_analysis(
    base: nn.Module,
    tuned: nn.Module,
    out: Path,
    title: str,
    experiments: list[str] = (),
    tokenizer=None,
    task: TaskConfig | None = None,
    batch_size: int = 16,
    seed: int = 0,
) -> dict:
    """Analyse ``tuned`` against ``base``, run ``experiments`` (scored on ``task`` with ``tokenizer``), write the report.

    ``tuned`` is a plain model or the base with merged adapters injected (``zoo_model.model``).
    Returns what ``structure.json`` holds plus ``paths``.
    """
    changes = analyse(base, tuned, seed=seed)
    kinds = summarise(changes)
    results = None
    if experiments and kinds:  # nothing changed in the blocks: every intervention is the tuned model again
        task = task or TaskConfig()
        results = [
            {"variant": "base", **score(base, tokenizer, task, batch_size)},
            {"variant": "tuned", **score(tuned, tokenizer, task, batch_size)},
        ]
        for name in experiments:
            edited, rebuilt = apply_experiment(base, tuned, name, seed=seed)
            results.append({"variant": name, "rebuilt": rebuilt, **score(edited, tokenizer, task, batch_size)})
    paths = write_report(out, changes, kinds, results, title)
    return {"title": title, "kinds": kinds, "matrices": changes, "experiments": results or [], "paths": paths}


def _experiments(value: str) -> list[str]:
    if value == "none":
        return []
    if value == "all":
        return list(EXPERIMENTS)
    names = [v.strip() for v in value.split(",") if v.strip()]
    unknown = [n for n in names if n not in EXPERIMENTS]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown experiment(s) {unknown}; choose from {list(EXPERIMENTS)}, 'all' or 'none'")
    return names


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="zoo-analyze", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--base", help="base model: tiny-llama / tiny-gpt2 (built in), a hub id, or a local folder (not with --run)"
    )
    parser.add_argument("--base-seed", type=int, default=0, help="seed of a built-in tiny base model's weights")
    parser.add_argument("--gguf-file", help="a .gguf file for the base (see model.gguf_file)")
    parser.add_argument("--gguf-package", help="the pip package whose folder holds --gguf-file")
    tuned = parser.add_mutually_exclusive_group(required=True)
    tuned.add_argument("--tuned", help="folder of a fully fine-tuned model (save_pretrained)")
    tuned.add_argument("--adapter", help="folder of a saved zoo adapter of a mergeable method (zoo.save_adapter)")
    tuned.add_argument("--run", type=Path, help="a zoo run folder: its base model, adapter/ and task (its metrics.json)")
    parser.add_argument("--out", type=Path, default=Path("structure"), help="output folder (default: ./structure)")
    parser.add_argument(
        "--experiments",
        type=_experiments,
        default=[],
        help=f"comma-separated interventions from {list(EXPERIMENTS)}, 'all' or 'none' (default)",
    )
    parser.add_argument(
        "--task", default="synthetic_sentiment", help="built-in task scoring the interventions (--run: the run's)"
    )
    parser.add_argument("--n-eval", type=int, default=256, help="evaluation examples of the task")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0, help="seed of the random rotations and of the chance baseline")
    parser.add_argument("--debug", action="store_true", help="show the traceback of every error")
    return parser


def load_pair(args: argparse.Namespace) -> tuple[nn.Module, nn.Module, object, str]:
    """``(base, tuned, tokenizer, title)`` from the command line; an adapter is merged into a copy of the base."""
    if args.base is None:
        raise ValueError("give --base (the model the tuned one started from), or --run (a run folder names its base)")
    base_cfg = ModelConfig(name=args.base, seed=args.base_seed, gguf_file=args.gguf_file, gguf_package=args.gguf_package)
    base, tokenizer = load_model(base_cfg)
    if args.adapter:
        wrapped = zoo.merge(zoo.load_adapter(copy.deepcopy(base), args.adapter))
        return base, wrapped.model, tokenizer, f"{wrapped.method} (merged) vs {args.base}"
    tuned, _ = load_model(ModelConfig(name=args.tuned))
    return base, tuned, tokenizer, f"{Path(args.tuned).name} vs {args.base}"


def load_run(folder: Path) -> tuple[nn.Module, nn.Module, object, str, TaskConfig]:
    """``(base, tuned, tokenizer, title, task)`` of a run folder: its record's model and task, its adapter merged."""
    missing = [name for name in ("adapter", "metrics.json") if not (folder / name).exists()]
    if missing:
        raise FileNotFoundError(f"{folder} is not a finished run folder with a saved adapter: it lacks {', '.join(missing)}")
    record = RunRecord.read(folder / "metrics.json")
    base, tokenizer = load_model(ModelConfig(**record.model_config))
    wrapped = zoo.merge(zoo.load_adapter(copy.deepcopy(base), folder / "adapter"))
    return base, wrapped.model, tokenizer, f"{wrapped.method} (merged) vs {record.model}", TaskConfig(**record.task_config)


def main(argv: list[str] | None = None) -> int:
    """Exit status 0, or 2 where a user error stopped it (zoo.runtime.errors: one line, its traceback with ``--debug``)."""
    args = _parser().parse_args(argv)
    return run_command("zoo-analyze", lambda: _analyze(args), args.debug)


def _analyze(args: argparse.Namespace) -> int:
    claim_report(args.out)  # before the analysis: its files would replace what zoo did not write
    if args.run:
        base, tuned, tokenizer, title, task = load_run(args.run)
    else:
        (base, tuned, tokenizer, title), task = load_pair(args), TaskConfig(name=args.task, n_eval=args.n_eval)
    with torch.no_grad():
        result = run_analysis(base, tuned, args.out, title, args.experiments, tokenizer, task, args.batch_size, args.seed)
    print((args.out / "structure.md").read_text().split("\nPer matrix:")[0])
    print("wrote " + ", ".join(str(p) for p in result["paths"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
