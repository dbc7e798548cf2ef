"""Bad local data is reported with its file, its line and the option that fixes it; long fields are read."""

from __future__ import annotations

import csv

import pytest

from zoo.tasks import files
from zoo.tasks.columns import ColumnMapping
from zoo.tasks.config import TaskConfig, build_task
from zoo.tasks.files import load_files, read_rows

MAPPING = ColumnMapping("text", "label", None, None)


def _csv_lines(n: int = 20) -> list[str]:
    return ["text,label"] + [f"review number {i},{'ab'[i % 2]}" for i in range(n)]


def test_a_latin1_csv_read_as_utf8_names_the_file_line_and_option(tmp_path):
    lines = _csv_lines()
    lines[3] = "un caf\xe9 tr\xe8s bon,a"  # line 4 of the file
    path = tmp_path / "reviews.csv"
    path.write_bytes("\n".join(lines).encode("latin-1"))
    with pytest.raises(ValueError, match=rf"{path}:4: not utf-8 text .*byte b'\\xe9'.*task\.encoding=latin-1"):
        load_files(path, MAPPING)
    splits = load_files(path, MAPPING, encoding="latin-1")
    assert "un caf\xe9 tr\xe8s bon" in [e.text for rows in splits.splits.values() for e in rows]


def test_the_encoding_option_reaches_the_file_through_the_task_config(tmp_path):
    path = tmp_path / "reviews.csv"
    path.write_bytes("\n".join(_csv_lines() + ["na\xefve,b"]).encode("latin-1"))
    cfg = TaskConfig(name="mine", path=str(path), label_words=["bad", "good"], n_eval=None, eval_split="test")
    with pytest.raises(ValueError, match=r"reviews\.csv:22: not utf-8 text"):
        build_task(cfg)
    cfg.encoding = "latin-1"
    assert len(build_task(cfg).label_names) == 2


def test_an_unknown_encoding_is_refused_by_name():
    with pytest.raises(ValueError, match=r"encoding 'latin-9x' is not a text encoding Python knows; e\.g\. utf-8, latin-1"):
        TaskConfig(encoding="latin-9x")


def test_an_undecodable_jsonl_line_is_named(tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_bytes(b'{"text": "fine", "label": "a"}\n{"text": "caf\xe9", "label": "b"}\n')
    with pytest.raises(ValueError, match=rf"{path}:2: not utf-8 text"):
        read_rows(path)


def test_a_jsonl_line_that_is_not_an_object_is_named(tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_text('{"text": "fine", "label": "a"}\n["text", "b"]\n')
    with pytest.raises(ValueError, match=rf"{path}:2 is not a JSON object but a list"):
        read_rows(path)


@pytest.mark.parametrize("suffix,delimiter", [(".csv", ","), (".tsv", "\t")])
def test_a_field_of_a_megabyte_is_read(tmp_path, suffix, delimiter):
    long_text = "word " * 200_000  # 1 MB, beyond Python's csv default of 128 Ki characters
    path = tmp_path / f"long{suffix}"
    with path.open("w", newline="") as f:
        writer = csv.writer(f, delimiter=delimiter)
        writer.writerow(["text", "label"])
        writer.writerow([long_text, "a"])
        writer.writerow(["short", "b"])
    rows, columns = read_rows(path)
    assert columns == ["text", "label"] and [len(r["text"]) for r in rows] == [1_000_000, 5]
    assert csv.field_size_limit() == 131072  # the process-wide limit is left as it was


def test_a_field_past_the_limit_names_the_file_and_line(tmp_path, monkeypatch):
    monkeypatch.setattr(files, "FIELD_LIMIT", 1000)
    lines = _csv_lines(10)
    lines[5] = '"a quote left open,a'  # swallows the lines after it into one field
    path = tmp_path / "reviews.csv"
    path.write_text("\n".join(lines + [f"line {i} " * 20 + ",b" for i in range(20)]) + "\n")
    with pytest.raises(
        ValueError,
        match=rf"{path}:\d+: field larger than field limit \(1000\) \(fields are read up to 1,000 "
        r"characters: a longer one is most likely a quote left open",
    ):
        read_rows(path)
    assert csv.field_size_limit() == 131072


# a quote left open swallows rows: refused where it opens


def _three_hundred_lines(delimiter: str = ",") -> list[str]:
    return ["text" + delimiter + "label"] + [f"review number {i} was fine{delimiter}{'ab'[i % 2]}" for i in range(2, 301)]


@pytest.mark.parametrize("suffix,delimiter", [(".csv", ","), (".tsv", "\t")])
def test_an_unclosed_quote_is_refused_naming_the_line_where_it_opens(tmp_path, suffix, delimiter):
    """Line 41 of 300 opens a quote that never closes: read as the csv module reads it, lines 41-300 are one text."""
    lines = _three_hundred_lines(delimiter)
    lines[40] = f'"review number 41 has an open quote{delimiter}a'
    path = tmp_path / f"reviews{suffix}"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(
        ValueError,
        match=rf"{path}:41: a quoted field opens on this line and runs to line 300, swallowing 259 "
        r"lines that read as rows of their own; close the quote on line 41",
    ):
        load_files(path, MAPPING)


def test_a_stray_quote_closed_lines_later_is_refused_too(tmp_path):
    lines = _three_hundred_lines()
    lines[40] = '"review number 41 opens a quote,a'
    lines[79] = 'review number 80 closes it",b'  # lines 42-79 read as rows; 80 ends the field
    path = tmp_path / "reviews.csv"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(
        ValueError, match=rf"{path}:41: a quoted field opens on this line and runs to line 80, swallowing 38 lines"
    ):
        read_rows(path)


def test_texts_with_line_breaks_are_read_as_written(tmp_path):
    """Quoted fields that hold paragraphs (some with the delimiter) are ordinary text, not a quote left open."""
    texts = ["first line\nsecond line, with a comma\nthird line", "one, two\n\nthree", "plain"]
    path = tmp_path / "reviews.csv"
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label"])
        writer.writerows([[text, "ab"[i % 2]] for i, text in enumerate(texts * 4)])
    rows, _ = read_rows(path)
    assert [r["text"] for r in rows] == texts * 4


def test_dropped_rows_are_counted_at_warning_level(tmp_path, caplog):
    lines = _csv_lines(20)
    lines[3] = "review with no label,"
    lines[7] = ",a"
    path = tmp_path / "reviews.csv"
    path.write_text("\n".join(lines) + "\n")
    with caplog.at_level("WARNING", logger="zoo.tasks.columns"):
        splits = load_files(path, MAPPING)
    assert sum(map(len, splits.splits.values())) == 18
    assert [r.levelname for r in caplog.records] == ["WARNING"]
    assert f"{path}: dropped 2 rows with an empty text or label" in caplog.text
