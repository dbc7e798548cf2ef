"""Caches under concurrency, shared folders and damage: built once, readable by teammates, never silently wrong."""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import multiprocessing
import os
import stat
import threading
import time
from pathlib import Path

import pytest

from zoo.models import load as model_load
from zoo.runner import prediction_cache
from zoo.runtime import atomic
from zoo.runtime.atomic import replace_dir, staging_dir, write_json
from zoo.runtime.cache_lock import building, lock_path
from zoo.runtime.cache_manifest import MANIFEST
from zoo.tasks import prepared
from zoo.tasks.prepared import PreparedSet, Reading

posix_only = pytest.mark.skipif(not hasattr(os, "fork"), reason="fcntl locks and fork: POSIX only")
ARCHIVE = "".join(f"{'negative' if i % 2 else 'positive'}\ttext number {i}\n" for i in range(40)).encode()


def _read_lines(path: Path) -> Reading:
    counter = os.environ.get("ZOO_TEST_READ_COUNTER")
    if counter:  # count the reads across processes, and hold the reader long enough for a rival to start
        with open(counter, "a") as f:
            f.write(f"{os.getpid()}\n")
        time.sleep(0.5)
    pairs = [tuple(reversed(line.split("\t"))) for line in path.read_text().splitlines()]
    return Reading([(text, label) for text, label in pairs], {})


FAKE_SET = PreparedSet(
    name="fake_set",
    requirement="fakeset==1.0",
    sha256=hashlib.sha256(ARCHIVE).hexdigest(),
    source_archive=False,
    label_names=["negative", "positive"],
    read=_read_lines,
    description="forty lines of label<TAB>text",
)


@pytest.fixture
def index(monkeypatch, tmp_path):
    """The download replaced by writing :data:`ARCHIVE` (or what the test puts in ``served``); calls counted."""
    served = {"bytes": ARCHIVE}
    calls = []

    def fake_download(data: PreparedSet, dest: Path) -> Path:
        calls.append(data.requirement)
        path = dest / "fakeset-1.0.tar.gz"
        path.write_bytes(served["bytes"])
        return path

    monkeypatch.setattr(prepared, "download_archive", fake_download)
    return calls, served


# -- permissions -------------------------------------------------------------------------------------------------


@pytest.fixture(params=[0o022, 0o002])
def umask(request):
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_umask_is_read_without_changing_it(umask):
    assert atomic.current_umask() == umask
    assert os.umask(umask) == umask


def test_written_files_and_folders_follow_the_umask(tmp_path, umask, index):
    file_mode, dir_mode = 0o666 & ~umask, 0o777 & ~umask  # 0o644/0o755 under 022, 0o664/0o775 under 002
    write_json(tmp_path / "metrics.json", {"accuracy": 0.5})
    assert _mode(tmp_path / "metrics.json") == file_mode

    staging = staging_dir(tmp_path / "adapter")
    assert _mode(staging) == dir_mode
    replace_dir(staging, tmp_path / "adapter")
    assert _mode(tmp_path / "adapter") == dir_mode

    folder = prepared.prepare(FAKE_SET, tmp_path / "data")
    assert _mode(folder) == dir_mode
    assert {p.name: _mode(p) for p in folder.iterdir()} == {
        n: file_mode for n in ("info.json", "test.jsonl", "train.jsonl", "validation.jsonl")
    }

    prediction_cache.cached(tmp_path / "predictions", "k" * 32, lambda: ({"accuracy": 0.5}, [0, 1]))
    assert _mode(tmp_path / "predictions" / f"{'k' * 32}.json") == file_mode


# -- the prediction cache ----------------------------------------------------------------------------------------


class Scorer:
    """A stand-in for evaluating the base model: counts its calls."""

    def __init__(self, accuracy: float = 0.75):
        self.calls, self.accuracy = 0, accuracy

    def __call__(self):
        self.calls += 1
        return {"accuracy": self.accuracy, "n": 4}, [0, 1, 1, 0]


KEY = "0123456789abcdef0123456789abcdef"


