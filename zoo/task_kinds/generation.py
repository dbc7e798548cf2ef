"""The ``generation`` task kind: the model writes a response after the prompt (zoo.tasks.generation).

Data are the built-in generation tasks' (text, response) pairs (zoo.tasks.generation_tasks). Training
minimises the causal-LM loss of the response tokens; evaluation decodes greedily and scores the
responses against the references (zoo.evaluation.generation): ROUGE-L F (the objective: the exact
match of a written headline is 0 for nearly every run, and would tie every search trial), exact
match, chrF, and the response log-likelihood per token under teacher forcing. A record of schema 2,
upgraded on read, has no chrF: its rows show none. Each evaluation pair's reference and the
responses before and after training go to ``generations.jsonl``.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from zoo.evaluation.generation import evaluate_generation
from zoo.runtime.written import write_text
from zoo.tasks.config import TaskConfig
from zoo.tasks.generation import GenerationFormulation as Prompting
from zoo.tasks.generation import generation_formulation, response_loss
from zoo.tasks.generation_tasks import GENERATION_TASKS, build_generation_task
from zoo.tasks.kind import Evaluation, TaskKind, register_task_kind
from zoo.tasks.metric import MetricSpec
from zoo.tasks.pairs import GenerationData, Pair

ROUGE_L = MetricSpec("rouge_l", "ROUGE-L", per_example=True)
EXACT_MATCH = MetricSpec("exact_match", "exact match", per_example=True, binary=True)
CHRF = MetricSpec("chrf", "chrF", per_example=True)
LOG_LIKELIHOOD = MetricSpec("log_likelihood_per_token", "log-lik / token")


def next_token_logits(model: nn.Module, batch: dict) -> torch.Tensor:
    """(B, V) logits at the end of each left-padded prompt: the forward pass timed against the base model's."""
    return model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], logits_to_keep=1).logits[:, -1]


class GenerationRunFormulation:
    """A generation task's prompts and responses for one tokenizer (zoo.tasks.generation), as the runner uses them."""

    head = None
    label_token_ids = None

    def __init__(self, prompting: Prompting):
        self.prompting = prompting

    def train_batches(self, examples: list[Pair], batch_size: int, seed: int | None) -> list[dict]:
        return self.prompting.training_batches(examples, batch_size, seed)

    def trainable(self, model: nn.Module) -> nn.Module:
        return model

    def loss(self, module: nn.Module, batch: dict) -> torch.Tensor:
        return response_loss(module, batch)

    def evaluate(self, model: nn.Module, examples: list[Pair], batch_size: int, accelerator=None) -> Evaluation:
        return evaluate_generation(model, examples, self.prompting, batch_size, accelerator)

    def cache_identity(self, examples: list[Pair], batch_size: int) -> tuple[list[dict], list]:
        """The prompts' and the teacher-forced references' tokens, the decoding's settings, the reference texts and the
        metrics scored (an entry stored before the kind scored chrF is a miss, not a zero-shot row without it)."""
        p = self.prompting
        inputs = p.prompt_batches(examples, batch_size) + p.training_batches(examples, batch_size, seed=None)
        return inputs, [
            "generate",
            p.max_new_tokens,
            p.eos_token_id,
            p.pad_token_id,
            [e.response for e in examples],
            [m.name for m in GenerationKind.metrics],
        ]

    def timing(self, examples: list[Pair], batch_size: int) -> tuple[list[dict], object]:
        return self.prompting.prompt_batches(examples, batch_size), next_token_logits


class GenerationKind(TaskKind):
    name = "generation"
    metrics = (ROUGE_L, EXACT_MATCH, CHRF, LOG_LIKELIHOOD)
    model_kinds = ("causal_lm",)
    builtin_tasks = tuple(GENERATION_TASKS)
    outputs = "generations.jsonl"

    def check_task(self, task: TaskConfig) -> None:
        """A generation task is a built-in one, written after the template's prompt, with room for the response."""
        if task.path is not None or task.dataset is not None or task.name not in GENERATION_TASKS:
            raise ValueError(
                f"task.kind={self.name} reads the built-in generation tasks {sorted(GENERATION_TASKS)}, got task.name="
                f"{task.name!r}" + (" with task.path/task.dataset" if task.path or task.dataset else "")
            )
        if task.formulation != "prompt":
            raise ValueError(
                f"a generation task writes its response after the prompt: task.formulation must be prompt, "
                f"got {task.formulation!r}"
            )
        if task.max_new_tokens >= task.max_length:
            raise ValueError(
                f"max_new_tokens ({task.max_new_tokens}) must be below max_length ({task.max_length}): the prompt gets the rest"
            )

    def load(self, task: TaskConfig) -> GenerationData:
        return build_generation_task(task)

    def formulate(
        self,
        task: TaskConfig,
        tokenizer,
        model_kind: str,
        *,
        name: str,
        data: GenerationData,
        demonstrations: bool,
        model: nn.Module,
    ) -> GenerationRunFormulation:
        return GenerationRunFormulation(generation_formulation(task, tokenizer, data.train, demonstrations))

    def write_outputs(self, folder: Path, data: GenerationData, before: Evaluation | None, after: Evaluation) -> None:
        rows = [
            {
                "index": i,
                "text": p.text,
                "reference": p.response,
                "response": after.outputs[i],
                "before": before.outputs[i] if before is not None else None,
            }
            for i, p in enumerate(data.eval)
        ]
        write_text(
            folder / self.outputs, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), "the generated answers"
        )

    def upgrade_v2(self, record: dict) -> dict:
        scores = record.pop("generation")
        for name in ("eval", "accuracy", "macro_f1"):
            record.pop(name)
        matches, rouge = record.pop("eval_correct", None), record.pop("eval_rouge_l", None)
        per_example = {"rouge_l": rouge, "exact_match": [int(m) for m in matches] if matches is not None else None}
        kept = {"rouge_l", "exact_match", "log_likelihood_per_token"}
        return {
            **record,
            "objective_metric": ROUGE_L.name,
            "scores": {k: v for k, v in scores.items() if k in kept},
            "example_scores": {k: v for k, v in per_example.items() if v is not None},
            "eval_details": {k: v for k, v in scores.items() if k not in kept},
            "baseline_scores": {b: {k: v for k, v in s.items() if k in kept} for b, s in record["baseline_scores"].items()},
        }


GENERATION = register_task_kind(GenerationKind())
