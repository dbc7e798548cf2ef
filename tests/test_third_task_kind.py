"""A third task kind, registered from this file alone: multiple choice scored by each option's log-likelihood.

Nothing under zoo/ knows it. Registered with zoo.task_kinds.register_task_kind, it runs through
the same pipeline as classification and generation (``task.kind=multiple_choice``): LoRA trains
on the options' cross-entropy, the zero-shot baseline scores the untrained model, the record
holds the kind's own metrics, and ``zoo-report`` gives the row its interval and the paired test.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from hydra import compose, initialize_config_module

from zoo.io.records import RunRecord
from zoo.report.table import load_runs, report, summarise
from zoo.runner.config import store_configs
from zoo.runner.pipeline import run
from zoo.runtime.atomic import write_text
from zoo.task_kinds import MetricSpec, TaskKind, get_task_kind, register_task_kind, unregister_task_kind
from zoo.tasks.kind import Evaluation
from zoo.tasks.synthetic import synthetic_sentiment

CHOICE_ACCURACY = MetricSpec("choice_accuracy", "choice accuracy", per_example=True, binary=True)
MARGIN = MetricSpec("option_margin", "option margin")
OPTIONS = ("bad", "good")


@dataclass(frozen=True)
class Question:
    text: str
    options: tuple[str, ...]
    answer: int


@dataclass(frozen=True)
class Questions:
    train: list[Question]
    eval: list[Question]
    splits_read: tuple[str, ...] = ("train", "test")


def _questions(examples, seed: int) -> list[Question]:
    """A review and the two label words in a random order; the answer is the index of its class's word."""
    rng = random.Random(seed)
    out = []
    for e in examples:
        options = OPTIONS if rng.random() < 0.5 else OPTIONS[::-1]
        out.append(Question(e.text, options, options.index(OPTIONS[e.label])))
    return out


class ChoiceFormulation:
    """Each question's prompt followed by each option, right padded; an option's score is its tokens' summed log-probability."""

    head = None
    label_token_ids = None

    def __init__(self, tokenizer, template: str):
        self.tokenizer, self.prompt = tokenizer, template.split("{answer}")[0].rstrip()

    def _ids(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def train_batches(self, examples: list[Question], batch_size: int, seed: int | None) -> list[dict]:
        order = list(range(len(examples)))
        if seed is not None:
            random.Random(seed).shuffle(order)
        return [self._batch(examples, order[i : i + batch_size]) for i in range(0, len(order), batch_size)]

    def _batch(self, examples: list[Question], chosen: list[int]) -> dict:
        rows, marks = [], []
        for i in chosen:
            prompt = self._ids(self.prompt.replace("{text}", examples[i].text))
            for option in examples[i].options:
                ids = self._ids(self.prompt.replace("{text}", examples[i].text) + " " + option)
                rows.append(ids)
                marks.append([0] * len(prompt) + [1] * (len(ids) - len(prompt)))
        width = max(map(len, rows))
        pad = self.tokenizer.pad_token_id or 0
        return {
            "input_ids": torch.tensor([r + [pad] * (width - len(r)) for r in rows]),
            "attention_mask": torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows]),
            "option_mask": torch.tensor([m + [0] * (width - len(m)) for m in marks]),
            "labels": torch.tensor([examples[i].answer for i in chosen]),
            "index": torch.tensor(chosen),
        }

    def scores(self, model, batch: dict) -> torch.Tensor:
        """(B, options): each option's summed token log-probability after its prompt."""
        device = next(model.parameters()).device
        ids, mask = batch["input_ids"].to(device), batch["attention_mask"].to(device)
        logp = model(input_ids=ids, attention_mask=mask).logits[:, :-1].float().log_softmax(-1)
        tokens = logp.gather(-1, ids[:, 1:, None])[..., 0] * batch["option_mask"][:, 1:].to(device)
        return tokens.sum(-1).view(len(batch["labels"]), -1)

    def trainable(self, model):
        return model

    def loss(self, module, batch: dict) -> torch.Tensor:
        return F.cross_entropy(self.scores(module, batch), batch["labels"].to(next(module.parameters()).device))

    @torch.no_grad()
    def evaluate(self, model, examples: list[Question], batch_size: int, accelerator=None) -> Evaluation:
        picked, margins = [], []
        for batch in self.train_batches(examples, batch_size, seed=None):
            s = self.scores(model, batch)
            picked += s.argmax(-1).tolist()
            top = s.topk(2, dim=-1).values
            margins += (top[:, 0] - top[:, 1]).tolist()
        correct = [int(p == q.answer) for p, q in zip(picked, examples)]
        return Evaluation(
            {"choice_accuracy": sum(correct) / len(correct), "option_margin": sum(margins) / len(margins)},
            {"choice_accuracy": correct},
            picked,
        )

    def cache_identity(self, examples: list[Question], batch_size: int) -> tuple[list[dict], list]:
        return self.train_batches(examples, batch_size, seed=None), ["options summed log-likelihood"]

    def timing(self, examples: list[Question], batch_size: int):
        return self.train_batches(examples, batch_size, seed=None), self.scores