@pytest.mark.parametrize("damage", ["edited score", "truncated", "copied from another key", "no checksum"])
def test_a_damaged_prediction_entry_is_scored_again(tmp_path, caplog, damage):
    score = Scorer()
    assert prediction_cache.cached(tmp_path, KEY, score) == ({"accuracy": 0.75, "n": 4}, [0, 1, 1, 0])
    path = tmp_path / f"{KEY}.json"
    entry = json.loads(path.read_text())
    if damage == "edited score":
        entry["metrics"]["accuracy"] = 0.99
        path.write_text(json.dumps(entry))
    elif damage == "truncated":
        path.write_text(path.read_text()[:40])
    elif damage == "copied from another key":
        other = Scorer(accuracy=0.25)
        prediction_cache.cached(tmp_path, "f" * 32, other)
        path.write_text((tmp_path / f"{'f' * 32}.json").read_text())
    else:
        del entry["sha256"]
        path.write_text(json.dumps(entry))
    with caplog.at_level(logging.WARNING, logger="zoo.runner.prediction_cache"):
        assert prediction_cache.cached(tmp_path, KEY, score) == ({"accuracy": 0.75, "n": 4}, [0, 1, 1, 0])
    assert score.calls == 2
    assert str(path) in caplog.text
    prediction_cache.cached(tmp_path, KEY, score)  # the entry was stored again, intact
    assert score.calls == 2


def test_prediction_entries_with_integer_keys_and_tuples_hit(tmp_path):
    def score():
        score.calls += 1
        return {"per_class": {2: 0.5, 10: 1.0}, "pair": (1, 2)}, [1, 0]

    score.calls = 0
    first = prediction_cache.cached(tmp_path, KEY, score)
    assert prediction_cache.cached(tmp_path, KEY, score) == ({"per_class": {"2": 0.5, "10": 1.0}, "pair": [1, 2]}, [1, 0])
    assert score.calls == 1 and first[1] == [1, 0]


