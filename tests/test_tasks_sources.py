"""Data sources: local CSV/TSV/JSONL files and Hugging Face datasets, with column mapping; no network."""

from __future__ import annotations

import json
import sys

import pytest

from zoo.tasks.columns import ColumnMapping
from zoo.tasks.config import TaskConfig, build_task
from zoo.tasks.files import load_files
from zoo.tasks.hub import from_dataset_dict, load_hub


def _write_csv(path, rows, delimiter=","):
    path.write_text("\n".join(delimiter.join(r) for r in rows) + "\n")
    return path


def test_csv_with_string_labels_and_renamed_columns(tmp_path):
    rows = [("review", "stars")] + [(f"text {i}", "pos" if i % 3 else "neg") for i in range(30)]
    path = _write_csv(tmp_path / "reviews.csv", rows)
    splits = load_files(path, ColumnMapping(text_column="review", label_column="stars"))
    assert splits.label_names == ["neg", "pos"]  # distinct labels, sorted
    assert {k: len(v) for k, v in splits.splits.items()} == {"train": 24, "validation": 3, "test": 3}
    assert all(
        splits.label_names[e.label] == ("pos" if int(e.text.split()[1]) % 3 else "neg")
        for split in splits.splits.values()
        for e in split
    )


def test_tsv_integer_labels_with_label_names(tmp_path):
    rows = [("text", "label")] + [(f"t{i}", str(i % 2)) for i in range(20)]
    path = _write_csv(tmp_path / "data.tsv", rows, delimiter="\t")
    splits = load_files(path, ColumnMapping(label_names=["negative", "positive"]))
    assert splits.label_names == ["negative", "positive"]
    assert all(e.label == int(e.text[1:]) % 2 for e in splits.splits["train"])


