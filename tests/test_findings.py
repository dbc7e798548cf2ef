"""RESULTS.md's findings and tables on constructed records whose answers are known: which row is better, by how much, Holm's
correction over a task's four comparisons, and the main table of tuned rows beside the default rows."""

from __future__ import annotations

import pytest
from records_helpers import record_dict

from benchmarks import findings, task_section
from zoo.io.records import RunRecord
from zoo.report.table import _entry

N = 40


def _run(method: str, right: list[int], baseline: str | None = None, formulation: str = "prompt") -> dict:
    answers = [int(i in right) for i in range(N)]
    record = RunRecord(
        **record_dict(
            method=method.removesuffix(" (tuned)"),
            baseline=baseline,
            formulation=formulation,
            scores={"accuracy": sum(answers) / N, "macro_f1": 0.5},
            example_scores={"accuracy": answers},
            eval_fingerprint="same",
            n_eval=N,
            task_config={"shots_per_class": None, "eval_split": "test", "seed": 0},
        )
    )
    return {**_entry(record, ""), "method": method}


RUNS = [
    _run("lora (tuned)", list(range(20))),
    _run("gift (tuned)", list(range(32))),  # 12 examples only GIFT gets right: McNemar p = 2 / 2**12
    _run("closed_form_head (tuned)", list(range(24))),
    _run("linear_probe", [*range(22), 24, 25], baseline="linear_probe", formulation="head"),  # 2 and 2 apart from the closed form
    _run("full_finetune (tuned)", list(range(30))),  # 2 fewer than GIFT, the best PEFT row
    _run("lora", list(range(10))),
]


def test_each_question_is_answered_with_its_interval_and_holm_over_the_task():
    answers = dict(findings.task_findings(RUNS))
    gift = answers["GIFT against LoRA"]
    assert (gift["a"], gift["b"], gift["difference"]) == ("gift (tuned)", "lora (tuned)", pytest.approx(0.3))
    assert gift["p"] == pytest.approx(2 / 2**12) and gift["p_holm"] == pytest.approx(4 * 2 / 2**12)
    assert gift["low"] > 0  # the interval holds only gains
    heads = answers["prompt-based against head-based classification"]
    assert (heads["a"], heads["b"]) == ("gift (tuned)", "linear_probe")  # the best of each kind, at tuned settings
    assert heads["p"] == pytest.approx(2 / 2**8) and heads["p_holm"] == pytest.approx(3 * 2 / 2**8)
    closed = answers["the closed-form head against the linear probe"]
    assert closed["difference"] == 0 and closed["p"] == 1 and closed["p_holm"] == 1 and closed["low"] < 0 < closed["high"]
    full = answers["full fine-tuning against the best PEFT method"]
    assert (full["a"], full["b"], full["p"], full["p_holm"]) == ("full_finetune (tuned)", "gift (tuned)", 0.5, 1.0)


def test_the_statements_say_who_is_better_and_what_stays_undecided():
    lines = dict(zip([q for q, *_ in findings.QUESTIONS], (findings.statement(q, f) for q, f in findings.task_findings(RUNS))))
    assert lines["GIFT against LoRA"].startswith(
        "- *GIFT against LoRA*: gift (tuned) scores higher. gift (tuned) minus lora (tuned): +0.300 accuracy [95% CI +"
    )
    assert "Holm-adjusted p = 0.00195" in lines["GIFT against LoRA"]
    assert lines["the closed-form head against the linear probe"].startswith(
        "- *the closed-form head against the linear probe*: undecided at this size. closed_form_head (tuned) minus linear_probe: "
        "+0.000 accuracy"
    )
    assert "detects" in lines["full fine-tuning against the best PEFT method"]
    missing = findings.task_findings([r for r in RUNS if r["method"] != "gift (tuned)"])
    assert missing[0] == ("GIFT against LoRA", None)
    assert findings.statement(*missing[0]).endswith(
        "not answered here (the task lacks one of the two rows, or they were not scored on the same examples)."
    )


def test_the_main_table_holds_the_tuned_rows_and_baselines_against_tuned_lora_and_the_defaults_come_second(tmp_path):
    lines = task_section.task_section("synthetic_sentiment", RUNS, tmp_path, None, None)
    text = "\n".join(lines)
    main, defaults = text.split("### Default rows")
    rows = [line.split(" | ")[0].removeprefix("| ") for line in main.splitlines() if line.startswith("| ") and "---" not in line][
        1:
    ]
    assert rows == [
        "gift (tuned)",
        "full_finetune (tuned)",
        "closed_form_head (tuned)",
        "linear_probe",
        "lora (tuned)",
    ]  # by score
    assert "| method | config | task | trainable | % | accuracy [95% CI] | vs lora (tuned) [95% CI]" in main
    assert "| lora | " in defaults and "vs lora [95% CI]" in defaults and "lora (tuned)" not in defaults
    assert "Learning rates, as run" in text and "lora (tuned) 0.001" in text