def test_an_unwritable_prediction_cache_warns_and_keeps_the_result(tmp_path, monkeypatch, caplog):
    """What a read-only folder raises, injected (root, who runs some CI, writes through any chmod)."""
    folder = tmp_path / "shared"

    def refuse(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", str(folder))

    monkeypatch.setattr(atomic.tempfile, "mkstemp", refuse)
    score = Scorer()
    with caplog.at_level(logging.WARNING, logger="zoo.runner.prediction_cache"):
        assert prediction_cache.cached(folder, KEY, score) == ({"accuracy": 0.75, "n": 4}, [0, 1, 1, 0])
    assert "could not store the base-model predictions" in caplog.text and "Permission denied" in caplog.text


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root writes through a read-only mode")
def test_a_read_only_prediction_folder_warns_and_keeps_the_result(tmp_path, caplog):
    folder = tmp_path / "shared"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        with caplog.at_level(logging.WARNING, logger="zoo.runner.prediction_cache"):
            assert prediction_cache.cached(folder, KEY, Scorer()) == ({"accuracy": 0.75, "n": 4}, [0, 1, 1, 0])
    finally:
        folder.chmod(0o755)
    assert "could not store the base-model predictions" in caplog.text and list(folder.iterdir()) == []


def test_a_run_survives_an_unwritable_prediction_cache(tmp_path, monkeypatch, caplog):
    from hydra import compose, initialize_config_module

    from zoo.runner.config import store_configs
    from zoo.runner.run import run

    def refuse(path, data):
        raise OSError(errno.EROFS, "Read-only file system", str(path))

    monkeypatch.setattr(prediction_cache, "write_json", refuse)
    store_configs()
    with initialize_config_module(config_module="zoo.conf", version_base=None):
        cfg = compose(
            "config",
            overrides=[
                "trainer=smoke",
                "latency_batches=1",
                "task.n_train=32",
                "task.n_eval=16",
                "model.pretrain_steps=0",
                "baseline=zero_shot",
                f"predictions_cache={tmp_path / 'cache'}",
            ],
        )
    with caplog.at_level(logging.WARNING, logger="zoo.runner.prediction_cache"):
        record = run(cfg, tmp_path / "out")
    assert (
        0.0 <= record.scores["accuracy"] <= 1.0 and record.baseline_scores["zero_shot"]["accuracy"] == record.scores["accuracy"]
    )
    assert "Read-only file system" in caplog.text


# -- prepared data sets ------------------------------------------------------------------------------------------


def _prepare_in_child(cache: str, barrier, errors: str) -> None:
    barrier.wait()
    try:
        prepared.load_prepared(FAKE_SET, cache)
    except BaseException as err:
        Path(errors).write_text(repr(err))
        raise


@posix_only
def test_concurrent_first_runs_prepare_once(tmp_path, index, monkeypatch):
    counter = tmp_path / "reads.txt"
    monkeypatch.setenv("ZOO_TEST_READ_COUNTER", str(counter))
    fork = multiprocessing.get_context("fork")
    barrier = fork.Barrier(3)
    children = [
        fork.Process(target=_prepare_in_child, args=(str(tmp_path / "cache"), barrier, str(tmp_path / f"err{i}")))
        for i in range(3)
    ]
    for child in children:
        child.start()
    for child in children:
        child.join(60)
    errors = {p.name: p.read_text() for p in tmp_path.glob("err*")}
    assert [c.exitcode for c in children] == [0, 0, 0], errors
    assert len(counter.read_text().splitlines()) == 1  # one process downloaded and read; the others waited, then used it
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == ["fake_set"]  # no lock or staging left behind
    assert sum(len(v) for v in prepared.load_prepared(FAKE_SET, tmp_path / "cache").splits.values()) == 40


@pytest.mark.parametrize("file", ["info.json", "train.jsonl", "test.jsonl"])
@pytest.mark.parametrize("damage", ["truncated", "missing"])
def test_a_damaged_prepared_set_is_prepared_again(tmp_path, index, caplog, file, damage):
    calls, _ = index
    first = prepared.load_prepared(FAKE_SET, tmp_path)
    path = tmp_path / "fake_set" / file
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    else:
        path.unlink()
    with caplog.at_level(logging.WARNING, logger="zoo.tasks.prepared"):
        again = prepared.load_prepared(FAKE_SET, tmp_path)
    assert calls == ["fakeset==1.0", "fakeset==1.0"] and f"preparing {tmp_path / 'fake_set'} again" in caplog.text
    assert again.splits == first.splits


def test_a_folder_prepared_by_an_earlier_zoo_is_reused(tmp_path, index):
    folder = prepared.prepare(FAKE_SET, tmp_path)
    info = json.loads((folder / "info.json").read_text())
    del info["sha256"]  # what zoo wrote before archives were pinned
    (folder / "info.json").write_text(json.dumps(info))
    prepared.load_prepared(FAKE_SET, tmp_path)
    assert index[0] == ["fakeset==1.0"]


def test_a_prepared_file_damaged_in_place_names_the_command_to_clear_it(tmp_path, index):
    folder = prepared.prepare(FAKE_SET, tmp_path)
    path = folder / "train.jsonl"
    text = path.read_text()
    path.write_text("}" + text[1:])  # same size: not detectable without reading it
    with pytest.raises(ValueError, match=rf"{path} is damaged .*rm -r '{folder}'"):
        prepared.load_prepared(FAKE_SET, tmp_path)


def test_a_folder_zoo_did_not_prepare_is_left_alone(tmp_path, index):
    mine = tmp_path / "fake_set"
    mine.mkdir()
    (mine / "notes.txt").write_text("my own notes")
    with pytest.raises(FileExistsError, match=r"holds \['notes.txt'\], which zoo does not write there"):
        prepared.prepare(FAKE_SET, tmp_path)
    assert (mine / "notes.txt").read_text() == "my own notes" and index[0] == []


def test_an_archive_with_another_digest_is_refused(tmp_path, index):
    calls, served = index
    served["bytes"] = ARCHIVE + b"positive\tan extra line someone slipped in\n"
    found = hashlib.sha256(served["bytes"]).hexdigest()
    with pytest.raises(RuntimeError, match=rf"fakeset==1\.0: .* has sha256 {found}, expected {FAKE_SET.sha256}; it was not used"):
        prepared.prepare(FAKE_SET, tmp_path)
    assert list(tmp_path.iterdir()) == []  # nothing cached, no download or lock left


# -- the cache lock ----------------------------------------------------------------------------------------------


@posix_only
def test_the_lock_excludes_and_leaves_no_file(tmp_path):
    target, inside, order = tmp_path / "entry", threading.Event(), []

    def rival():
        inside.wait(10)
        with building(target):
            order.append("rival")

    thread = threading.Thread(target=rival, daemon=True)
    thread.start()
    with building(target):
        assert lock_path(target).is_file()
        inside.set()
        time.sleep(0.3)
        order.append("first")
    thread.join(10)
    assert order == ["first", "rival"] and not lock_path(target).exists()


# -- GGUF conversions --------------------------------------------------------------------------------------------


class FakeConversion:
    """AutoModelForCausalLM / AutoTokenizer stand-ins: 'dequantising' takes a while and is counted."""

    def __init__(self):
        self.calls = 0
        self.config = type("Config", (), {})()

    def from_pretrained(self, folder, gguf_file=None, **kwargs):
        if "dtype" in kwargs:  # the model, not the tokenizer
            self.calls += 1
            time.sleep(0.3)
        return self

    def save_pretrained(self, folder):
        (Path(folder) / "config.json").write_text('{"model_type": "llama"}')
        (Path(folder) / "model.safetensors").write_bytes(b"\0" * 4096)


@pytest.fixture
def conversion(monkeypatch, tmp_path):
    fake = FakeConversion()
    monkeypatch.setattr(model_load, "AutoModelForCausalLM", fake)
    monkeypatch.setattr(model_load, "AutoTokenizer", fake)
    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(b"GGUF")
    return fake, model_load.ModelConfig(name="x", gguf_file=str(gguf), cache_dir=str(tmp_path / "models"))


@posix_only
def test_concurrent_first_loads_convert_a_gguf_once(conversion):
    fake, cfg = conversion
    folders, errors = [], []

    def load():
        try:
            folders.append(model_load._gguf_folder(cfg))
        except Exception as err:
            errors.append(err)

    threads = [threading.Thread(target=load) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == [] and fake.calls == 1 and len(set(folders)) == 1
    assert sorted(p.name for p in Path(folders[0]).iterdir()) == ["config.json", "model.safetensors", "zoo-manifest.json"]


@pytest.mark.parametrize("damage", ["truncated weights", "no manifest (an older zoo's conversion)"])
def test_a_damaged_gguf_conversion_is_converted_again(conversion, caplog, damage):
    fake, cfg = conversion
    folder = Path(model_load._gguf_folder(cfg))
    if damage == "truncated weights":
        weights = folder / "model.safetensors"
        weights.write_bytes(weights.read_bytes()[:100])
    else:
        (folder / MANIFEST).unlink()
    with caplog.at_level(logging.WARNING, logger="zoo.models.load"):
        assert model_load._gguf_folder(cfg) == str(folder)
    assert fake.calls == 2 and "converting" in caplog.text
    assert (folder / "model.safetensors").stat().st_size == 4096
    model_load._gguf_folder(cfg)
    assert fake.calls == 2


# -- replace_dir -------------------------------------------------------------------------------------------------


def _replace_repeatedly(target: str, writer: int, barrier, errors: str) -> None:
    barrier.wait()
    try:
        for i in range(150):
            staging = staging_dir(Path(target))
            (staging / "weights").write_text(f"{writer} {i}")
            replace_dir(staging, Path(target))
    except BaseException as err:
        Path(errors).write_text(repr(err))
        raise


def _exchange_supported(folder: Path) -> bool:
    a, b = folder / "probe-a", folder / "probe-b"
    a.mkdir()
    b.mkdir()
    swapped = atomic._exchange(a, b)
    for path in (a, b):
        if path.exists():
            path.rmdir()
    return swapped


@posix_only
@pytest.mark.parametrize("swap", ["renameat2 exchange", "portable move-aside"])
def test_concurrent_replacements_all_succeed_and_readers_always_find_the_folder(tmp_path, monkeypatch, swap):
    if swap == "portable move-aside":
        monkeypatch.setattr(atomic, "_renameat2", None)  # as on macOS, or a file system that cannot exchange
    target = tmp_path / "adapter"
    fork = multiprocessing.get_context("fork")
    barrier = fork.Barrier(4)
    writers = [
        fork.Process(target=_replace_repeatedly, args=(str(target), w, barrier, str(tmp_path / f"err{w}"))) for w in range(3)
    ]
    for writer in writers:
        writer.start()
    barrier.wait()
    appeared, missing = False, 0
    while any(w.is_alive() for w in writers):
        if os.path.isdir(target):
            appeared = True
        elif appeared:
            missing += 1
    for writer in writers:
        writer.join(60)
    errors = {p.name: p.read_text() for p in tmp_path.glob("err*")}
    assert [w.exitcode for w in writers] == [0, 0, 0], errors
    assert (target / "weights").read_text().endswith(" 149")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adapter"]  # no staging or old folders left
    if swap == "renameat2 exchange" and _exchange_supported(tmp_path):
        assert missing == 0


def test_replace_dir_refuses_to_put_a_folder_over_a_file(tmp_path):
    (tmp_path / "target").write_text("a file")
    staging = staging_dir(tmp_path / "target")
    with pytest.raises(NotADirectoryError):
        replace_dir(staging, tmp_path / "target")
    assert (tmp_path / "target").read_text() == "a file"
