"""Hydra composition: every registered method is a `method` option with typed fields."""

from __future__ import annotations

import dataclasses

import pytest
from hydra import compose, initialize_config_module
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf
from omegaconf.errors import ValidationError
from tiers import method_params

import zoo
from zoo.runner.config import store_configs


def _compose(*overrides: str):
    store_configs()
    with initialize_config_module(config_module="zoo.conf", version_base=None):
        return compose("config", overrides=list(overrides))


@pytest.mark.parametrize("method", method_params(zoo.list_methods()))
def test_every_method_composes_to_its_config(method):
    cfg = _compose(f"method={method}")
    built = OmegaConf.to_object(cfg.method)
    assert type(built) is zoo.get_method(method).config
    assert built == zoo.get_method(method).config()


def test_default_run_is_lora_on_the_tiny_model_and_builtin_task():
    cfg = _compose()
    assert type(OmegaConf.to_object(cfg.method)).__name__ == "LoRAConfig"
    assert (cfg.model.name, cfg.task.name) == ("tiny-llama", "synthetic_sentiment")


def test_method_fields_override_with_types():
    cfg = _compose("method=lora", "method.r=16", "method.target_modules=[q_proj,k_proj]")
    method = OmegaConf.to_object(cfg.method)
    assert (method.r, method.target_modules) == (16, ["q_proj", "k_proj"])


def test_unknown_method_field_is_named():
    with pytest.raises(ConfigCompositionException) as err:
        _compose("method=lora", "method.rank=4")
    assert "Key 'rank' not in 'LoRAConfig'" in str(err.value.__cause__)


def test_wrongly_typed_field_is_refused():
    with pytest.raises(ConfigCompositionException) as err:
        _compose("method=lora", "method.r=high")
    assert isinstance(err.value.__cause__, ValidationError)


def test_unknown_method_option_lists_the_available_ones():
    with pytest.raises(ConfigCompositionException, match="lroa") as err:
        _compose("method=lroa")
    assert "lora" in str(err.value)


def test_validation_in_post_init_runs_on_to_object():
    cfg = _compose("method=lora", "method.r=0")
    with pytest.raises(ValueError, match="r must be a positive integer, got 0"):
        OmegaConf.to_object(cfg.method)


def test_the_all_methods_sweep_expands_to_every_registered_method_but_the_peft_bridges():
    """What ``+sweep=all_methods`` asks the sweeper for, expanded over the ``method`` group as Hydra's glob does it (the
    launch itself: the next test, in the full tier)."""
    store_configs()
    with initialize_config_module(config_module="zoo.conf", version_base=None):
        value = compose("config", overrides=["+sweep=all_methods"], return_hydra_config=True).hydra.sweeper.params.method
        options = GlobalHydra.instance().config_loader().get_group_options("method")
    (override,) = OverridesParser.create().parse_overrides([f"method={value}"])
    expanded = sorted(override.value().filter(options))
    assert expanded == sorted(m for m in zoo.list_methods() if not m.startswith("peft_")) and len(expanded) >= 13


@pytest.mark.full  # by default, the glob's expansion above; the smoke suite launches a sample of methods
def test_sweep_config_runs_every_registered_method(tmp_path):
    """`zoo -m +sweep=all_methods` launches one run per registered method but the peft bridge's, then zoo-report tables them."""
    import json
    import subprocess
    import sys

    sweep_dir = tmp_path / "sweep"
    cmd = [
        sys.executable,
        "-m",
        "zoo.runner.run",
        "-m",
        "+sweep=all_methods",
        "trainer=smoke",
        "task.n_train=32",
        "task.n_eval=16",
        "latency_batches=1",
        f"predictions_cache={tmp_path / 'predictions'}",
        f"hydra.sweep.dir={sweep_dir}",
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    methods = sorted(json.loads(p.read_text())["method"] for p in sweep_dir.rglob("metrics.json"))
    assert methods == [m for m in zoo.list_methods() if not m.startswith("peft_")]


def test_trainer_and_model_groups_are_typed():
    cfg = _compose("trainer=smoke", "model=tiny-gpt2")
    trainer = OmegaConf.to_object(cfg.trainer)
    assert dataclasses.is_dataclass(trainer) and trainer.max_steps == 5
    assert cfg.model.name == "tiny-gpt2"
    with pytest.raises(ConfigCompositionException):
        _compose("trainer.max_steps=many")
