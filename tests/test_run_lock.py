"""One run at a time in a run folder (zoo.runtime.run_lock), and a sweep's workers that end once their launcher is gone
(zoo.runtime.pool_worker)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from zoo.runtime.run_lock import LOCK

pytestmark = pytest.mark.launches

CHEAP = ["model.pretrain_steps=0", "trainer=smoke", "task.n_train=16", "task.n_eval=8", "save_adapter=false"]
HOLD = """
import sys, time
from zoo.runtime.run_lock import owning
with owning(sys.argv[1]):
    print("held", flush=True)
    time.sleep(600)
"""
WORKERS = """
import os, sys, time
from joblib import Parallel, delayed

def job(i, folder):
    from zoo.runtime import pool_worker
    with pool_worker.job():
        open(f"{folder}/pid-{os.getpid()}", "w").write(str(os.getpid()))
        time.sleep(8)
        open(f"{folder}/done-{i}", "w").write("")

Parallel(n_jobs=2)(delayed(job)(i, sys.argv[1]) for i in range(2))
"""


def _wait_for(condition, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"waited {seconds}s for {what}"
        time.sleep(0.2)


def test_a_second_launch_waits_for_the_holder_it_names_and_a_killed_holder_releases_the_folder(tmp_path):
    folder = tmp_path / "run"
    env = {**os.environ, "HOME": str(tmp_path / "home")}
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(folder)], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert holder.stdout.readline() == "held\n"
        assert f"process {holder.pid} on " in (folder / LOCK).read_text()
        log = tmp_path / "second.log"  # its output and Hydra's log lines (on stdout) together
        with open(log, "w") as output:
            second = subprocess.Popen(
                [sys.executable, "-m", "zoo.runner.run", *CHEAP, "resume=true", f"hydra.run.dir={folder}"],
                stdout=output,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=tmp_path,
            )
        waiting = f"{folder} is in use by another run (process {holder.pid} on "
        _wait_for(lambda: waiting in log.read_text() or second.poll() is not None, 180, "the second launch to wait")
        assert second.poll() is None, log.read_text()[-3000:]
        time.sleep(2)
        assert not (folder / "metrics.json").exists()  # still waiting: it has not run
    finally:
        holder.send_signal(signal.SIGKILL)  # as a killed launcher's worker would die: no clean release
        holder.wait()
    assert second.wait(timeout=600) == 0, log.read_text()[-3000:]
    assert "lora (prompt): accuracy" in log.read_text()
    assert json.loads((folder / "metrics.json").read_text())["method"] == "lora"
    assert not (folder / LOCK).exists()  # released (and removed) when the run ended


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "zombie" not in Path(f"/proc/{pid}/status").read_text()


def test_a_sweeps_workers_finish_their_jobs_and_exit_once_the_launcher_is_killed(tmp_path):
    launcher = subprocess.Popen([sys.executable, "-c", WORKERS, str(tmp_path)], env={**os.environ, "HOME": str(tmp_path)})
    try:
        _wait_for(lambda: len(list(tmp_path.glob("pid-*"))) == 2, 120, "both workers to start a job")
        workers = [int(p.read_text()) for p in tmp_path.glob("pid-*")]
    finally:
        launcher.kill()
        launcher.wait()
    assert all(_alive(pid) for pid in workers)  # the jobs in flight go on
    _wait_for(lambda: not any(_alive(pid) for pid in workers), 30, "the workers to exit after their jobs")
    assert sorted(p.name for p in tmp_path.glob("done-*")) == ["done-0", "done-1"]  # each finished the job it had
