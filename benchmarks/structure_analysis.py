"""What fine-tuning changed in the weight matrices (He & Cao 2025, arXiv:2509.17866), on fine-tunes we make.

Tiny mode (default, no download, a few minutes on 2 CPU cores): a random tiny Llama of
``--layers`` blocks is fine-tuned on the built-in synthetic task with each mergeable method of
``--methods`` (default: ``full_finetune`` and ``lora``) through zoo's own loop, then merged.
What differs between the methods is data, :data:`METHOD_OVERRIDES` (the full fine-tune at a
constant 1e-3, LoRA on all seven projections so that it is comparable with it), which
``--method-overrides`` extends or replaces. Each is analysed against the base with
``zoo-analyze``'s code and the paper's interventions::

    python -m benchmarks.structure_analysis --out benchmarks/results/structure
    python -m benchmarks.structure_analysis --methods full_finetune,lora,ia3,gift --steps 300
    python -m benchmarks.structure_analysis --method-overrides '{"lora": {"method": {"target_modules": null}}}'  # zoo's q/v

Sweep mode: every run of a ``zoo`` sweep whose method is mergeable, against its own base model
(read from the run's record, ``metrics.json``), scored on its own task::

    python -m benchmarks.structure_analysis --sweep multirun/2026-11-22/12-00-00 --out structure-sweep
    python -m benchmarks.structure_analysis --sweep multirun/benchmark-full/movie_sentiment --runs '*/seed0' \
        --out benchmarks/results/structure_benchmark          # the benchmark suite's fine-tunes, seed 0

Writes one ``zoo-analyze`` report per fine-tune into ``--out/<name>/`` and ``--out/summary.md``.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import fnmatch
import json
import statistics
import time
from pathlib import Path

from accelerate.utils import set_seed
from torch import nn

import zoo
from benchmarks.finetune import tune
from zoo.io.records import RunRecord, UnusableRecord
from zoo.method import TaskContext
from zoo.models.language import VOCABULARY
from zoo.models.load import ModelConfig, load_model
from zoo.models.tiny import tiny_model
from zoo.models.tokenizer import word_tokenizer
from zoo.research.structure_cli import run_analysis
from zoo.research.structure_experiments import EXPERIMENTS
from zoo.runtime.atomic import write_text
from zoo.tasks.config import TaskConfig, build_task
from zoo.tasks.formulation import Formulation, formulation_for
from zoo.training.loop import TrainerConfig, make_accelerator

ALL_PROJECTIONS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
METHOD_OVERRIDES: dict[str, dict[str, dict]] = {
    "full_finetune": {"trainer": {"learning_rate": 1e-3, "schedule": "constant_with_warmup", "warmup_ratio": 0.0}},
    "lora": {"method": {"target_modules": ALL_PROJECTIONS}},
}
"""Per method: ``method`` config fields and ``trainer`` settings of its tiny fine-tune, over zoo's defaults."""
SECTIONS = ("method", "trainer")


def merged_overrides(extra: dict[str, dict[str, dict]]) -> dict[str, dict[str, dict]]:
    """:data:`METHOD_OVERRIDES` with ``extra`` laid over it, section by section (a field in ``extra`` wins).

    Raises:
        ValueError: ``extra`` names an unregistered method or a section other than ``method`` and ``trainer``.
    """
    unknown = sorted(set(extra) - set(zoo.list_methods()))
    if unknown:
        raise ValueError(f"--method-overrides names unknown method(s) {unknown}; registered methods: {zoo.list_methods()}")
    merged = {
        name: {section: dict(fields) for section, fields in sections.items()} for name, sections in METHOD_OVERRIDES.items()
    }
    for name, sections in extra.items():
        if not isinstance(sections, dict) or set(sections) - set(SECTIONS):
            raise ValueError(f"--method-overrides[{name!r}] must be an object with keys among {list(SECTIONS)}, got {sections!r}")
        for section, fields in sections.items():
            merged.setdefault(name, {}).setdefault(section, {}).update(fields)
    return merged


def _json_object(value: str) -> dict:
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError as err:
        raise argparse.ArgumentTypeError(f'{value!r} is not JSON ({err}); e.g. \'{{"lora": {{"method": {{"r": 4}}}}}}\'') from err
    if not isinstance(parsed, dict):
        raise argparse.ArgumentTypeError(
            f"{value!r} is a JSON {type(parsed).__name__}, not an object of method name -> overrides"
        )
    return parsed


def method_finetune(
    base: nn.Module,
    method: str,
    formulation: Formulation,
    context: TaskContext,
    train_batches: list[dict],
    overrides: dict[str, dict],
    trainer: TrainerConfig,
    seed: int,
    out: Path,
) -> nn.Module:
    """A copy of ``base`` tuned with ``method`` by ``zoo.training.loop.train`` (``fit`` for a gradient-free one), merged; its model.

    The merged adapter is saved to ``out/adapter``.
    """
    set_seed(seed)
    trainer = dataclasses.replace(trainer, **overrides.get("trainer", {}))
    wrapped = zoo.wrap(copy.deepcopy(base), zoo.get_method(method).config(**overrides.get("method", {})).bind(context))
    tune(wrapped, formulation, train_batches, trainer, make_accelerator(trainer), desc=method)
    wrapped = zoo.merge(wrapped.eval())
    zoo.save_adapter(wrapped, out / "adapter")
    return wrapped.model


