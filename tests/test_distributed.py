"""Two processes (accelerate launch, gloo on CPU) train to what one process trains, with the same global batch.

Each case runs ``zoo`` once in one process and once under ``accelerate launch --config_file
conf/accelerate/two_processes.yaml`` (the shipped config) and compares the records and the
adapters. The batch sizes are chosen so that the last training batch is odd and the processes'
slices differ in size (5 rows: 3 + 2), one batch leaves a process with no rows (1 row: 1 + 0),
and the evaluation batches do not divide among the processes, so that a duplicated or dropped
example would show.

Tolerance: the processes average their gradients in float32 (gloo all-reduce) where one
process sums them in another order; over 6 AdamW steps the adapters agree to 2e-5 and the
losses to 1e-5 relative. Predictions are equal.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from zoo.io.records import RunRecord

pytestmark = pytest.mark.launches

ACCELERATE_CONFIG = Path(__file__).parents[1] / "conf" / "accelerate" / "two_processes.yaml"
COMMON = [
    "model=tiny-llama",
    "latency_batches=1",
    "task.shots_per_class=8",
    "task.n_eval=13",
    "predictions_cache=null",
    "trainer.max_steps=6",
    "trainer.batch_size=5",
    "trainer.eval_every=2",
    "trainer.checkpoint_every=3",
    "trainer.progress=false",
    "trainer.device=cpu",
]
CASES = {
    "lora": ["method=lora"],
    "prompt_tuning": ["method=prompt_tuning"],
    "closed_form_head": ["method=closed_form_head"],
    "head_formulation": ["method=lora", "task.formulation=head"],
    "lora_plus": ["method=lora_plus"],
    "galore": ["method=galore"],
}
"""The four formulations of training checked: two gradient methods, the gradient-free fit, and the formulation whose head trains
beside the method; and the two methods that declare their optimiser (parameter groups at two rates; galore-torch's optimiser,
whose gradient projections are SVDs of the gradients the processes average)."""
FULL_ONLY = {"prompt_tuning", "galore", "lora_plus", "head_formulation"}
"""Cases only the full tier (--full) runs. The default tier keeps one of each way a run trains on two processes: by
gradient steps (LoRA) and by the gradient-free fit, whose features the processes gather (the closed-form head). The full
tier adds prompt tuning (a gradient method on the prompt formulation, as LoRA), the head formulation (a head trained
beside the method) and the two methods whose optimiser their spec builds (LoRA+'s parameter groups, GaLore's projections)."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _zoo(out: Path, overrides: list[str], processes: int, home: Path, sweep: bool = False) -> subprocess.CompletedProcess:
    launcher = (
        []
        if processes == 1
        else [
            "-m",
            "accelerate.commands.launch",
            "--config_file",
            str(ACCELERATE_CONFIG),
            "--main_process_port",
            str(_free_port()),
        ]
    )
    folder = f"hydra.sweep.dir={out}" if sweep else f"hydra.run.dir={out}"
    command = [sys.executable, *launcher, "-m", "zoo.runner.run", *(["-m"] if sweep else []), *COMMON, *overrides, folder]
    env = {**os.environ, "HOME": str(home), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


@pytest.fixture(
    scope="module", params=[pytest.param(case, marks=[pytest.mark.full] if case in FULL_ONLY else []) for case in sorted(CASES)]
)
def pair(request, tmp_path_factory):
    """(one-process run folder, two-process run folder, the two-process run's stdout) of a case."""
    root = tmp_path_factory.mktemp(request.param)
    _zoo(root / "one", CASES[request.param], 1, root / "home")
    done = _zoo(root / "two", CASES[request.param], 2, root / "home")
    return root / "one", root / "two", done.stdout


def _adapter(folder: Path) -> dict[str, torch.Tensor]:
    tensors = load_file(folder / "adapter" / "adapter_model.safetensors")
    if (folder / "head.safetensors").is_file():
        tensors.update({f"head.{k}": v for k, v in load_file(folder / "head.safetensors").items()})
    return tensors


def test_two_processes_learn_what_one_learns(pair):
    one, two, _ = pair
    a, b = _adapter(one), _adapter(two)
    assert a.keys() == b.keys() and a
    for name in a:
        torch.testing.assert_close(b[name], a[name], atol=2e-5, rtol=1e-4, msg=f"{name} differs between 1 and 2 processes")
    moved = [name for name in a if a[name].abs().max() > 0]
    assert moved, "nothing was learnt: the comparison would be vacuous"


def test_losses_evaluations_and_predictions_agree(pair):
    one, two, _ = pair
    r1, r2 = RunRecord.read(one / "metrics.json"), RunRecord.read(two / "metrics.json")
    assert (r1.processes, r2.processes) == (1, 2)
    assert r2.n_eval == r1.n_eval == 13
    assert r2.scores == r1.scores and r2.example_scores == r1.example_scores  # every example predicted once, the same way
    assert r2.eval_details == r1.eval_details and r2.flips == r1.flips
    assert r2.baseline_scores == r1.baseline_scores
    assert r2.optimizer == r1.optimizer  # the same optimiser, groups and state on every process
    assert len(r2.history) == len(r1.history)
    for h1, h2 in zip(r1.history, r2.history):
        if "loss" in h1:  # a gradient run: the global batch's loss every eval_every steps
            assert h2["step"] == h1["step"] and h2["loss"] == pytest.approx(h1["loss"], rel=1e-5)
            assert h2["accuracy"] == h1["accuracy"]
        else:  # the fit: its statistics were summed over both processes' shares of the batches
            assert h2["fit"] == pytest.approx(h1["fit"], rel=1e-6)
    if r1.final_loss is not None:
        assert r2.final_loss == pytest.approx(r1.final_loss, rel=1e-5)


def test_only_the_main_process_writes(pair):
    one, two, stdout = pair
    files = {p.relative_to(two) for p in two.rglob("*")}
    assert files == {p.relative_to(one) for p in one.rglob("*")}  # no second .hydra, checkpoint or record
    assert stdout.count("zero_shot accuracy") == 1 and stdout.count(" trainable (") == 1, stdout  # the main process's lines only
    log = (two / "run.log").read_text()
    assert log.count("zero_shot accuracy") == 1, log


@pytest.mark.full  # a matrix over methods: the cases above run each way of training on two processes by default
def test_every_registered_method_trains_on_two_processes_as_on_one(tmp_path):
    """A 2-step sweep over every method (``+sweep=all_methods``) on 1 and on 2 processes: the same adapters and predictions."""
    for processes in (1, 2):
        _zoo(
            tmp_path / f"p{processes}",
            ["+sweep=all_methods", "trainer.max_steps=2", "trainer.eval_every=0"],
            processes,
            tmp_path / "home",
            sweep=True,
        )
    runs = sorted(p.parent.name for p in (tmp_path / "p1").glob("*/metrics.json"))
    assert len(runs) >= 10 and runs == sorted(p.parent.name for p in (tmp_path / "p2").glob("*/metrics.json"))
    for run in runs:
        one, two = tmp_path / "p1" / run, tmp_path / "p2" / run
        a, b = _adapter(one), _adapter(two)
        assert a.keys() == b.keys() and a, run
        for name in a:
            torch.testing.assert_close(
                b[name], a[name], atol=2e-5, rtol=1e-4, msg=f"{run}: {name} differs between 1 and 2 processes"
            )
        r1, r2 = RunRecord.read(one / "metrics.json"), RunRecord.read(two / "metrics.json")
        evaluation = lambda r: (r.scores, r.example_scores, r.eval_details, r.flips)  # noqa: E731
        assert (r2.processes, evaluation(r2)) == (2, evaluation(r1)), run


def test_the_shipped_accelerate_configs_load():
    from accelerate.commands.config.config_args import load_config_from_file

    folder = ACCELERATE_CONFIG.parent
    kinds = {path.stem: str(load_config_from_file(str(path)).distributed_type) for path in folder.glob("*.yaml")}
    assert {k: v.rsplit(".", 1)[-1] for k, v in kinds.items()} == {
        "two_processes": "MULTI_GPU",
        "fsdp": "FSDP",
        "deepspeed": "DEEPSPEED",
    }
