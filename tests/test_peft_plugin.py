"""A plugin declares its peft format where it registers its method, and zoo.io.peft_interchange converts it, with no edit under zoo/.

The toy methods here are LoRA under another name and config class, reusing LoRA's converters:
``toy_lora`` as a peft type of its own both ways, ``toy_lora_export`` as peft's LORA, export only
(zoo's ``lora`` imports LORA).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import peft
import pytest
import torch
from conftest import make_model
from contract_helpers import output, perturb

import zoo
from zoo import registry
from zoo.io.peft_interchange import export_peft
from zoo.methods.lora import LoRAConfig, export_lora, import_lora, wrap_lora
from zoo.peft_format import ImportPlan


@dataclass
class ToyLoRAConfig(LoRAConfig):
    pass


@dataclass
class ToyLoRAExportConfig(LoRAConfig):
    pass


def import_toy(base, adapter, folder) -> ImportPlan:
    plan = import_lora(base, adapter, folder)
    return ImportPlan(ToyLoRAConfig(**plan.method_config.to_dict()), plan.weights)


@pytest.fixture
def plugin(monkeypatch):
    """The two toy methods, registered as a plugin would register them, and gone after the test."""
    monkeypatch.setattr(registry, "_methods", dict(registry._methods))
    monkeypatch.setattr(registry, "_plugin_errors", {})
    monkeypatch.setattr(registry, "_plugins_loaded", True)
    both_ways = zoo.PeftFormat("TOY_LORA", export=export_lora, import_=import_toy)
    zoo.register("toy_lora", config=ToyLoRAConfig, peft=both_ways)(wrap_lora)
    zoo.register("toy_lora_export", config=ToyLoRAExportConfig, peft=zoo.PeftFormat("LORA", export=export_lora))(wrap_lora)


def _wrapped(method: str) -> zoo.ZooModel:
    model = zoo.wrap(make_model("tiny-llama"), method, r=4)
    perturb(model)
    return model


def test_a_plugin_peft_type_exports_and_imports_as_the_plugin_method(plugin, batch, tmp_path):
    ours = _wrapped("toy_lora")
    folder = export_peft(ours, tmp_path / "peft")
    assert json.loads((folder / "adapter_config.json").read_text())["peft_type"] == "TOY_LORA"
    again = zoo.load_adapter(make_model("tiny-llama"), folder)
    assert (again.method, type(again.method_config), again.method_config.r) == ("toy_lora", ToyLoRAConfig, 4)
    with torch.no_grad():
        torch.testing.assert_close(output(again, batch), output(ours, batch), atol=1e-6, rtol=0)


def test_a_plugin_exporting_peft_s_lora_loads_in_peft_and_imports_as_zoo_s_lora(plugin, batch, tmp_path):
    ours = _wrapped("toy_lora_export")
    folder = export_peft(ours, tmp_path / "peft")
    theirs = peft.PeftModel.from_pretrained(make_model("tiny-llama"), folder)
    again = zoo.load_adapter(make_model("tiny-llama"), folder)
    assert again.method == "lora"
    with torch.no_grad():
        expected = output(ours, batch)
        torch.testing.assert_close(output(theirs.eval(), batch), expected, atol=1e-6, rtol=0)
        torch.testing.assert_close(output(again, batch), expected, atol=1e-6, rtol=0)


def test_the_choices_errors_name_come_from_the_registry(plugin, tmp_path):
    with pytest.raises(ValueError, match=r"'gift' has no peft format; exportable methods: \[.*'toy_lora', 'toy_lora_export'\]"):
        export_peft(zoo.wrap(make_model("tiny-llama"), "gift"), tmp_path / "out")
    peft.get_peft_model(make_model("tiny-llama"), peft.LoKrConfig(r=2, target_modules=["q_proj"])).save_pretrained(tmp_path / "p")
    with pytest.raises(ValueError, match=r"holds a peft 'LOKR' adapter.*importable peft types: \[.*'P_TUNING', 'TOY_LORA'\]"):
        zoo.load_adapter(make_model("tiny-llama"), tmp_path / "p")
