"""A property-based harness (Hypothesis) that feeds zoo hostile input and holds every outcome to one rule: a correct
result, or a user error (ValueError, TypeError, KeyError, OSError) raised by zoo's own checks and naming what is wrong,
never an error from inside torch or safetensors, never a hang, and never a changed file outside the folder a call writes.

Drawn: every field of every registered method's config (plug-ins' too), of the trainer's and of the task's, set to a
non-finite, negative, huge, empty or wrongly typed value; task files with bad bytes, stray quotes, huge fields, one
class or repeated texts; adapter folders (zoo's and peft's) with a file cut, flipped, deleted, added or its config
edited. The default tier runs each property on a fixed budget (tests/hostile.py: ``zoo-fast``); the ``full`` tier on a
larger one (``zoo-full``).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import re
import shutil

import pytest
import torch
from conftest import make_model
from hostile import BUDGET, FULL, HOSTILE, check_error, snapshot, time_limit
from hypothesis import given, settings
from hypothesis import strategies as st

import zoo
from zoo.tasks.config import TaskConfig, build_task
from zoo.tasks.files import read_rows
from zoo.testing.helpers import output, wrap_for_test
from zoo.testing.models import tiny_batch
from zoo.training.loop import TrainerConfig

METHODS = [m for m in zoo.list_methods() if [f for f in dataclasses.fields(zoo.get_method(m).config)]]


def _config_field(data: st.DataObject, config: type) -> tuple[str, object]:
    field = data.draw(st.sampled_from([f.name for f in dataclasses.fields(config)]), label="field")
    return field, data.draw(HOSTILE, label="value")


def _method_config_holds(data: st.DataObject) -> None:
    """Wrapping with a hostile field refuses it by name, or wraps a model whose outputs are finite."""
    method = data.draw(st.sampled_from(METHODS), label="method")
    spec = zoo.get_method(method)
    field, value = _config_field(data, spec.config)
    model = make_model("tiny-llama" if "causal_lm" in spec.model_kinds else "tiny-bert")
    with time_limit(60):
        try:
            wrapped = wrap_for_test(method, model, **{field: value})
        except Exception as err:  # noqa: BLE001 - what it is, is what the property checks
            check_error(err, field)
            return
        with torch.no_grad():
            finite = bool(torch.isfinite(output(wrapped, tiny_batch())).all())
        # a finite scale near float32's limit may overflow the outputs: the first training step then stops the run
        # with a NonFiniteLossError (test_reliability_divergence.py); any other value must give finite outputs
        extreme = isinstance(value, float) and abs(value) >= 1e30
        assert finite or extreme, f"{method} with {field}={value!r} gives non-finite outputs"


def _other_config_holds(data: st.DataObject) -> None:
    """A trainer or task config with a hostile field is refused by name, or holds values of its fields' types."""
    config = data.draw(st.sampled_from([TrainerConfig, TaskConfig]), label="config")
    field, value = _config_field(data, config)
    with time_limit(30):
        try:
            config(**{field: value})
        except Exception as err:  # noqa: BLE001
            check_error(err, field)


TEXTS = st.one_of(
    st.text(max_size=40),
    st.sampled_from(
        ['"', 'a "quoted" word', 'open " quote', "comma, inside", "tab\tinside", "line\nbreak", "x" * 100_000, "", "   ", "\x00"]
    ),
)
LABELS = st.one_of(st.sampled_from(["a", "b"]), st.sampled_from(["a", "b", "", "1", " c"]))


def _task_file(data: st.DataObject, folder) -> tuple:
    """A task file of drawn rows, written correctly or then damaged (bytes replaced, a stray quote inserted, cut)."""
    rows = data.draw(st.lists(st.tuples(TEXTS, LABELS), min_size=0, max_size=30), label="rows")
    if data.draw(st.booleans(), label="duplicate texts"):
        rows = rows + rows
    suffix = data.draw(st.sampled_from([".csv", ".tsv", ".jsonl"]), label="suffix")
    if suffix == ".jsonl":
        text = "".join(json.dumps({"text": t, "label": label}) + "\n" for t, label in rows)
    else:
        buffer = io.StringIO()
        writer = csv.writer(buffer, delimiter="," if suffix == ".csv" else "\t")
        writer.writerows([("text", "label"), *rows])
        text = buffer.getvalue()
    encoding = data.draw(st.sampled_from(["utf-8", "latin-1", "utf-16"]), label="encoding")
    raw = text.encode(encoding, errors="replace")
    damage = data.draw(st.sampled_from(["none", "stray quote", "bad bytes", "cut"]), label="damage")
    at = data.draw(st.integers(0, max(len(raw) - 1, 0)), label="at")
    raw = {
        "none": raw,
        "stray quote": raw[:at] + b'"' + raw[at:],
        "bad bytes": raw[:at] + b"\xff\xfe\x80" + raw[at:],
        "cut": raw[:at],
    }[damage]
    path = folder / f"data{suffix}"
    path.write_bytes(raw)
    return path, rows, damage if encoding == "utf-8" else f"{damage}, {encoding}"


