"""The repository speaks of the project only: every text file git tracks is free of a machine's own paths, of
references to an issue tracker its readers cannot see, and of words about the environment zoo was built in.

This file names the patterns, so it is not searched itself.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from benchmarks.results_md import portable

ROOT = Path(__file__).resolve().parents[1]

MACHINE_PATHS = re.compile(r"/root/|/home/[^/\s]+/|/work/|/tmp/|/Users/|\b[A-Z]:\\")
"""Folders of one machine (a home, a workspace, a scratch folder, a Windows drive): a user's checkout has none of them;
example commands write under the repository (``.gpu/``, ``gpu-dry``)."""
ISSUES = re.compile(r"\bissues? #?\d+|\(#\d+\)", re.IGNORECASE)
"""'issue 18', 'issues #3', '(#28)'; not a markdown heading, a colour code or a Python comment."""
ENVIRONMENT = re.compile(r"\blent\b|\bdevice tool\b|\bthe session\b|\bsandbox|\bfiles_at\b|\brun\(command=", re.IGNORECASE)
"""How the project's machines were borrowed and driven: a lent GPU machine, the tool that ran commands on it (its
run(command=...) call, its files_at folder), the session or sandbox of the work. A user runs zoo on their own machine."""


CHECKS = {
    "a machine's own path": (MACHINE_PATHS, lambda path: True),
    "an issue number": (ISSUES, lambda path: True),
    "a word about the build environment": (ENVIRONMENT, lambda path: True),
}


@pytest.fixture(scope="module")
def tracked_text() -> dict[str, str]:
    """Each text file git tracks (UTF-8; images, weights and other binaries left out), by its path in the repository."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    names = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout.decode().split("\0")
    me = Path(__file__).resolve().relative_to(ROOT).as_posix()
    texts = {}
    for name in filter(None, names):
        path = ROOT / name
        if name == me or not path.is_file():
            continue
        try:
            texts[name] = path.read_bytes().decode("utf-8")
        except UnicodeDecodeError:
            continue
    return texts


@pytest.mark.parametrize("what", CHECKS)
def test_no_tracked_file_holds(what, tracked_text):
    pattern, applies = CHECKS[what]
    found = [
        f"{name}:{number}: {match.group()!r}"
        for name, text in tracked_text.items()
        if applies(name)
        for number, line in enumerate(text.splitlines(), 1)
        for match in pattern.finditer(line)
    ]
    assert not found, f"{len(found)} x {what}:\n" + "\n".join(found)


def test_the_patterns_find_what_they_name():
    assert MACHINE_PATHS.search("--out /home/ana/runs") and MACHINE_PATHS.search(r"C:\Users\ana")
    assert not MACHINE_PATHS.search("multirun/benchmark-full benchmarks/results/step_speed.md")
    assert ISSUES.search("the benchmark (issue 6)") and ISSUES.search("fixed (#28)")
    assert not ISSUES.search("## 3. Results\ncolor: #1f77b4  # 2 steps")
    assert ENVIRONMENT.search("through a lent machine") and not ENVIRONMENT.search("equivalent, silently, scope='session'")


def test_results_md_writes_the_command_as_a_reader_types_it():
    """RESULTS.md is committed: its Command line names paths under the repository relatively, others by a placeholder."""
    command = shlex.join(
        [
            "python",
            "-m",
            "benchmarks.suite",
            "--out",
            "/scratch/b",
            f"--results={ROOT / 'benchmarks' / 'RESULTS.md'}",
            "predictions_cache=/scratch/p",
            "seed=0,1",
        ]
    )
    assert portable(command) == (
        "python -m benchmarks.suite --out <out> --results=benchmarks/RESULTS.md predictions_cache=<predictions_cache> seed=0,1"
    )
