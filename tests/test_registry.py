"""The registry: names, duplicates, lookups, and third-party plugins through entry points."""

from __future__ import annotations

import re
import sys
import textwrap
from dataclasses import dataclass

import pytest
import torch
from conftest import make_model

import zoo
from zoo import registry
from zoo.methods.lora import LoRAConfig
from zoo.runner.baselines import BaselineSpec, get_baseline, register_baseline
from zoo.runner.baselines import spec as baselines_spec


@pytest.fixture
def clean_registry(monkeypatch):
    """Let a test register methods and load plugins without leaking them into other tests."""
    monkeypatch.setattr(registry, "_methods", dict(registry._methods))
    monkeypatch.setattr(registry, "_plugin_errors", {})
    monkeypatch.setattr(registry, "_plugins_loaded", True)


@dataclass
class ToyConfig(zoo.MethodConfig):
    size: int = 2


def test_builtins_are_listed_sorted():
    names = zoo.list_methods()
    assert "lora" in names and names == sorted(names)
    assert zoo.get_method("lora").config is LoRAConfig


def test_unknown_name_lists_registered_and_suggests_closest():
    with pytest.raises(KeyError, match=r"unknown method 'lroa'\. Did you mean 'lora'\?.*Registered: .*lora"):
        zoo.get_method("lroa")
    with pytest.raises(KeyError, match="unknown method 'lroa'"):
        zoo.wrap(object(), "lroa")


@pytest.mark.parametrize("bad", ["LoRA", "1x", "with-dash", "", None])
def test_invalid_names_are_refused(bad, clean_registry):
    with pytest.raises(ValueError, match="is invalid"):
        zoo.register(bad, config=ToyConfig)


def test_duplicate_name_and_config_class_raise(clean_registry):
    with pytest.raises(ValueError, match="'lora' is already registered"):
        zoo.register("lora", config=ToyConfig)
    with pytest.raises(ValueError, match="LoRAConfig is already registered for method 'lora'"):
        zoo.register("lora2", config=LoRAConfig)


def test_config_must_be_a_method_config_dataclass(clean_registry):
    @dataclass
    class NotAMethodConfig:
        x: int = 1

    with pytest.raises(TypeError, match="subclassing zoo.MethodConfig"):
        zoo.register("toy", config=NotAMethodConfig)


def test_unknown_capability_and_model_kind_raise(clean_registry):
    with pytest.raises(ValueError, match=r"unknown capabilities \['fast'\]"):
        zoo.register("toy", config=ToyConfig, fast=True)
    with pytest.raises(ValueError, match="model_kinds"):
        zoo.register("toy", config=ToyConfig, model_kinds=("seq2seq",))


def test_positional_schemes_are_validated_and_refuse_other_models(clean_registry):
    with pytest.raises(
        ValueError,
        match=r"positional_schemes \('learned',\) for 'toy' must be a non-empty subset of "
        r"\('rotary', 'absolute', 'relative', 'alibi'\)",
    ):
        zoo.register("toy", config=ToyConfig, positional_schemes=("learned",))

    @zoo.register("toy", config=ToyConfig, positional_schemes=("rotary",))
    def wrap_toy(model, cfg):
        model.toy = _Toy()
        return model

    assert zoo.get_method("toy").positional_schemes == ("rotary",)
    assert zoo.wrap(make_model("tiny-llama"), "toy").method == "toy"
    with pytest.raises(
        ValueError,
        match=r"method 'toy' supports the positional schemes \['rotary'\], not the 'absolute' "
        r"positions of GPT2LMHeadModel: it cannot reproduce",
    ):
        zoo.wrap(make_model("tiny-gpt2"), "toy")


class _Toy(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.ones(1))

    def adapter_params(self) -> list[str]:
        return ["scale"]


def test_register_stores_flags(clean_registry):
    @zoo.register("toy", config=ToyConfig, mergeable=True, model_kinds=("encoder",), learning_rate=0.5)
    def wrap_toy(model, cfg):
        return model

    spec = zoo.get_method("toy")
    assert (spec.mergeable, spec.model_kinds, spec.learning_rate, spec.wrap_fn) == (True, ("encoder",), 0.5, wrap_toy)
    assert registry.spec_for_config(ToyConfig()) is spec