def _task_file_holds(data: st.DataObject, tmp_path_factory) -> None:
    """A file read as a task gives its rows, or is refused naming it; nothing beside it changes."""
    folder = tmp_path_factory.mktemp("task")
    path, rows, damage = _task_file(data, folder)
    before = snapshot(folder)
    if damage == "none" and "\x00" not in "".join(t for t, _ in rows):  # a file written as it should be reads back as written
        assert [(r["text"], r["label"]) for r in read_rows(path)[0]] == rows
    with time_limit(60):
        try:
            splits = build_task(TaskConfig(name="mine", path=str(path), label_names=None, n_eval=None, label_words=["x", "y"]))
        except Exception as err:  # noqa: BLE001
            check_error(err, str(path), "task 'mine'")
        else:
            assert all(isinstance(e.text, str) and 0 <= e.label < len(splits.label_names) for e in splits.train + splits.eval)
    assert snapshot(folder) == before


@pytest.fixture(scope="module")
def adapters(tmp_path_factory):
    """A zoo LoRA adapter and a peft export of it, of the tiny Llama, saved once."""
    import peft

    folder = tmp_path_factory.mktemp("adapters")
    model = wrap_for_test("lora", make_model("tiny-llama"), r=2)
    zoo.save_adapter(model, folder / "zoo")
    theirs = peft.get_peft_model(make_model("tiny-llama"), peft.LoraConfig(r=2, target_modules=["q_proj", "v_proj"]))
    theirs.save_pretrained(folder / "peft")
    return folder


def _tamper(data: st.DataObject, folder) -> str:
    """One drawn change to an adapter folder; what it was."""
    files = sorted(p for p in folder.iterdir() if p.is_file())
    target = data.draw(st.sampled_from(files), label="file")
    how = data.draw(st.sampled_from(["flip", "cut", "delete", "extra", "config field"]), label="how")
    raw = target.read_bytes()
    if how == "flip":
        at = data.draw(st.integers(0, len(raw) - 1), label="at")
        target.write_bytes(raw[:at] + bytes([raw[at] ^ 0xFF]) + raw[at + 1 :])
    elif how == "cut":
        target.write_bytes(raw[: data.draw(st.integers(0, len(raw) - 1), label="at")])
    elif how == "delete":
        target.unlink()
    elif how == "extra":
        (folder / "notes.txt").write_text("a user's file")
    else:
        config = json.loads((folder / "adapter_config.json").read_text())
        keys = sorted(config) + (
            sorted(f"config.{k}" for k in config["config"]) if isinstance(config.get("config"), dict) else []
        )
        key, value = data.draw(st.sampled_from(keys), label="key"), data.draw(HOSTILE, label="value")
        (config["config"] if key.startswith("config.") else config)[key.removeprefix("config.")] = value
        (folder / "adapter_config.json").write_text(json.dumps(config, default=str))
    return f"{how} {target.name}"


def _adapter_folder_holds(data: st.DataObject, adapters, tmp_path_factory) -> None:
    """A tampered adapter folder is refused naming it, or loads a model with finite outputs; the folder is left as it is."""
    source = data.draw(st.sampled_from(["zoo", "peft"]), label="format")
    folder = tmp_path_factory.mktemp("tampered") / source
    shutil.copytree(adapters / source, folder)
    change = _tamper(data, folder)
    before = snapshot(folder.parent)
    with time_limit(60):
        try:
            model = zoo.load_adapter(make_model("tiny-llama"), folder)
        except Exception as err:  # noqa: BLE001
            check_error(err, str(folder))
        else:
            # peft's weights carry no checksum: a flipped byte there may load as a finite value near float32's limit,
            # which overflows the outputs, and nothing in the file tells it from a trained value (zoo's own files are
            # checksummed, and a NaN or an infinity is refused in either format)
            unchecked = source == "peft" and change == "flip adapter_model.safetensors"
            with torch.no_grad():
                assert unchecked or torch.isfinite(output(model, tiny_batch())).all(), change
    assert snapshot(folder.parent) == before


@settings(BUDGET)
@given(data=st.data())
def test_hostile_method_configs(data):
    _method_config_holds(data)


@settings(BUDGET)
@given(data=st.data())
def test_hostile_trainer_and_task_configs(data):
    _other_config_holds(data)


@settings(BUDGET)
@given(data=st.data())
def test_hostile_task_files(data, tmp_path_factory):
    _task_file_holds(data, tmp_path_factory)


@settings(BUDGET)
@given(data=st.data())
def test_tampered_adapter_folders(data, adapters, tmp_path_factory):
    _adapter_folder_holds(data, adapters, tmp_path_factory)


