"""The files of a complete cache folder and their sizes, recorded last, so a damaged folder is built again.

Folders are written atomically, but a disk that filled up, a copy that stopped half-way or a
hand edit can still leave a file short or missing; loading it would fail later with a raw
``JSONDecodeError`` or ``SafetensorError``. Comparing sizes costs one ``stat`` per file.
:func:`write_manifest` goes last into a staging folder; :func:`manifest_problem` says whether a
cached folder is complete.
"""

from __future__ import annotations

import json
from pathlib import Path

from zoo.runtime.atomic import write_json

MANIFEST = "zoo-manifest.json"


def file_sizes(folder: Path) -> dict[str, int]:
    """Every file under ``folder``: relative path -> size in bytes."""
    return {p.relative_to(folder).as_posix(): p.stat().st_size for p in sorted(folder.rglob("*")) if p.is_file()}


def size_problem(folder: Path, sizes: dict[str, int]) -> str | None:
    """None when every recorded file is in ``folder`` with its recorded size; else what is wrong, for the log."""
    for name, size in sizes.items():
        path = folder / name
        if not path.is_file():
            return f"{name} is missing"
        if path.stat().st_size != size:
            return f"{name} has {path.stat().st_size} bytes instead of {size}"
    return None


def write_manifest(folder: Path, **about: str) -> None:
    """Record the files now in ``folder`` (call it once the folder is complete) and ``about`` (e.g. its source)."""
    write_json(folder / MANIFEST, {**about, "files": file_sizes(folder)})


def manifest_problem(folder: Path) -> str | None:
    """None when ``folder`` is complete (its manifest's files all there, at their sizes); else why not."""
    manifest = folder / MANIFEST
    if not manifest.is_file():
        return f"no {MANIFEST} (absent, or written by an older zoo)"
    try:
        return size_problem(folder, json.loads(manifest.read_text())["files"])
    except (OSError, ValueError, KeyError, TypeError) as err:
        return f"{MANIFEST} is unreadable ({err})"