@pytest.mark.parametrize("kinds", [(), ("Generation",), ("generation", 3)])
def test_task_kinds_must_be_names_of_kinds(kinds, clean_registry):
    with pytest.raises(
        ValueError,
        match=rf"method 'toy': task_kinds {re.escape(repr(kinds))} must be a non-empty tuple of task "
        r"kind names \(or None: every kind\)",
    ):
        zoo.register("toy", config=ToyConfig, task_kinds=kinds)
    assert "toy" not in zoo.list_methods()


def test_task_kinds_default_to_every_kind_and_a_name_alone_is_a_tuple(monkeypatch, clean_registry):
    """None: every kind, a plug-in's too; a kind not registered yet is accepted (checked when a run is planned)."""
    assert zoo.get_method("lora").task_kinds is None and zoo.get_method("closed_form_head").task_kinds == ("classification",)
    zoo.register("toy", config=ToyConfig, task_kinds="generation")(lambda model, cfg: model)
    assert zoo.get_method("toy").task_kinds == ("generation",)
    monkeypatch.setattr(baselines_spec, "_baselines", dict(baselines_spec._baselines))
    spec = register_baseline(BaselineSpec("toy_baseline", "prompt", task_kinds="translation"))
    assert spec.task_kinds == ("translation",) and get_baseline("toy_baseline") == spec
    with pytest.raises(ValueError, match=r"baseline 'toy_bad': task_kinds \(\) must be a non-empty tuple of task kind names"):
        register_baseline(BaselineSpec("toy_bad", "prompt", task_kinds=()))


def _install_fake_distribution(root, dist: str, module: str, source: str) -> None:
    (root / f"{module}.py").write_text(textwrap.dedent(source))
    info = root / f"{dist.replace('-', '_')}-1.0.dist-info"  # the folder name uses the normalised name
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[zoo.methods]\n{module} = {module}\n")


