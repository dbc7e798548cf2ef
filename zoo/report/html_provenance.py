"""The HTML report's provenance block: the command, the library versions, the machine, the constraints file, the wall times.

Where the sweep is a benchmark suite's, its ``suite.json`` (benchmarks/suite.py) says the command, the machine and the versions
it ran on and each launch's wall time. A plain sweep's folder holds Hydra's ``multirun.yaml``, whose overrides are its command;
its machine is not recorded beyond each run's device, so the versions shown are those installed where the page was written,
and said to be. Every run records its training time, which add up here. A constraints file (``constraints.txt``, the pins of
the published figures) is shown whole, folded.
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import yaml

PACKAGES = ("torch", "transformers", "peft", "accelerate", "hydra-core", "zoo-peft")
"""The libraries whose versions the block names where no suite.json gives them."""


def sweep_command(folder: Path) -> str | None:
    """``zoo -m`` and the overrides of the Hydra multirun that wrote ``folder``, from its ``multirun.yaml``; None without one."""
    path = folder / "multirun.yaml"
    if not path.is_file():
        return None
    overrides = ((yaml.safe_load(path.read_text()) or {}).get("hydra") or {}).get("overrides", {}).get("task") or []
    return " ".join(["zoo", "-m", *overrides])


def _installed() -> str:
    versions = []
    for name in PACKAGES:
        try:
            versions.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            continue
    return ", ".join(versions)


def provenance(
    runs: list[dict],
    *,
    command: str | None = None,
    suite: dict | None = None,
    constraints: Path | None = None,
    written_by: str | None = None,
) -> dict:
    """The block's lines as (name, text) pairs under ``items``, and the constraints file's text (None: not given).

    ``command``: what ran the sweep; ``written_by``: the command that wrote the page, where it is not that one.
    """
    items = [("command", command or "not recorded")] + ([("page written by", written_by)] if written_by else [])
    if suite and suite.get("machine"):
        machine = suite["machine"]
        versions = ", ".join(f"{name} {version}" for name, version in machine["versions"].items())
        items += [
            ("machine", f"{machine['cpus']} CPU cores ({machine['platform']}), Python {machine['python']}"),
            ("versions", versions),
        ]
    else:
        items += [("machine", "not recorded"), ("versions", f"where this page was written: {_installed()}")]
    devices = sorted({r.get("device_name") or r.get("device") or "?" for r in runs if r.get("source", "zoo") == "zoo"})
    zoo_versions = sorted({r["zoo_version"] for r in runs if r.get("zoo_version")})
    items += [("devices", ", ".join(devices) or "-"), ("zoo versions in the records", ", ".join(zoo_versions) or "-")]
    if suite and suite.get("sessions"):
        total = sum(s["wall_seconds"] for s in suite["sessions"])
        items.append(("suite wall time", f"{total / 60:.1f} min over {len(suite['sessions'])} launch(es)"))
    trained = sum(r.get("train_seconds") or 0.0 for r in runs)
    items.append(("training time", f"{trained / 60:.1f} min over {len(runs)} runs (the sum of every run's train_seconds)"))
    text = constraints.read_text() if constraints is not None and constraints.is_file() else None
    if constraints is not None:
        items.append(("constraints file", constraints.name if text is not None else f"{constraints.name} (not found)"))
    return {"items": items, "constraints": text}
