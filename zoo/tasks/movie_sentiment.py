"""``movie_sentiment``: binary sentiment of movie-review snippets (Rotten Tomatoes sentences).

Source: the ``vaderSentiment==3.3.2`` source archive (zoo.tasks.vader), file
``movieReviewSnippets_GroundTruth.txt``; the label is the sign of the mean human rating
(37 snippets rated exactly 0 are dropped, and repeated texts).
"""

from __future__ import annotations

from zoo.tasks import vader
from zoo.tasks.prepared import PreparedSet

MOVIE_FILE = "movieReviewSnippets_GroundTruth.txt"
read_snippets = vader.reader(MOVIE_FILE)

MOVIE_SENTIMENT = PreparedSet(
    name="movie_sentiment",
    requirement=vader.REQUIREMENT,
    sha256=vader.SHA256,
    source_archive=True,
    label_names=["negative", "positive"],
    read=read_snippets,
    description="Movie-review snippets with the sign of their mean human rating (Hutto & Gilbert, ICWSM 2014)",
)
