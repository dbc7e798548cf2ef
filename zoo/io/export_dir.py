"""Folders ``zoo-export`` and :func:`zoo.export_peft` write, and the only ones they replace.

An export is a folder another tool reads (peft's adapter files, or a plain transformers model),
so zoo's own adapter checks cannot mark it. Instead every export holds a small ``zoo_export.json``
naming what was exported from what; a later export to the same place replaces a folder only if it
is missing, empty, or holds that file, so a user's model folder is never overwritten.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from zoo.io.json_marker import read_marked
from zoo.runtime.atomic import write_json
from zoo.version import __version__

MARKER = "zoo_export.json"


def refuse_foreign(target: Path, what: str) -> None:
    """Refuse to replace ``target`` unless it is missing, empty, or an export zoo wrote (it holds :data:`MARKER`).

    Raises:
        FileExistsError: naming the folder and what it holds.
    """
    if not target.exists():
        return
    if not target.is_dir():
        raise FileExistsError(f"cannot write {what} to {str(target)!r}: it is a file, not a folder; choose a new or empty folder")
    names = sorted(p.name for p in target.iterdir())
    if names and export_record(target) is None:
        raise FileExistsError(
            f"cannot write {what} to {str(target)!r}: writing replaces the whole folder, and zoo did not create it (no {MARKER}); "
            f"it holds {names[:5]}{' …' if len(names) > 5 else ''}. Choose a new or empty folder"
        )


def write_record(folder: Path, record: dict[str, Any]) -> None:
    """Mark ``folder`` as zoo's export, with what it was made from."""
    write_json(folder / MARKER, {"zoo_version": __version__, **record})


def export_record(folder: Path) -> dict[str, Any] | None:
    """The record of an export zoo wrote into ``folder``, or None where there is none (or it is unreadable)."""
    return read_marked(folder / MARKER, "zoo_version")
