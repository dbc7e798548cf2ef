"""``benchmarks/gpu_check.sh`` and its Python steps, on the CPU: what the GPU machine will run, short of the GPU.

The steps run in-process here; the whole script's CPU dry run (``ZOO_GPU_CHECK_DEVICE=cpu``) starts
about ten Python processes, a minute or two on shared cores, so it is marked slow.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
from pathlib import Path

import pytest
import torch
import transformers

from benchmarks import gpu_check, step_speed
from zoo.models.language import VOCABULARY
from zoo.models.tiny import tiny_model
from zoo.models.tokenizer import word_tokenizer
from zoo.tasks.config import TaskConfig
from zoo.tasks.formulation import formulation_for
from zoo.testing.models import checks_device, make_model

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu_check.sh"


def test_the_script_parses():
    assert subprocess.run(["bash", "-n", str(SCRIPT)], capture_output=True).returncode == 0


def test_contract_checks_run_where_zoo_test_device_says(monkeypatch):
    assert checks_device() == torch.device("cpu") and make_model("tiny-llama").device.type == "cpu"
    monkeypatch.setenv("ZOO_TEST_DEVICE", "tpu")
    with pytest.raises(ValueError, match=r"ZOO_TEST_DEVICE='tpu' is not one of \('cpu', 'cuda'\)"):
        make_model("tiny-llama")
    monkeypatch.setenv("ZOO_TEST_DEVICE", "cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match="ZOO_TEST_DEVICE=cuda but no CUDA device is visible"):
        make_model("tiny-llama")


def test_an_architecture_travels_without_weights_and_gets_seeded_ones(tmp_path):
    gpu_check.arch("tiny", tmp_path / "arch")
    assert (tmp_path / "arch" / "config.json").is_file() and not list((tmp_path / "arch").glob("*.safetensors"))
    gpu_check.build(tmp_path / "arch", tmp_path / "a")
    gpu_check.build(tmp_path / "arch", tmp_path / "b")
    a, b = (transformers.AutoModelForCausalLM.from_pretrained(tmp_path / n) for n in "ab")
    reference = tiny_model("tiny-llama", vocab_size=len(word_tokenizer(VOCABULARY)))
    assert a.config.hidden_size == reference.config.hidden_size and a.config.vocab_size == reference.config.vocab_size
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))  # the same seed, the same weights
    assert transformers.AutoTokenizer.from_pretrained(tmp_path / "a").get_vocab() == word_tokenizer(VOCABULARY).get_vocab()


JUNIT = """<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest" errors="0" failures="1" skipped="1"
 tests="4" time="12.5"><testcase classname="tests.test_contract" name="test_a[lora-tiny-llama]" time="0.1"/>
