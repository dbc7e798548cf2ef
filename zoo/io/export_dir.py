"""The record in every folder ``zoo-export`` and :func:`zoo.export_peft` write: what was exported from what.

An export is a folder another tool reads (peft's adapter files, or a plain transformers model),
so zoo's own adapter checks cannot mark it. Instead every export holds a small ``zoo_export.json``
naming what was exported from what (an imported zoo export is checked against its base model by it).
Which files a later export may replace is the manifest's business (zoo.runtime.written), as for every
output: a file the user added to an export, or a user's model folder, is never overwritten.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from zoo.io.json_marker import read_marked
from zoo.runtime.atomic import write_json
from zoo.version import __version__

MARKER = "zoo_export.json"


def write_record(folder: Path, record: dict[str, Any]) -> None:
    """Mark ``folder`` as zoo's export, with what it was made from."""
    write_json(folder / MARKER, {"zoo_version": __version__, **record})


def export_record(folder: Path) -> dict[str, Any] | None:
    """The record of an export zoo wrote into ``folder``, or None where there is none (or it is unreadable)."""
    return read_marked(folder / MARKER, "zoo_version")
