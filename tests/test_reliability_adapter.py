"""Saving and loading adapters safely.

1. save_adapter never deletes what zoo did not write.
2. wrap and load_adapter return a model ready for inference (eval mode).
3. adapter files are checked: the config is checksummed, validated against its method's
   config class, and its implied tensor shapes are compared with the file's before anything
   is allocated; the base fingerprint covers the model's config.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from conftest import make_model
from contract_helpers import output, perturb, refused, wrap_for_test
from tiers import method_params
from torch import nn
from transformers import AutoModelForCausalLM, BertModel, LlamaForCausalLM

import zoo
from zoo import registry
from zoo.inject import replace_module
from zoo.io.peft_interchange import export_peft
from zoo.methods.lora import LoRALinear
from zoo.runtime.written import MANIFEST

CONFIG, WEIGHTS = "adapter_config.json", "adapter_model.safetensors"


@pytest.fixture
def saved(tmp_path) -> Path:
    """A LoRA adapter (r=8, alpha=16) of the tiny Llama with non-zero weights."""
    model = zoo.wrap(make_model("tiny-llama"), "lora")
    perturb(model)
    return zoo.save_adapter(model, tmp_path / "adapter")


def _meta(folder: Path) -> dict:
    return json.loads((folder / CONFIG).read_text())


def _rewrite(folder: Path, meta: dict) -> None:
    """Write ``meta`` back with a valid checksum, as a tool that writes adapters consistently would."""
    entries = {k: v for k, v in meta.items() if k != "config_sha256"}
    meta = {
        **entries,
        "config_sha256": hashlib.sha256(json.dumps(entries, sort_keys=True, separators=(",", ":")).encode()).hexdigest(),
    }
    (folder / CONFIG).write_text(json.dumps(meta))


def _tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# 1. never delete what zoo did not create


def test_save_refuses_a_project_folder_and_leaves_it_untouched(tmp_path):
    project = tmp_path / "my-project"
    (project / "src").mkdir(parents=True)
    (project / "src" / "main.py").write_text("print('mine')\n")
    (project / "notes.txt").write_text("do not lose me\n")
    before = _tree(project)
    model = zoo.wrap(make_model("tiny-llama"), "lora")
    message = (
        rf"cannot write an adapter to '{re.escape(str(project))}': it holds what zoo did not write .*"
        r"\['notes.txt', 'src/main.py'\]\. zoo never overwrites or deletes those"
    )
    with pytest.raises(FileExistsError, match=message):
        zoo.save_adapter(model, project)
    assert _tree(project) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["my-project"]  # no staging folder left behind


def test_save_refuses_an_adapter_folder_zoo_did_not_write(tmp_path):
    """A peft adapter uses zoo's two file names; it is still not zoo's to replace (here, one without zoo's manifest)."""
    model = zoo.wrap(make_model("tiny-llama"), "lora")
    peft_folder = export_peft(model, tmp_path / "peft-adapter")
    (peft_folder / MANIFEST).unlink()
    before = _tree(peft_folder)
    with pytest.raises(
        FileExistsError,
        match=r"zoo did not write .*\['adapter_config.json', 'adapter_model.safetensors', "
        r"'zoo_export.json'\]",
    ):
        zoo.save_adapter(model, peft_folder)
    assert _tree(peft_folder) == before


def test_save_refuses_a_file(tmp_path):
    target = tmp_path / "adapter"
    target.write_text("a file of the user\n")
    with pytest.raises(FileExistsError, match="it is a file, not a folder"):
        zoo.save_adapter(zoo.wrap(make_model("tiny-llama"), "lora"), target)
    assert target.read_text() == "a file of the user\n"


def test_save_fills_an_empty_folder_and_replaces_its_own(tmp_path):
    target = tmp_path / "adapter"
    target.mkdir()
    zoo.save_adapter(zoo.wrap(make_model("tiny-llama"), "lora", r=2), target)
    zoo.save_adapter(zoo.wrap(make_model("tiny-llama"), "lora", r=4), target)  # as a checkpoint is saved every N steps
    assert sorted(p.name for p in target.iterdir()) == [MANIFEST, CONFIG, WEIGHTS]
    assert _meta(target)["config"]["r"] == 4


def test_replacing_an_adapter_keeps_a_neighbour_named_like_the_old_copy(tmp_path):
    neighbour = tmp_path / ".adapter.old"
    neighbour.mkdir()
    (neighbour / "keep.txt").write_text("mine\n")
    zoo.save_adapter(zoo.wrap(make_model("tiny-llama"), "lora"), tmp_path / "adapter")
    zoo.save_adapter(zoo.wrap(make_model("tiny-llama"), "lora"), tmp_path / "adapter")
    assert (neighbour / "keep.txt").read_text() == "mine\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".adapter.old", "adapter"]


# 2. ready for inference


def _every_module_in_eval(model: nn.Module) -> bool:
    return not any(m.training for m in model.modules())


def test_wrap_and_load_return_eval_mode_so_dropout_is_off(batch, tmp_path):
    wrapped = zoo.wrap(make_model("tiny-llama"), "lora", dropout=0.1)
    assert _every_module_in_eval(wrapped)
    perturb(wrapped)  # B = 0 at init would hide the dropout
    with torch.no_grad():
        first, second = output(wrapped, batch), output(wrapped, batch)
    assert torch.equal(first, second)
    zoo.save_adapter(wrapped, tmp_path / "adapter")
    loaded = zoo.load_adapter(make_model("tiny-llama"), tmp_path / "adapter")
    assert _every_module_in_eval(loaded)
    with torch.no_grad():
        assert torch.equal(output(loaded, batch), first)
        assert torch.equal(output(loaded, batch), first)
    loaded.train()  # training mode is still one call away, and then the dropout acts
    with torch.no_grad():
        assert not torch.equal(output(loaded, batch), first)


@pytest.mark.parametrize("method", method_params(zoo.list_methods()))
def test_every_method_wraps_into_eval_mode(method):
    kind = "tiny-llama" if refused(method, "tiny-llama") is None else "tiny-bert"
    assert _every_module_in_eval(wrap_for_test(method, make_model(kind)))


# 3a. the config is checksummed with the weights


@pytest.mark.parametrize(
    "edit",
    [
        lambda meta: meta["config"].update(alpha=32.0),
        lambda meta: meta["config"].update(dropout=0.5),
        lambda meta: meta.update(base_fingerprint="0" * 16),
    ],
)
def test_an_edited_config_is_refused(saved, edit, batch):
    meta = _meta(saved)
    edit(meta)
    (saved / CONFIG).write_text(json.dumps(meta))
    with pytest.raises(ValueError, match=rf"{re.escape(str(saved / CONFIG))} was modified or is corrupt.*config_sha256"):
        zoo.load_adapter(make_model("tiny-llama"), saved)


def test_reformatting_the_json_is_not_a_modification(saved, batch):
    """The checksum is over the parsed entries, not the bytes: indentation and key order do not matter."""
    expected = output(zoo.load_adapter(make_model("tiny-llama"), saved), batch)
    meta = _meta(saved)
    (saved / CONFIG).write_text(json.dumps(dict(reversed(list(meta.items()))), indent=4))
    torch.testing.assert_close(output(zoo.load_adapter(make_model("tiny-llama"), saved), batch), expected, atol=0, rtol=0)


# 3b. the config is validated by its method's config class


@pytest.mark.parametrize(
    "field, value, message",
    [
        (
            "alpha",
            float("nan"),
            "config field 'alpha' of method 'lora' is nan; expected float (NaN and infinity are not valid numbers)",
        ),
        ("alpha", float("inf"), "config field 'alpha' of method 'lora' is inf; expected float (NaN and infinity"),
        ("alpha", "16", "config field 'alpha' of method 'lora' is '16'; expected float"),
        ("alpha", [16.0], "config field 'alpha' of method 'lora' is [16.0]; expected float"),
        ("r", True, "config field 'r' of method 'lora' is True; expected int"),
        ("r", 8.0, "config field 'r' of method 'lora' is 8.0; expected int"),
        ("target_modules", "q_proj", "config field 'target_modules' of method 'lora' is 'q_proj'; expected list[str] | None"),
        (
            "target_modules",
            ["q_proj", 3],
            "config field 'target_modules' of method 'lora' is ['q_proj', 3]; expected list[str] | None",
        ),
        ("r", 0, "the config of method 'lora' is invalid: r must be a positive integer, got 0"),
        ("dropout", 1.5, "the config of method 'lora' is invalid: dropout must be in [0, 1), got 1.5"),
    ],
)
def test_a_bad_config_value_is_refused_naming_file_field_and_value(saved, field, value, message):
    meta = _meta(saved)
    meta["config"][field] = value
    _rewrite(saved, meta)
    base = make_model("tiny-llama")
    with pytest.raises(ValueError, match=f"^{re.escape(str(saved / CONFIG))}: {re.escape(message)}"):
        zoo.load_adapter(base, saved)
    assert not any(isinstance(m, LoRALinear) for m in base.modules())


def test_an_unknown_field_or_a_config_that_is_no_object_is_refused(saved):
    meta = _meta(saved)
    meta["config"]["rank"] = 4
    _rewrite(saved, meta)
    with pytest.raises(ValueError, match=r"config field\(s\) \['rank'\] are not fields of method 'lora'; valid fields: \['r', "):
        zoo.load_adapter(make_model("tiny-llama"), saved)
    meta["config"] = [8, 16.0]
    _rewrite(saved, meta)
    with pytest.raises(ValueError, match=r"'config' must be a JSON object of 'lora''s fields, got \[8, 16.0\]"):
        zoo.load_adapter(make_model("tiny-llama"), saved)


# 3c. shapes are checked before anything is allocated


@pytest.mark.parametrize("r", [4, 10**12])  # 10**12: lora_A alone would be 256 TB
def test_a_config_that_does_not_fit_the_weights_is_refused_before_wrapping(saved, r):
    meta = _meta(saved)
    meta["config"]["r"] = r
    _rewrite(saved, meta)
    base = make_model("tiny-llama")
    with pytest.raises(
        ValueError, match=rf"has shape \(8, 64\) in .*{WEIGHTS}, but the saved config of method 'lora' implies \({r}, 64\)"
    ):
        zoo.load_adapter(base, saved)
    assert not any(isinstance(m, LoRALinear) for m in base.modules()), "the base model was wrapped before the check"


def test_tensors_the_config_does_not_imply_are_refused_before_wrapping(saved):
    meta = _meta(saved)
    meta["config"]["target_modules"] = ["q_proj"]  # the file also holds the v_proj factors
    _rewrite(saved, meta)
    base = make_model("tiny-llama")
    with pytest.raises(
        ValueError, match=r"does not fit method 'lora' with its saved config: missing \[\], unexpected \[.*v_proj.lora_A"
    ):
        zoo.load_adapter(base, saved)
    assert not any(isinstance(m, LoRALinear) for m in base.modules())


@pytest.mark.parametrize(
    "method", [m for m in zoo.list_methods() if not m.startswith("peft_")]
)  # the bridge: test_peft_bridge.py
@pytest.mark.parametrize("kind", ["tiny-llama", "tiny-gpt2", "tiny-bert"])
def test_the_dry_run_predicts_every_builtin_methods_tensors(method, kind, caplog):
    """Every built-in wrap function runs on the meta device, so no built-in falls back to checking after wrapping."""
    from zoo.dry_run import implied_shapes

    if refused(method, kind) is not None:
        pytest.skip(f"{method} does not support {kind}")
    cfg = wrap_for_test(method, make_model(kind)).method_config
    with caplog.at_level(logging.WARNING, logger="zoo.io.adapter_checks"):
        implied = implied_shapes(make_model(kind), zoo.get_method(method), cfg)
    real = {name: tuple(p.shape) for name, p in zoo.wrap(make_model(kind), cfg).adapter_state_dict().items()}
    assert implied == real
    assert not caplog.records


@dataclass
class _ScaleConfig(zoo.MethodConfig):
    """A plugin-like method whose wrap function reads a base value, so it cannot run on the meta device."""


class _Scale(nn.Module):
    def __init__(self, base: nn.Module):
        super().__init__()
        self.base = base
        self.scale = nn.Parameter(torch.tensor(base.weight.abs().max().item()))

    def adapter_params(self) -> list[str]:
        return ["scale"]

    def forward(self, x):
        return self.base(x) * self.scale


def _wrap_scale(model: nn.Module, cfg: _ScaleConfig) -> nn.Module:
    name = "model.layers.0.self_attn.q_proj"
    replace_module(model, name, _Scale(model.get_submodule(name)))
    return model


def test_a_method_that_cannot_run_on_meta_still_loads(tmp_path, batch, monkeypatch, caplog):
    monkeypatch.setattr(registry, "_methods", dict(registry._methods))
    zoo.register("scale_probe", config=_ScaleConfig, identity_at_init=False)(_wrap_scale)
    model = zoo.wrap(make_model("tiny-llama"), "scale_probe")
    perturb(model)
    zoo.save_adapter(model, tmp_path / "adapter")
    with caplog.at_level(logging.WARNING, logger="zoo.io.adapter_checks"):
        loaded = zoo.load_adapter(make_model("tiny-llama"), tmp_path / "adapter")
    assert "method 'scale_probe' cannot be wrapped on the meta device (RuntimeError" in caplog.text
    with torch.no_grad():
        torch.testing.assert_close(output(loaded, batch), output(model, batch), atol=0, rtol=0)


# 3d. the fingerprint covers the model's config


def test_an_adapter_is_refused_on_equal_weights_with_another_rope_theta(saved, batch):
    base = make_model("tiny-llama")
    config = copy.deepcopy(base.config)
    config.rope_parameters = {**config.rope_parameters, "rope_theta": 500.0}
    other = LlamaForCausalLM(config).eval()
    other.load_state_dict(base.state_dict())
    with torch.no_grad():
        assert not torch.allclose(output(other, batch), output(base, batch), atol=1e-3), "rope_theta must change the outputs"
    with pytest.raises(ValueError, match="another base model"):
        zoo.load_adapter(other, saved)


def test_fingerprint_survives_save_pretrained_and_a_lossless_dtype_round_trip(kind, tmp_path):
    from zoo.fingerprint import fingerprint

    base = make_model(kind)
    base.save_pretrained(tmp_path / "base")
    cls, extra = (BertModel, {"add_pooling_layer": False}) if kind == "tiny-bert" else (AutoModelForCausalLM, {})
    assert fingerprint(cls.from_pretrained(tmp_path / "base", **extra)) == fingerprint(base)
    wide = cls.from_pretrained(tmp_path / "base", dtype=torch.float64, **extra).float()
    assert wide.config.dtype == torch.float64  # the config still records float64 ...
    assert fingerprint(wide) == fingerprint(base)  # ... which is not what the model computes


def test_fingerprint_of_a_model_without_config_is_its_weights():
    from zoo.fingerprint import fingerprint, weights_fingerprint

    model = nn.Sequential(nn.Linear(3, 2))
    assert fingerprint(model) == weights_fingerprint(model)
    changed = copy.deepcopy(model)
    with torch.no_grad():
        changed[0].bias.add_(1.0)
    assert fingerprint(changed) != fingerprint(model)


def test_an_adapter_loads_onto_a_save_pretrained_copy(saved, tmp_path, batch):
    make_model("tiny-llama").save_pretrained(tmp_path / "base")
    expected = output(zoo.load_adapter(make_model("tiny-llama"), saved), batch)
    got = output(zoo.load_adapter(AutoModelForCausalLM.from_pretrained(tmp_path / "base"), saved), batch)
    torch.testing.assert_close(got, expected, atol=0, rtol=0)


# the file format


def test_a_format_1_folder_still_loads(saved, batch, caplog):
    """Format 1 (no config checksum, a weights-only fingerprint) is read, with a warning."""
    from zoo.fingerprint import sampled_weights_fingerprint

    expected = output(zoo.load_adapter(make_model("tiny-llama"), saved), batch)
    meta = _meta(saved)
    del meta["config_sha256"]
    meta.update(format=1, base_fingerprint=sampled_weights_fingerprint(make_model("tiny-llama")))
    (saved / CONFIG).write_text(json.dumps(meta))
    with caplog.at_level(logging.WARNING, logger="zoo.io.adapter_io"):
        got = output(zoo.load_adapter(make_model("tiny-llama"), saved), batch)
    torch.testing.assert_close(got, expected, atol=0, rtol=0)
    assert "old format 1" in caplog.text and "save the adapter again" in caplog.text
    meta["config"]["alpha"] = "16"
    (saved / CONFIG).write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="config field 'alpha' of method 'lora' is '16'; expected float"):
        zoo.load_adapter(make_model("tiny-llama"), saved)


