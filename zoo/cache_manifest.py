"""The files of a complete cache folder and their sizes, recorded last, so a damaged folder is built again.

Folders are written atomically, but a disk that filled up, a copy that stopped half-way or a
hand edit can still leave a file short or missing; loading it would fail later with a raw
``JSONDecodeError`` or ``SafetensorError``. Comparing sizes costs one ``stat`` per file.
"""
from __future__ import annotations

from pathlib import Path


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