def test_integer_labels_without_names_sort_numerically(tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_text("".join(json.dumps({"text": f"t{i}", "label": [2, 10, 1][i % 3]}) + "\n" for i in range(30)))
    splits = load_files(path, ColumnMapping())
    assert splits.label_names == ["1", "2", "10"]


def test_label_map_renames_merges_and_filters(tmp_path):
    path = tmp_path / "data.jsonl"
    ratings = [1, 2, 3, 4, 5] * 6
    path.write_text("".join(json.dumps({"text": f"t{i}", "rating": r}) + "\n" for i, r in enumerate(ratings)))
    mapping = ColumnMapping(label_column="rating", label_map={"1": "bad", "2": "bad", "4": "good", "5": "good"})
    splits = load_files(path, mapping)
    assert splits.label_names == ["bad", "good"]
    assert sum(len(v) for v in splits.splits.values()) == 24  # the 3s are dropped


def test_folder_of_split_files(tmp_path):
    for split, n in (("train", 10), ("test", 4)):
        _write_csv(tmp_path / f"{split}.csv", [("text", "label")] + [(f"{split} {i}", "ab"[i % 2]) for i in range(n)])
    splits = load_files(tmp_path, ColumnMapping())
    assert sorted(splits.splits) == ["test", "train"] and len(splits.splits["test"]) == 4
    with pytest.raises(ValueError, match=r"has no 'validation' split; it has \['test', 'train'\] \(set task.eval_split\)"):
        splits.split("validation")


def test_missing_column_lists_the_columns_found(tmp_path):
    path = _write_csv(tmp_path / "data.csv", [("sentence", "label"), ("a", "x"), ("b", "y")])
    with pytest.raises(
        ValueError, match=r"has no column 'text' \(columns found: \['sentence', 'label'\]\); set task.text_column"
    ):
        load_files(path, ColumnMapping())


def test_label_outside_the_classes_is_named(tmp_path):
    path = _write_csv(tmp_path / "data.csv", [("text", "label"), ("a", "pos"), ("b", "meh")])
    with pytest.raises(ValueError, match=r"label 'meh' is not one of the classes \['neg', 'pos'\]"):
        load_files(path, ColumnMapping(label_names=["neg", "pos"]))


def test_filtering_away_a_class_is_refused(tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_text("".join(json.dumps({"text": f"t{i}", "label": "ab"[i % 2]}) + "\n" for i in range(40)))
    cfg = TaskConfig(name="mine", path=str(path), label_map={"a": "a"}, label_names=["a", "b"], label_words=["bad", "good"])
    with pytest.raises(ValueError, match=r"classes \['b'\] have no training example"):
        build_task(cfg)


def test_few_shot_and_evaluation_sizes_from_a_file(tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_text("".join(json.dumps({"text": f"t{i}", "label": "ab"[i % 4 == 0]}) + "\n" for i in range(400)))
    cfg = TaskConfig(name="mine", path=str(path), shots_per_class=5, n_eval=20, label_words=["bad", "good"])
    data = build_task(cfg)
    assert [sum(e.label == c for e in data.train) for c in (0, 1)] == [5, 5]
    assert [sum(e.label == c for e in data.eval) for c in (0, 1)] == [15, 5]  # stratified: the 3:1 ratio kept


def test_built_in_name_with_own_data_is_refused():
    with pytest.raises(ValueError, match="task.name='movie_sentiment' is a built-in task with its own data"):
        TaskConfig(name="movie_sentiment", path="x.csv")


class FakeSplit:
    """What from_dataset_dict reads of a datasets.Dataset: column names, features, column access."""

    def __init__(self, columns: dict[str, list], features: dict | None = None):
        self.columns, self.column_names, self.features = columns, list(columns), features or {}

    def __getitem__(self, column: str) -> list:
        return self.columns[column]


class FakeClassLabel:
    names = ["neg", "pos"]


def test_dataset_mapping_uses_the_class_label_names_and_skips_unlabelled_splits():
    train = FakeSplit({"sentence": ["a", "b", "c"], "label": [1, 0, 1], "idx": [0, 1, 2]}, {"label": FakeClassLabel()})
    test = FakeSplit({"sentence": ["d"], "label": [-1], "idx": [3]}, {"label": FakeClassLabel()})  # GLUE hides test labels
    splits = from_dataset_dict(
        {"train": train, "validation": train, "test": test}, ColumnMapping(text_column="sentence"), "glue/sst2", "validation"
    )
    assert splits.label_names == ["neg", "pos"] and [e.label for e in splits.splits["validation"]] == [1, 0, 1]
    assert sorted(splits.splits) == ["train", "validation"]
    with pytest.raises(ValueError, match=r"label -1 is not one of the classes \['neg', 'pos'\] \(or an integer 0..1\)"):
        from_dataset_dict({"train": train, "test": test}, ColumnMapping(text_column="sentence"), "glue/sst2", "test")
    with pytest.raises(ValueError, match=r"has no 'validation' split; it has \['test', 'train'\] \(set task.eval_split\)"):
        from_dataset_dict({"train": train, "test": test}, ColumnMapping(text_column="sentence"), "glue/sst2", "validation")


def test_dataset_mapping_names_missing_columns():
    train = FakeSplit({"sentence": ["a"], "label": [0]})
    with pytest.raises(
        ValueError, match=r"dataset 'x' \[train\] has no column 'text' \(columns found: \['sentence', 'label'\]\)"
    ):
        from_dataset_dict({"train": train}, ColumnMapping(), "x", "train")


def test_in_memory_datasets_dataset():
    datasets = pytest.importorskip("datasets")
    features = datasets.Features(
        {"content": datasets.Value("string"), "sentiment": datasets.ClassLabel(names=["negative", "positive"])}
    )
    ds = datasets.Dataset.from_dict({"content": ["bad film", "good film", "fine"], "sentiment": [0, 1, 1]}, features=features)
    splits = from_dataset_dict(
        datasets.DatasetDict({"train": ds, "test": ds}), ColumnMapping("content", "sentiment"), "mine", "test"
    )
    assert splits.label_names == ["negative", "positive"]
    assert [(e.text, e.label) for e in splits.splits["test"]] == [("bad film", 0), ("good film", 1), ("fine", 1)]


def test_missing_datasets_package_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "datasets", None)  # makes `import datasets` fail
    with pytest.raises(ImportError, match=r"pip install 'zoo-peft\[datasets\]'"):
        load_hub("stanfordnlp/sst2", None, ColumnMapping(), "validation")


def test_label_map_from_the_command_line(tmp_path):
    from hydra import compose, initialize_config_module
    from omegaconf import OmegaConf

    from zoo.runner.config import store_configs

    path = tmp_path / "stars.jsonl"
    path.write_text("".join(json.dumps({"text": f"t{i}", "label": 1 + i % 5}) + "\n" for i in range(50)))
    store_configs()
    with initialize_config_module(config_module="zoo.conf", version_base=None):
        cfg = compose(
            "config",
            overrides=["task.name=stars", f"task.path={path}", "+task.label_map={1:bad,2:bad,5:good}", "task.n_eval=null"],
        )
    data = build_task(OmegaConf.to_object(cfg.task))
    assert data.label_names == ["bad", "good"] and len(data.train) == 24  # 30 of 50 rows kept, 80% for training


def test_rows_without_text_or_label_are_dropped(tmp_path):
    path = tmp_path / "data.jsonl"
    rows = [{"text": f"t{i}", "label": "ab"[i % 2]} for i in range(20)] + [
        {"text": "", "label": "a"},
        {"text": "x"},
        {"text": "y", "label": " "},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    splits = load_files(path, ColumnMapping())
    assert splits.label_names == ["a", "b"] and sum(len(v) for v in splits.splits.values()) == 20
