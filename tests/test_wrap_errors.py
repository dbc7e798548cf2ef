"""Clear errors from wrap, merge, save and load on bad input."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import make_model

import zoo
from zoo.io.adapter_io import config_checksum


def test_unknown_config_field_is_named():
    with pytest.raises(TypeError, match=r"unknown config field\(s\) \['rank'\] for method 'lora'; valid fields: \['r'"):
        zoo.wrap(make_model("tiny-llama"), "lora", rank=4)


def test_invalid_config_value_is_named():
    with pytest.raises(ValueError, match="r must be a positive integer, got 0"):
        zoo.wrap(make_model("tiny-llama"), "lora", r=0)


def test_targets_that_match_nothing_list_the_targetable_names():
    with pytest.raises(ValueError, match=r"matched no .*targetable names: \[.*'q_proj'.*'v_proj'"):
        zoo.wrap(make_model("tiny-llama"), "lora", target_modules=["query_key_value"])


def test_regex_targets():
    model = zoo.wrap(make_model("tiny-llama"), "lora", target_modules=[r"re:.*layers\.1\.mlp\.(up|down)_proj"])
    names = sorted(n.rsplit(".", 1)[0] for n in model.adapter_state_dict())
    assert names == ["model.layers.1.mlp.down_proj"] * 2 + ["model.layers.1.mlp.up_proj"] * 2


def test_config_instance_with_overrides():
    cfg = zoo.get_method("lora").config(r=2)
    model = zoo.wrap(make_model("tiny-llama"), cfg, alpha=4.0)
    assert (model.method_config.r, model.method_config.alpha) == (2, 4.0)


def test_wrapping_twice_is_refused():
    model = zoo.wrap(make_model("tiny-llama"), "lora")
    with pytest.raises(ValueError, match="already wrapped with 'lora'"):
        zoo.wrap(model, "lora")


def test_merge_needs_a_wrapped_model():
    with pytest.raises(TypeError, match="needs a model returned by zoo.wrap"):
        zoo.merge(make_model("tiny-llama"))


@pytest.fixture
def saved(tmp_path):
    model = zoo.wrap(make_model("tiny-llama"), "lora")
    return zoo.save_adapter(model, tmp_path / "adapter")


def test_missing_files_are_named(saved):
    (saved / "adapter_model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match=r"lacks \['adapter_model.safetensors'\]"):
        zoo.load_adapter(make_model("tiny-llama"), saved)


def test_corrupt_json_is_refused(saved):
    (saved / "adapter_config.json").write_text("{not json")
    with pytest.raises(ValueError, match="corrupt"):
        zoo.load_adapter(make_model("tiny-llama"), saved)


def test_corrupt_weights_are_refused(saved):
    path = saved / "adapter_model.safetensors"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="checksum"):
        zoo.load_adapter(make_model("tiny-llama"), saved)


def test_unknown_method_in_adapter_is_refused(saved):
    meta = json.loads((saved / "adapter_config.json").read_text())
    meta["method"] = "lorax"  # as if saved with a plugin that is not installed here: the checksum still matches
    meta["config_sha256"] = config_checksum(meta)
    (saved / "adapter_config.json").write_text(json.dumps(meta))
    with pytest.raises(KeyError, match="unknown method 'lorax'"):
        zoo.load_adapter(make_model("tiny-llama"), saved)


def test_saving_again_replaces_the_folder_whole(saved):
    model = zoo.wrap(make_model("tiny-llama"), "lora", r=2)
    zoo.save_adapter(model, saved)
    assert json.loads((saved / "adapter_config.json").read_text())["config"]["r"] == 2
    assert sorted(p.name for p in saved.parent.iterdir()) == ["adapter"]


def test_count_parameters_counts_shared_tensors_once():
    model = torch.nn.Sequential(torch.nn.Linear(2, 2))
    model.append(model[0])
    assert zoo.count_parameters(model) == (6, 6)