def test_an_unknown_format_names_the_readable_ones(saved):
    meta = _meta(saved)
    meta["format"] = 4
    _rewrite(saved, meta)
    version = re.escape(zoo.__version__)
    with pytest.raises(
        ValueError, match=rf"has format 4 \(written by zoo '{version}'\); zoo {version} reads formats \[1, 2, 3\]"
    ):
        zoo.load_adapter(make_model("tiny-llama"), saved)


def test_a_run_in_a_project_folder_keeps_the_projects_files(tmp_path):
    """``hydra.run.dir=.`` makes the project folder the run folder: its adapter/ and checkpoint/ are zoo's only if zoo made them."""
    from hydra import compose, initialize_config_module

    from zoo.runner.config import store_configs
    from zoo.runner.run import run

    store_configs()
    with initialize_config_module(config_module="zoo.conf", version_base=None):
        cfg = compose(
            "config",
            overrides=[
                "trainer=smoke",
                "latency_batches=1",
                "trainer.checkpoint_every=2",
                "model.pretrain_steps=0",
                "task.n_train=16",
                "task.n_eval=8",
                f"predictions_cache={tmp_path / 'cache'}",
            ],
        )
    project = tmp_path / "project"
    (project / "src").mkdir(parents=True)
    (project / "src" / "main.py").write_text("print('mine')\n")
    run(cfg, project)
    run(cfg, project)  # the second run replaces the adapter and checkpoint the first one saved
    assert (project / "src" / "main.py").read_text() == "print('mine')\n"
    assert sorted(p.name for p in (project / "adapter").iterdir()) == [MANIFEST, CONFIG, WEIGHTS]
    (project / "checkpoint" / "notes.txt").write_text("mine too\n")
    with pytest.raises(FileExistsError, match=r"checkpoint'.*zoo did not write .*\['notes.txt'\]"):
        run(cfg, project)
    assert (project / "checkpoint" / "notes.txt").read_text() == "mine too\n"
