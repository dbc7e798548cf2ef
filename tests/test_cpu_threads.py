"""A run's CPU thread count comes from its config (zoo.runtime.cpu_threads), not from a launcher's environment."""

from __future__ import annotations

import pytest
import torch

from zoo.runtime import cpu_threads


@pytest.fixture(autouse=True)
def _restore_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def _topology(root, cores: dict[int, tuple[int, int]]) -> None:
    """A fake /sys/devices/system/cpu: logical CPU -> (package, core)."""
    for cpu, (package, core) in cores.items():
        folder = root / f"cpu{cpu}" / "topology"
        folder.mkdir(parents=True)
        (folder / "physical_package_id").write_text(f"{package}\n")
        (folder / "core_id").write_text(f"{core}\n")


def test_hyperthread_siblings_count_once_and_only_the_allowed_cpus_count(tmp_path, monkeypatch):
    _topology(tmp_path, {0: (0, 0), 1: (0, 1), 2: (0, 0), 3: (0, 1), 4: (1, 0), 5: (1, 0)})
    monkeypatch.setattr(cpu_threads, "TOPOLOGY", tmp_path)
    monkeypatch.setattr(cpu_threads.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3, 4, 5}, raising=False)
    assert cpu_threads.physical_cores() == 3
    monkeypatch.setattr(cpu_threads.os, "sched_getaffinity", lambda pid: {0, 2, 5}, raising=False)  # taskset, a Slurm allocation
    assert cpu_threads.physical_cores() == 2


def test_without_a_readable_topology_every_allowed_cpu_counts(tmp_path, monkeypatch):
    monkeypatch.setattr(cpu_threads, "TOPOLOGY", tmp_path / "absent")
    monkeypatch.setattr(cpu_threads.os, "sched_getaffinity", lambda pid: {0, 1, 2}, raising=False)
    assert cpu_threads.physical_cores() == 3


def test_null_ignores_omp_num_threads_and_shares_the_cores_of_a_distributed_launch(monkeypatch):
    monkeypatch.setattr(cpu_threads, "physical_cores", lambda: 4)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # what joblib's workers get for two jobs on two cores
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    assert cpu_threads.set_cpu_threads(None) == 4 and torch.get_num_threads() == 4
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "3")
    assert cpu_threads.set_cpu_threads(None) == 1 and torch.get_num_threads() == 1
    assert cpu_threads.set_cpu_threads(2) == 2 and torch.get_num_threads() == 2


@pytest.mark.parametrize("bad", [0, -2, 1.5, True, "2"])
def test_a_bad_count_is_refused_naming_it(bad):
    with pytest.raises(ValueError, match=f"cpu_threads must be a whole number of threads from 1, or null .*got {bad!r}"):
        cpu_threads.set_cpu_threads(bad)
