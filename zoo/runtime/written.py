"""What zoo wrote, and the one rule every writer of an output follows: replace only that.

Every folder zoo writes an output into holds a manifest, :data:`MANIFEST`, naming each file zoo
wrote there with the SHA-256 of what it wrote. A file may be replaced only if it is missing or
listed with the digest it has now; a folder may be replaced whole only if everything in it is
(or, for a folder an older zoo wrote, ``ours`` recognises it). Anything else, a user's file beside
zoo's or one of zoo's files the user has edited since, stops the writer before it writes, with the
paths in the way named: zoo never deletes or overwrites what it did not write.

Writes are atomic (:mod:`zoo.runtime.atomic`), and files get the mode the umask gives a plain
``open`` (safetensors and ``tempfile`` create 0600 files, which a teammate could not read). The
manifest is read, extended and written again: two writers in one folder at the same instant (a run
folder is locked against that, zoo.runtime.run_lock) may lose an entry, and zoo then refuses to
replace that file of its own, the safe side.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from zoo.runtime.atomic import file_mode, write_json, writing_dir

MANIFEST = ".zoo-written.json"
_SHOWN = 8
"""How many paths in the way a refusal names before it counts the rest."""


def digest(path: Path) -> str:
    sha = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            sha.update(chunk)
    return sha.hexdigest()


def manifest(folder: Path) -> dict[str, str]:
    """``{relative path: sha256}`` of the files zoo wrote in ``folder``; empty where it has no readable manifest."""
    try:
        data = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        return {}
    files = data.get("files") if isinstance(data, dict) else None
    return {k: v for k, v in files.items() if isinstance(v, str)} if isinstance(files, dict) else {}


def _entries(folder: Path) -> list[str]:
    """Every file, link and empty folder under ``folder`` (relative, sorted), but manifests; links are not followed."""
    found = []
    for root, folders, files in os.walk(folder):
        here = Path(root)
        found += [(here / name).relative_to(folder).as_posix() for name in files if name != MANIFEST]
        found += [(here / name).relative_to(folder).as_posix() for name in folders if (here / name).is_symlink()]
        if not folders and not files and here != folder:
            found.append(here.relative_to(folder).as_posix())
    return sorted(found)


def _unlisted(folder: Path, names: list[str]) -> list[str]:
    listed = manifest(folder)
    return [
        n
        for n in names
        if listed.get(n) is None or (folder / n).is_symlink() or not (folder / n).is_file() or digest(folder / n) != listed[n]
    ]


def in_the_way(path: Path, ours: Callable[[Path], bool] | None = None) -> list[str]:
    """What at ``path`` zoo did not write (or changed since): ``path``'s name for a file, the paths inside it for a folder.

    ``ours`` recognises a file or folder an older zoo wrote before it kept manifests.
    """
    if not path.exists() and not path.is_symlink():
        return []
    if ours is not None and ours(path):
        return []
    if path.is_dir() and not path.is_symlink():
        return _unlisted(path, _entries(path))
    return [path.name] if _unlisted(path.parent, [path.name]) else []


def refuse(names: list[str], target: Path, what: str) -> None:
    """Raise the refusal to write ``what`` to ``target`` where ``names`` (zoo did not write them) are in the way."""
    if not names:
        return
    if not target.is_dir():
        raise FileExistsError(
            f"cannot write {what} to {str(target)!r}: a file zoo did not write is there (or it changed since zoo "
            "wrote it); zoo never overwrites it: move it away, or write elsewhere"
        )
    shown = repr(names[:_SHOWN]) + (f" and {len(names) - _SHOWN} more" if len(names) > _SHOWN else "")
    raise FileExistsError(
        f"cannot write {what} to {str(target)!r}: it holds what zoo did not write (or changed since zoo wrote "
        f"it): {shown}. zoo never overwrites or deletes those: move them away, or choose a new or empty folder"
    )


def claim(path: str | Path, what: str, ours: Callable[[Path], bool] | None = None) -> None:
    """Refuse to write ``what`` at ``path`` unless nothing is there or only what zoo wrote (see :func:`in_the_way`).

    Raises:
        FileExistsError: naming what is in the way.
    """
    path = Path(path)
    refuse(in_the_way(path, ours), path, what)


def _record(folder: Path, files: dict[str, str]) -> None:
    write_json(folder / MANIFEST, {"files": {**manifest(folder), **files}})


def write_file(path: str | Path, write: Callable[[Path], None], what: str, ours: Callable[[Path], bool] | None = None) -> None:
    """Write file ``path`` by ``write(temporary path)`` atomically, after :func:`claim`, and list it in its folder's manifest."""
    path = Path(path)
    if path.is_dir():
        raise FileExistsError(f"cannot write {what} to {str(path)!r}: it is a folder; move it away or choose another path")
    claim(path, what, ours)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, file_mode())
        written = digest(Path(tmp))
        _fsync(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _record(path.parent, {path.name: written})


def _fsync(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_text(path: str | Path, text: str, what: str, ours: Callable[[Path], bool] | None = None) -> None:
    write_file(path, lambda tmp: tmp.write_text(text, encoding="utf-8"), what, ours)


def write_json_file(path: str | Path, data: object, what: str, ours: Callable[[Path], bool] | None = None) -> None:
    write_text(path, json.dumps(data, indent=2, sort_keys=True, default=str) + "\n", what, ours)


@contextmanager
def replacing_dir(target: str | Path, what: str, ours: Callable[[Path], bool] | None = None) -> Iterator[Path]:
    """A staging folder to fill; it then replaces folder ``target`` whole, listed in its manifest, with shared modes.

    Checked before the ``with`` block (so no work is done in vain) and again before the swap.

    Raises:
        FileExistsError: ``target`` is a file, or holds what zoo did not write (naming it).
    """
    target = Path(target)
    if target.exists() and not target.is_dir():
        raise FileExistsError(f"cannot write {what} to {str(target)!r}: it is a file, not a folder; choose a new or empty folder")
    refuse(in_the_way(target, ours), target, what)
    with writing_dir(target) as staging:
        yield staging
        write_json(staging / MANIFEST, {"files": {n: digest(staging / n) for n in _entries(staging)}})
        refuse(in_the_way(target, ours), target, what)