class MultipleChoice(TaskKind):
    name = "multiple_choice"
    metrics = (CHOICE_ACCURACY, MARGIN)
    model_kinds = ("causal_lm",)
    outputs = "choices.jsonl"

    def load(self, task) -> Questions:
        data = synthetic_sentiment(task.n_train, task.n_eval, task.seed)
        return Questions(_questions(data.train, task.seed), _questions(data.eval, task.seed + 1))

    def formulate(self, task, tokenizer, model_kind, *, name, data, demonstrations, model) -> ChoiceFormulation:
        return ChoiceFormulation(tokenizer, task.template)

    def write_outputs(self, folder: Path, data: Questions, before, after) -> None:
        rows = [{"index": i, "answer": q.answer, "picked": after.outputs[i]} for i, q in enumerate(data.eval)]
        write_text(folder / self.outputs, "".join(json.dumps(r) + "\n" for r in rows))


@pytest.fixture(scope="module")
def kind():
    registered = register_task_kind(MultipleChoice())
    yield registered
    unregister_task_kind(registered.name)


def _run(tmp_path: Path, row: str, seed: int) -> RunRecord:
    store_configs()
    with initialize_config_module(config_module="zoo.conf", version_base=None):
        cfg = compose(
            "config",
            overrides=[
                "task.kind=multiple_choice",
                "task.name=choices",
                "task.n_train=64",
                "task.n_eval=32",
                "trainer.max_steps=60",
                "trainer.progress=false",
                "save_adapter=false",
                f"predictions_cache={tmp_path / 'cache'}",
                f"seed={seed}",
                row,
            ],
        )
    out = tmp_path / "sweep" / f"{row.partition('=')[2]}-seed{seed}"
    out.mkdir(parents=True)
    return run(cfg, out)


@pytest.fixture(scope="module")
def sweep(kind, tmp_path_factory) -> Path:
    """LoRA and the zero-shot baseline, two seeds each, on the same evaluation questions."""
    tmp = tmp_path_factory.mktemp("third-kind")
    for row in ("method=lora", "baseline=zero_shot"):
        for seed in (0, 1):
            _run(tmp, row, seed)
    return tmp / "sweep"


def test_the_kind_registers_with_its_metrics_and_refuses_a_second_registration(kind):
    assert get_task_kind("multiple_choice") is kind and kind.objective is CHOICE_ACCURACY
    with pytest.raises(ValueError, match="task kind 'multiple_choice' is already registered"):
        register_task_kind(MultipleChoice())


def test_a_run_of_the_third_kind_records_its_own_metrics_and_answers(sweep):
    record = RunRecord.read(sweep / "lora-seed0" / "metrics.json")
    assert record.task_kind == "multiple_choice" and record.objective_metric == "choice_accuracy"
    assert set(record.scores) == {"choice_accuracy", "option_margin"} and len(record.example_scores["choice_accuracy"]) == 32
    assert record.scores["choice_accuracy"] == sum(record.example_scores["choice_accuracy"]) / 32
    assert set(record.baseline_scores) == {"zero_shot"} and set(record.baseline_scores["zero_shot"]) == set(record.scores)
    assert record.scores["choice_accuracy"] > record.baseline_scores["zero_shot"]["choice_accuracy"] + 0.2  # LoRA learnt the task
    assert record.flips is None and record.label_names == []
    answers = [json.loads(line) for line in (sweep / "lora-seed0" / "choices.jsonl").read_text().splitlines()]
    assert [a["picked"] == a["answer"] for a in answers] == [bool(c) for c in record.example_scores["choice_accuracy"]]


def test_the_report_gives_the_third_kind_a_row_an_interval_and_a_paired_test(sweep):
    rows = summarise(load_runs(sweep), reference="zero_shot")
    lora = next(r for r in rows if r["method"] == "lora")
    assert lora["seeds"] == 2 and lora["choice_accuracy_low"] <= lora["choice_accuracy"] <= lora["choice_accuracy_high"]
    assert lora["reference_test"] == "differs" and lora["vs_reference"] > 0.2
    assert (
        lora["vs_reference_low"] > 0
        and lora["base_score"] == next(r for r in rows if r["method"] == "zero_shot")["choice_accuracy"]
    )
    table = report(sweep, reference="zero_shot")
    assert (
        "| method | config | task | trainable | % | choice accuracy [95% CI] | vs zero_shot [95% CI] | sd runs | sd seed / sample "
        "| option margin | zero-shot |"
    ) in table
    assert [line.split(" | ")[0] for line in table.splitlines()[2:4]] == ["| lora", "| zero_shot"]
    assert lora["reference_p"] < 0.05 and lora["reference_p_holm"] == lora["reference_p"]  # a permutation test over the two seeds
    assert table.endswith(f"\n\nminimum detectable difference (80% power, 5% level, paired): {lora['reference_mdd']:.3f}\n")