<testcase classname="tests.test_contract" name="test_b[lora-tiny-llama]" time="0.1"/>
<testcase classname="tests.test_contract" name="test_c[ia3-tiny-gpt2]" time="0.1"><failure message="AssertionError: no parameter changed&#10;second line">trace</failure></testcase>
<testcase classname="tests.test_contract" name="test_d" time="0.1"><skipped message="no GPU"/></testcase></testsuite></testsuites>"""


def test_the_contract_summary_counts_and_lists_failures(tmp_path):
    (tmp_path / "r.xml").write_text(JUNIT)
    counts = gpu_check.contract(tmp_path / "r.xml", tmp_path / "r.md", "Contract tests on cuda")
    assert counts == {"tests": 4, "failures": 1, "errors": 0, "skipped": 1}
    assert (tmp_path / "r.md").read_text() == (
        "# Contract tests on cuda\n\n2 passed, 1 failed, 0 errors, 1 skipped in 12 s (4 tests).\n\nFailures:\n\n"
        "- `tests.test_contract::test_c[ia3-tiny-gpt2]`: AssertionError: no parameter changed\n"
    )
    assert gpu_check.contract(tmp_path / "none.xml", tmp_path / "n.md", "T")["errors"] == 1
    assert "No results: pytest wrote no none.xml" in (tmp_path / "n.md").read_text()


def test_the_runs_table_reads_metrics_and_marks_failed_runs(tmp_path):
    (tmp_path / "bf16").mkdir()
    (tmp_path / "broken").mkdir()
    metrics = {
        "device": "cuda",
        "device_name": "NVIDIA H200",
        "train_steps": 20,
        "objective_metric": "accuracy",
        "scores": {"accuracy": 0.84, "macro_f1": 0.83},
        "train_seconds": 3.25,
        "peak_memory_bytes": 3 * 2**20,
        "run_config": {
            "model": {"dtype": "float32", "gradient_checkpointing": True},
            "trainer": {"mixed_precision": "bf16", "max_steps": 20},
        },
    }
    (tmp_path / "bf16" / "metrics.json").write_text(json.dumps(metrics))
    gpu_check.runs(tmp_path / "runs.md", [tmp_path / "bf16", tmp_path / "broken"])
    rows = (tmp_path / "runs.md").read_text().splitlines()[2:]
    assert rows == [
        "| bf16 | NVIDIA H200 | 20 | accuracy 0.840 | 3.2 | 3.0 | dtype=float32, gradient_checkpointing=True, mixed_precision=bf16 |",
        "| broken | - | - | - | - | - | failed: no metrics.json (see the log) |",
    ]


def test_step_speed_measures_a_model_folder(tmp_path):
    gpu_check.arch("tiny", tmp_path / "arch")
    gpu_check.build(tmp_path / "arch", tmp_path / "model")
    base, tokenizer = step_speed.build_base("tiny", tmp_path / "model", "bfloat16")
    assert base.dtype == torch.bfloat16
    formulation = formulation_for(TaskConfig(), tokenizer, "causal_lm")
    batch = {
        "input_ids": torch.randint(10, base.config.vocab_size, (2, 8)),
        "attention_mask": torch.ones(2, 8, dtype=torch.long),
        "labels": torch.tensor([0, 1]),
    }
    row = step_speed.measure("lora", base, formulation, batch, warmup=0, repeats=1)
    assert (
        row["trainable"] == row["peft_trainable"] > 0 and row["zoo_s"] > 0 and "zoo_peak" not in row
    )  # no allocator peak on CPU
    args = argparse.Namespace(
        model="tiny",
        model_dir=tmp_path / "model",
        dtype="bfloat16",
        quantization=None,
        device="cpu",
        batch_size=2,
        seq_len=8,
        repeats=1,
        warmup=0,
        methods=["lora"],
    )
    text = step_speed.table([row], args, 1.0)
    assert "(model, bfloat16, batch 2 x 8 tokens, cpu)" in text and f"--model-dir {tmp_path / 'model'} --dtype bfloat16" in text
    assert text.count("| lora |") == 1 and "peak zoo" not in text


@pytest.mark.slow
def test_the_dry_run_writes_both_tables(tmp_path):
    env = {**os.environ, "ZOO_GPU_CHECK_DEVICE": "cpu", "OUT": str(tmp_path / "out"), "HOME": str(tmp_path / "home")}
    done = subprocess.run(["bash", str(SCRIPT)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:]
    contract = (tmp_path / "out" / "gpu_contract.md").read_text()
    assert "# Contract tests on cpu (ZOO_TEST_DEVICE=cpu)" in contract and ", 0 failed, 0 errors" in contract
    steps = (tmp_path / "out" / "gpu_step_speed.md").read_text()
    for stage in (
        "contract tests",
        "random weights for tiny-llama",
        "step: lora, ia3, prompt_tuning (float32)",
        "step: lora (bfloat16)",
        "run: bf16 autocast + gradient checkpointing",
    ):
        assert f"| {stage} | ok |" in steps
    assert steps.count("| lora |") == 2 and "| ia3 |" in steps and "| prompt_tuning |" in steps
    assert "| bf16-checkpointed | cpu | 2 |" in steps
