"""``nyt_snippets``: sentences of New York Times editorials, the general text zoo.evaluation.forgetting measures on.

Source: the ``vaderSentiment==3.3.2`` source archive (zoo.tasks.vader), file
``nytEditorialSnippets_GroundTruth.txt`` (5,190 sentences, about 18 words each), split and
prepared once like the built-in tasks. No built-in task trains on them. Their labels (the
sign of the mean human rating) come with the shared reader and are not used.
"""

from __future__ import annotations

from zoo.tasks import vader
from zoo.tasks.prepared import PreparedSet

NYT_SNIPPETS = PreparedSet(
    name="nyt_snippets",
    requirement=vader.REQUIREMENT,
    sha256=vader.SHA256,
    source_archive=True,
    label_names=["negative", "positive"],
    read=vader.reader("nytEditorialSnippets_GroundTruth.txt"),
    description="New York Times editorial snippets with the sign of their mean human rating (Hutto & Gilbert, ICWSM 2014)",
)