def tiny_mode(args) -> list[dict]:
    tokenizer = word_tokenizer(VOCABULARY)
    base = tiny_model("tiny-llama", len(tokenizer), seed=args.seed, layers=args.layers)
    task = TaskConfig(n_eval=args.n_eval)
    data = build_task(task)
    formulation = formulation_for(task, tokenizer, "causal_lm", train=data.train)
    train_batches = formulation.batches(data.train, args.batch_size, tokenizer.pad_token_id, seed=args.seed)
    context = TaskContext(list(task.label_words), formulation.label_token_ids, tokenizer)
    trainer = TrainerConfig(max_steps=args.steps, batch_size=args.batch_size, checkpoint_every=0, progress=False)
    start = time.perf_counter()
    tuned = {
        method: method_finetune(
            base,
            method,
            formulation,
            context,
            train_batches,
            args.method_overrides.get(method, {}),
            trainer,
            args.seed,
            args.out / method,
        )
        for method in args.methods
    }
    print(f"fine-tuning took {time.perf_counter() - start:.0f}s")
    return [
        run_analysis(
            base,
            model,
            args.out / name,
            f"{name} (merged) vs random tiny-llama ({args.layers} layers)",
            list(EXPERIMENTS),
            tokenizer,
            task,
            args.batch_size,
            args.seed,
        )
        for name, model in tuned.items()
    ]


def sweep_mode(args) -> list[dict]:
    results = []
    runs = [m.parent for m in sorted(args.sweep.rglob("metrics.json"))]
    chosen = [r for r in runs if fnmatch.fnmatch(r.relative_to(args.sweep).as_posix(), args.runs)]
    if runs and not chosen:
        raise SystemExit(
            f"--runs {args.runs!r} matches none of the {len(runs)} runs under {args.sweep}, e.g. "
            f"{runs[0].relative_to(args.sweep).as_posix()!r}"
        )
    for run_dir in chosen:
        adapter = run_dir / "adapter"
        try:
            record = RunRecord.read(run_dir / "metrics.json")
        except UnusableRecord as err:
            print(f"skip {run_dir}: {err}")
            continue
        if not (adapter / "adapter_config.json").is_file():
            print(f"skip {run_dir}: no adapter/ ({record.method} saved none)")
            continue
        if not zoo.get_method(record.method).mergeable:
            print(f"skip {run_dir}: {record.method} is not mergeable")
            continue
        base, tokenizer = load_model(ModelConfig(**record.model_config))
        tuned = zoo.merge(zoo.load_adapter(copy.deepcopy(base), adapter)).model
        name = run_dir.relative_to(args.sweep).as_posix().replace("/", "_") or run_dir.name
        results.append(
            run_analysis(
                base,
                tuned,
                args.out / name,
                f"{record.method} (merged) vs {record.model}, {name}",
                list(EXPERIMENTS),
                tokenizer,
                TaskConfig(**record.task_config),
                args.batch_size,
                args.seed,
            )
        )
    return results


def summary_markdown(results: list[dict]) -> str:
    lines = [
        "# Structural change after fine-tuning (He & Cao 2025)",
        "",
        "Over every block matrix that tuning changed (`all`): ‖ΔW‖/‖W‖, scale c (least squares S_t ≈ c·S_b), its coefficient of variation "
        "across layers (within each matrix kind, averaged over kinds), rotation ‖R − I‖_F/√(2k) (0 none, ≈1 random), left/right agreement tr(R_Uᵀ R_V)/k, similarity "
        "of the rotations across layers; chance: the same for a random perturbation of the same norm. Then the task "
        "accuracy of the base, the tuned model and each intervention.",
        "",
        "| fine-tune | ‖ΔW‖/‖W‖ | scale c | CV of c across layers | rotation (chance) | agreement (chance) | similarity across layers | "
        + " | ".join(["base acc.", "tuned acc."] + list(EXPERIMENTS))
        + " |",
        "|" + "---|" * (7 + 2 + len(EXPERIMENTS)),
    ]
    for r in results:
        if not r["kinds"]:
            lines.append(f"| {r['title']} | no block matrix changed |")
            continue
        overall = r["kinds"][-1]  # "all" comes last
        cv_within = statistics.fmean(k.scale_cv for k in r["kinds"] if k.kind != "all")  # the paper's "across layers", per kind
        acc = {e["variant"]: e["accuracy"] for e in r["experiments"]}
        cells = [f"{acc[v]:.3f}" if v in acc else "-" for v in ["base", "tuned", *EXPERIMENTS]]
        change = statistics.fmean(m.relative_change for m in r["matrices"] if m.relative_change > 0)
        lines.append(
            f"| {r['title']} | {change:.3f} | {overall.scale_mean:.3f} | {cv_within:.3f} "
            f"| {overall.rotation_mean:.3f} ({overall.null_rotation:.3f}) "
            f"| {overall.left_right_agreement:.3f} ({overall.null_agreement:.3f}) "
            f"| {overall.rotation_similarity:.3f} | " + " | ".join(cells) + " |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("structure-analysis"))
    parser.add_argument(
        "--sweep", type=Path, help="a zoo (multi)run folder: analyse its mergeable runs instead of tiny fine-tunes"
    )
    parser.add_argument(
        "--runs", default="*", help="with --sweep: only runs whose folder, relative to it, matches this pattern (e.g. '*/seed0')"
    )
    parser.add_argument("--layers", type=int, default=4, help="depth of the tiny base model")
    parser.add_argument(
        "--methods",
        type=lambda v: [m for m in v.split(",") if m],
        default=["full_finetune", "lora"],
        help="mergeable zoo methods to fine-tune (comma-separated)",
    )
    parser.add_argument(
        "--method-overrides",
        type=_json_object,
        default={},
        help='JSON over METHOD_OVERRIDES: {"<method>": {"method": {field: value}, "trainer": {field: value}}}',
    )
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--n-eval", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        args.method_overrides = merged_overrides(args.method_overrides)
    except ValueError as err:
        parser.error(str(err))
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
