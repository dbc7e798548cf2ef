"""adapter_config.json records the distribution and version of the plugin whose method saved it; another version warns."""

from __future__ import annotations

import dataclasses
import json
import logging

import pytest
import torch
from conftest import make_model
from contract_helpers import perturb

import zoo
from zoo import registry
from zoo.io.adapter_io import CONFIG


@pytest.fixture
def from_plugin(monkeypatch):
    """Make the lora method look registered by a plugin distribution of the given version."""
    monkeypatch.setattr(registry, "_methods", dict(registry._methods))

    def provide(version: str | None, distribution: str = "zoo-lora-plugin") -> None:
        spec = registry._methods["lora"]
        registry._methods["lora"] = dataclasses.replace(spec, source=distribution, source_version=version)

    return provide


def _saved(tmp_path, model=None):
    model = model if model is not None else zoo.wrap(make_model("tiny-llama"), "lora")
    return zoo.save_adapter(model, tmp_path / "adapter")


def test_a_plugin_method_records_its_distribution_and_version_and_a_builtin_records_none(tmp_path, from_plugin):
    assert json.loads((_saved(tmp_path / "builtin") / CONFIG).read_text())["plugin"] is None
    from_plugin("1.0")
    assert json.loads((_saved(tmp_path) / CONFIG).read_text())["plugin"] == {"distribution": "zoo-lora-plugin", "version": "1.0"}


def test_loading_under_another_plugin_version_warns_naming_both_and_the_same_version_does_not(tmp_path, from_plugin, caplog):
    from_plugin("1.0")
    model = zoo.wrap(make_model("tiny-llama"), "lora")
    perturb(model)
    folder = _saved(tmp_path, model)
    with caplog.at_level(logging.WARNING, logger="zoo.io.adapter_io"):
        zoo.load_adapter(make_model("tiny-llama"), folder)
    assert "plugin" not in caplog.text
    from_plugin("2.0")
    with caplog.at_level(logging.WARNING, logger="zoo.io.adapter_io"):
        loaded = zoo.load_adapter(make_model("tiny-llama"), folder)
    assert "saved with method 'lora' of plugin zoo-lora-plugin 1.0, and zoo-lora-plugin 2.0 provides it here" in caplog.text
    assert "install zoo-lora-plugin==1.0" in caplog.text
    # a warning, not a refusal: the weights load
    expected = model.adapter_state_dict()
    assert all(torch.equal(t, expected[name]) for name, t in loaded.adapter_state_dict().items())


def test_loading_where_zoo_itself_provides_the_method_warns_too(tmp_path, from_plugin, caplog, monkeypatch):
    from_plugin("1.0")
    folder = _saved(tmp_path)
    monkeypatch.setattr(
        registry,
        "_methods",
        {**registry._methods, "lora": dataclasses.replace(registry._methods["lora"], source="zoo", source_version=None)},
    )
    with caplog.at_level(logging.WARNING, logger="zoo.io.adapter_io"):
        zoo.load_adapter(make_model("tiny-llama"), folder)
    assert "of plugin zoo-lora-plugin 1.0, and zoo itself provides it here" in caplog.text