@pytest.mark.full
@settings(settings.get_profile(FULL))
@given(data=st.data())
def test_hostile_inputs_on_the_full_budget(data, adapters, tmp_path_factory):
    kind = data.draw(st.sampled_from(["method", "config", "file", "adapter"]), label="kind")
    {
        "method": lambda: _method_config_holds(data),
        "config": lambda: _other_config_holds(data),
        "file": lambda: _task_file_holds(data, tmp_path_factory),
        "adapter": lambda: _adapter_folder_holds(data, adapters, tmp_path_factory),
    }[kind]()


# what the harness found while it was built, kept as fixed cases


@pytest.mark.parametrize(
    "method,overrides,named",
    [
        ("ia3", {"feedforward_modules": ["0"]}, r"feedforward_modules=\['0'\] matched no"),
        ("lora", {"target_modules": ["re:("]}, r"target_modules=\['re:\('\] holds an invalid regular expression"),
        ("peft_rslora", {"trainable_token_indices": []}, "trainable_token_indices must be a non-empty list of token ids"),
        ("peft_rslora", {"trainable_token_indices": -1}, "trainable_token_indices must be a non-empty list of token ids"),
        ("peft_rslora", {"bias": ""}, "bias=''"),
        ("peft_rslora", {"exclude_modules": 3.5}, "exclude_modules=3.5"),
        ("peft_shira", {"mask_type": "x"}, "mask_type='x' is not valid; valid: 'random'"),
        ("p_tuning", {"encoder_num_layers": 5000}, "encoder_num_layers must be an integer from 1 to 32"),
        ("lora", {"r": 10**18}, "with r=1000000000000000000 asks for more memory than there is"),
        ("p_tuning", {"encoder_hidden_size": 2**40}, "with encoder_hidden_size=1099511627776 asks for more memory than there is"),
        ("prompt_tuning", {"seed": 2**70}, r"seed must be an integer in \[-2\*\*63, 2\*\*64\)"),
    ],
    ids=lambda v: v if isinstance(v, str) and v in zoo.list_methods() else None,
)
def test_hostile_configs_the_harness_found_are_refused_by_name(method, overrides, named):
    with time_limit(60), pytest.raises(ValueError, match=named) as caught:
        wrap_for_test(method, make_model("tiny-llama"), **overrides)
    check_error(caught.value, *overrides)


def test_a_damaged_peft_weights_file_and_a_peft_type_that_is_no_name_are_refused(adapters, tmp_path):
    folder = shutil.copytree(adapters / "peft", tmp_path / "peft")
    weights = folder / "adapter_model.safetensors"
    weights.write_bytes(bytes([weights.read_bytes()[0] ^ 0xFF]) + weights.read_bytes()[1:])
    with pytest.raises(ValueError, match=rf"{weights} is not a readable safetensors file") as caught:
        zoo.load_adapter(make_model("tiny-llama"), folder)
    check_error(caught.value, str(folder))
    shutil.copy(adapters / "peft" / "adapter_model.safetensors", weights)
    config = json.loads((folder / "adapter_config.json").read_text())
    (folder / "adapter_config.json").write_text(json.dumps({**config, "peft_type": []}))
    with pytest.raises(ValueError, match=r"adapter_config.json: peft_type=\[\] and task_type=None must be peft's names"):
        zoo.load_adapter(make_model("tiny-llama"), folder)


def test_a_peft_weights_file_holding_a_nan_is_refused_naming_the_tensor(adapters, tmp_path):
    from safetensors.torch import load_file, save_file

    folder = shutil.copytree(adapters / "peft", tmp_path / "peft")
    weights = folder / "adapter_model.safetensors"
    tensors = load_file(str(weights))
    name = sorted(tensors)[0]
    tensors[name][0, 0] = float("nan")  # what one flipped exponent byte can make of a value
    save_file(tensors, str(weights), metadata={"format": "pt"})
    with pytest.raises(ValueError, match=rf"{weights}: tensor\(s\) \['{re.escape(name)}'\] hold NaN or infinite") as caught:
        zoo.load_adapter(make_model("tiny-llama"), folder)
    check_error(caught.value, str(folder))


def test_a_peft_config_value_zoos_method_refuses_names_the_folders_config(adapters, tmp_path):
    folder = shutil.copytree(adapters / "peft", tmp_path / "peft")
    config = json.loads((folder / "adapter_config.json").read_text())
    (folder / "adapter_config.json").write_text(json.dumps({**config, "lora_dropout": -1}))
    with pytest.raises(ValueError, match=rf"{folder / 'adapter_config.json'}: .*dropout must be in \[0, 1\), got -1") as caught:
        zoo.load_adapter(make_model("tiny-llama"), folder)
    check_error(caught.value, str(folder))


def test_a_file_whose_rows_are_all_dropped_names_the_task_and_file(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("text,label\n,a\n,b\n")
    with pytest.raises(ValueError, match=rf"task 'mine' \({path}\): the train split is empty"):
        build_task(TaskConfig(name="mine", path=str(path), label_words=["x", "y"]))
