"""How many CPU threads a run's torch uses: set from the run's config, the same under every Hydra launcher.

A reduction split over another number of threads adds its parts up in another order, so the
thread count shows in a run's numbers (losses, residuals) in their last digits. torch's default
follows ``OMP_NUM_THREADS``, which a launcher may set for its workers: hydra-joblib-launcher's
get ``cpus // n_jobs`` (one each for two jobs on two cores), where the same run started serially
gets one per core. The ``zoo`` command therefore sets the count itself (``cpu_threads``; null:
one per physical core the process may run on, whatever ``OMP_NUM_THREADS`` says), and a sweep
writes the same records serially and in parallel. ``cpu_threads=1`` shares the cores among
parallel jobs without oversubscribing them; its records equal a serial ``cpu_threads=1`` sweep's.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

TOPOLOGY = Path("/sys/devices/system/cpu")
"""Linux's CPU topology: ``cpu<n>/topology/{physical_package_id,core_id}`` name the physical core of a logical CPU."""


def physical_cores() -> int:
    """The physical cores among the CPUs this process may run on (its affinity: taskset, a Slurm job's allocation).

    Hyperthread siblings count once, as in torch's own default. Where the topology cannot be
    read (not Linux), the count of CPUs.
    """
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else range(os.cpu_count() or 1)
    cores = set()
    for cpu in cpus:
        topology = TOPOLOGY / f"cpu{cpu}" / "topology"
        try:
            cores.add(((topology / "physical_package_id").read_text().strip(), (topology / "core_id").read_text().strip()))
        except OSError:
            return len(cpus)
    return max(len(cores), 1)


def default_threads() -> int:
    """One thread per physical core, shared among the processes a distributed launch (torchrun, accelerate) starts here.

    Those processes run one data-parallel run together; their launcher names how many share
    this machine (``LOCAL_WORLD_SIZE``).
    """
    return max(physical_cores() // int(os.environ.get("LOCAL_WORLD_SIZE", "1")), 1)


def set_cpu_threads(requested: int | None) -> int:
    """Set torch's intra-op thread count to ``requested`` (None: :func:`default_threads`) and return it.

    Raises:
        ValueError: ``requested`` is not a positive whole number or None.
    """
    threads = default_threads() if requested is None else requested
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(
            f"cpu_threads must be a whole number of threads from 1, or null (one per physical core), got {requested!r}"
        )
    torch.set_num_threads(threads)
    return threads
