"""The run/example split of the detectable difference that conf/benchmark/full.yaml quotes is what
``python -m benchmarks.power_split`` computes from the committed records."""

from __future__ import annotations

import math
from pathlib import Path

from benchmarks import power_split
from benchmarks.records import RECORDS
from benchmarks.results_md import _load
from zoo.report.power import minimum_detectable_difference

CONFIG = Path(__file__).parents[1] / "conf" / "benchmark" / "full.yaml"


def test_the_profiles_quoted_fit_is_the_committed_records():
    runs = _load(RECORDS / "full")
    fits = {task: power_split.split(runs, task) for task in ("movie_sentiment", "tweet_sentiment")}
    (ma, mb, _), (ta, tb, _) = fits["movie_sentiment"], fits["tweet_sentiment"]
    text = " ".join(line.lstrip("# ") for line in CONFIG.read_text().splitlines())
    assert f"a = {ma:.3f}, b = {mb:.3f} on movie reviews and a = {ta:.3f}, b = {tb:.3f} on tweets" in text

    def detects(fit: tuple, n: int, runs_: int) -> str:
        return f"{minimum_detectable_difference(n, sd=math.sqrt(fit[0] + fit[1] / runs_)):.3f}"

    m, t = fits["movie_sentiment"], fits["tweet_sentiment"]
    assert f"8 runs detect only {detects(m, 150, 8)} and {detects(t, 150, 8)}" in text
    assert f"300 examples at 3 runs detect about {detects(m, 300, 3)} and {detects(t, 300, 3)}" in text
    assert f"(400: {detects(m, 400, 3)} and {detects(t, 400, 3)})" in text