def test_entry_point_plugins_load_and_a_broken_one_is_reported(tmp_path, monkeypatch, clean_registry, caplog):
    _install_fake_distribution(
        tmp_path,
        "zoo-toy-plugin",
        "zoo_toy_plugin",
        """
        from dataclasses import dataclass
        import zoo

        @dataclass
        class ScaleConfig(zoo.MethodConfig):
            factor: float = 1.0

        @zoo.register("toy_scale", config=ScaleConfig, identity_at_init=True)
        def wrap_scale(model, cfg):
            return model
    """,
    )
    _install_fake_distribution(tmp_path, "zoo-broken-plugin", "zoo_broken_plugin", "raise ImportError('needs libfoo')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(registry, "_plugins_loaded", False)
    for mod in ("zoo_toy_plugin", "zoo_broken_plugin"):
        monkeypatch.delitem(sys.modules, mod, raising=False)

    names = zoo.list_methods()

    assert "toy_scale" in names and "lora" in names
    assert zoo.get_method("toy_scale").source == "zoo-toy-plugin"
    errors = registry.load_plugins()  # plugins installed in the environment load too: only this test's two are asserted
    assert errors["zoo-broken-plugin"] == "ImportError: needs libfoo"
    assert "zoo-toy-plugin" not in errors
    assert "zoo-broken-plugin" in caplog.text
    assert zoo.get_method("toy_scale").config(factor=2.0).factor == 2.0


def test_plugin_method_is_composable_with_hydra(tmp_path, monkeypatch, clean_registry):
    @dataclass
    class PluginConfig(zoo.MethodConfig):
        width: int = 3

    zoo.register("plugin_method", config=PluginConfig)(lambda model, cfg: model)
    from hydra import compose, initialize_config_module
    from omegaconf import OmegaConf

    from zoo.runner.config import store_configs

    store_configs()
    with initialize_config_module(config_module="zoo.conf", version_base=None):
        cfg = compose("config", overrides=["method=plugin_method", "method.width=7"])
    assert OmegaConf.to_object(cfg.method) == PluginConfig(width=7)


def _export_nothing(model):
    raise AssertionError("never called: registration only")


def test_peft_must_be_a_peft_format_and_names_the_method(clean_registry):
    with pytest.raises(TypeError, match=r"peft for method 'toy' must be a zoo.PeftFormat \(peft_type, export, .*got 'LORA'"):
        zoo.register("toy", config=ToyConfig, peft="LORA")
    assert "toy" not in zoo.list_methods()


def test_a_second_importer_of_a_peft_type_is_refused_naming_the_first(clean_registry):
    taken = zoo.PeftFormat("LORA", export=_export_nothing, import_=lambda base, adapter, folder: None)
    with pytest.raises(
        ValueError,
        match=r"method 'toy' declares an importer for peft type 'LORA', which method 'lora' already "
        r"imports; declare import_=None to export only",
    ):
        zoo.register("toy", config=ToyConfig, peft=taken)
    zoo.register("toy", config=ToyConfig, peft=zoo.PeftFormat("LORA", export=_export_nothing))(lambda model, cfg: model)
    assert zoo.get_method("toy").peft.import_ is None


@pytest.mark.parametrize(
    ("fields", "error", "match"),
    [
        ({"peft_type": "lora"}, ValueError, r"peft_type 'lora' must be peft's upper-case name of the method, e.g. 'LORA'"),
        (
            {"export": "export_lora"},
            TypeError,
            r"PeftFormat export for LORA must be a function of the wrapped model, got 'export_lo",
        ),
        ({"import_": 3}, TypeError, r"PeftFormat import_ for LORA must be a function or None, got 3"),
        ({"zoo_overrides": dict}, ValueError, r"PeftFormat for LORA gives zoo_overrides without equivalent_config"),
    ],
)
def test_a_peft_format_refuses_what_cannot_be_its_fields(fields, error, match):
    with pytest.raises(error, match=match):
        zoo.PeftFormat(**{"peft_type": "LORA", "export": _export_nothing, **fields})


def test_a_plugin_failing_after_register_leaves_no_method_behind_and_its_error_is_shown(
    tmp_path, monkeypatch, clean_registry, caplog
):
    _install_fake_distribution(
        tmp_path,
        "zoo-half-plugin",
        "zoo_half_plugin",
        """
        from dataclasses import dataclass
        import zoo

        @dataclass
        class HalfConfig(zoo.MethodConfig):
            size: int = 1

        zoo.register("half_done", config=HalfConfig)(lambda model, cfg: model)
        import zoo_half_plugin_missing_dependency
    """,
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(registry, "_plugins_loaded", False)
    monkeypatch.delitem(sys.modules, "zoo_half_plugin", raising=False)

    assert "half_done" not in zoo.list_methods()
    error = "ModuleNotFoundError: No module named 'zoo_half_plugin_missing_dependency'"
    assert registry.load_plugins()["zoo-half-plugin"] == error
    assert "zoo-half-plugin" in caplog.text and "registers no method" in caplog.text
    with pytest.raises(KeyError, match=rf"unknown method 'half_done'\..*; plugin zoo-half-plugin failed to load: {error}"):
        zoo.get_method("half_done")
    # with the dependency there, the same plugin registers: nothing of the failed import is left to clash with
    (tmp_path / "zoo_half_plugin_missing_dependency.py").write_text("")
    monkeypatch.setattr(registry, "_plugins_loaded", False)
    monkeypatch.setattr(registry, "_plugin_errors", {})
    monkeypatch.delitem(sys.modules, "zoo_half_plugin", raising=False)
    monkeypatch.delitem(sys.modules, "zoo_half_plugin_missing_dependency", raising=False)
    assert "zoo-half-plugin" not in registry.load_plugins()
    spec = zoo.get_method("half_done")
    assert (spec.source, spec.source_version) == ("zoo-half-plugin", "1.0")
    assert (zoo.get_method("lora").source, zoo.get_method("lora").source_version) == ("zoo", None)


def test_refuses_merge_must_be_a_function_of_a_mergeable_method(clean_registry):
    with pytest.raises(
        TypeError, match=r"refuses_merge of method 'toy' must be a function \(cfg, model\) -> reason or None, got 'no'"
    ):
        zoo.register("toy", config=ToyConfig, mergeable=True, refuses_merge="no")
    with pytest.raises(ValueError, match=r"method 'toy' declares refuses_merge without mergeable=True"):
        zoo.register("toy", config=ToyConfig, refuses_merge=lambda cfg, model: None)
    zoo.register("toy", config=ToyConfig, mergeable=True, refuses_merge=lambda cfg, model: "never")(lambda model, cfg: model)
    assert zoo.get_method("toy").refuses_merge(ToyConfig(), None) == "never"
