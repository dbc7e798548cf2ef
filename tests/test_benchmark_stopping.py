"""A benchmark launch stopped by SIGTERM (or by SIGINT where a background shell left it ignored) keeps what finished:
its record set and its session's wall time are written, and it says so in one line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from benchmarks.stopping import exit_status, stopping_on_signals

ROOT = Path(__file__).parents[1]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_in_the_block_raises_keyboard_interrupt_and_the_handlers_come_back(signum):
    before = signal.getsignal(signum)
    with pytest.raises(KeyboardInterrupt, match=f"stopped by {signal.Signals(signum).name}"), stopping_on_signals():
        os.kill(os.getpid(), signum)
        time.sleep(5)  # not slept out: the signal is handled at once, and its handler raises
    assert signal.getsignal(signum) is before


def test_a_stopped_launch_exits_130_with_one_line(capsys):
    def stopped() -> int:
        raise KeyboardInterrupt("stopped by SIGTERM")

    assert exit_status(stopped, "tune") == 130 and exit_status(lambda: 0, "tune") == 0
    assert capsys.readouterr().err == (
        "tune: stopped by SIGTERM; what finished is in the record set: run the same command again to go on\n"
    )


@pytest.mark.full  # a search launched in the background, stopped by SIGTERM after its first trials
def test_a_search_stopped_by_sigterm_keeps_its_finished_trials(tmp_path):
    out, records = tmp_path / "runs", tmp_path / "records"
    command = [sys.executable, "-m", "benchmarks.tune", "--profile", "smoke", "--out", str(out), "--records", str(records)]
    command += ["--tuned-dir", str(tmp_path / "tuned"), f"predictions_cache={tmp_path / 'predictions'}"]
    # SIGINT ignored, as a shell without job control leaves a command it starts in the background
    launch = subprocess.Popen(
        command, cwd=ROOT, stderr=subprocess.PIPE, text=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)
    )
    deadline = time.monotonic() + 600
    while len(list(out.rglob("metrics.json"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.5)
    launch.send_signal(signal.SIGTERM)
    _, stderr = launch.communicate(timeout=120)
    assert launch.returncode == 130 and stderr.endswith("run the same command again to go on\n"), stderr[-2000:]
    finished = list(out.rglob("metrics.json"))
    kept = [json.loads(line) for line in (records / "synthetic_sentiment.jsonl").read_text().splitlines()]
    assert len(kept) == len(finished) >= 2
    assert json.loads((records / "suite.json").read_text())["sessions"][0]["wall_seconds"] > 0
