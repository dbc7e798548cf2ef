"""``zoo-export``: a tiny run of every mergeable method, merged into a plain transformers folder that
``AutoModelForCausalLM`` loads to the wrapped model's logits; ``--peft`` for the exportable methods;
refusals of non-mergeable methods, of merges a method refuses or that would add a tensor, and of folders zoo did not create."""

from __future__ import annotations

import importlib
import json
import sys

import peft
import pytest
import torch
from hydra import compose, initialize_config_module
from hydra.core.config_store import ConfigStore
from peft_oracle import quiet_peft
from scaffold_helpers import broken_copy
from tiers import method_params
from transformers import AutoModelForCausalLM, AutoTokenizer

import zoo
from zoo import registry
from zoo.io.export_cli import main
from zoo.io.export_dir import MARKER
from zoo.io.merged_export import read_run
from zoo.models.load import ModelConfig, load_model
from zoo.runner import new_method
from zoo.runner.config import store_configs
from zoo.runner.run import run

MERGEABLE = [m for m in zoo.list_methods() if zoo.get_method(m).mergeable]
ATOL = 1e-5


@pytest.fixture(autouse=True)
def _home(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path_factory.mktemp("home")))  # the run's prediction cache, never ~/.cache


def _run(method: str, out):
    store_configs()
    with initialize_config_module(config_module="zoo.conf", version_base=None):
        cfg = compose(
            "config", overrides=["trainer.progress=false", "model.name=tiny-llama", "trainer.max_steps=3", f"method={method}"]
        )
    run(cfg, out)
    return out


def _ids(tokenizer) -> dict[str, torch.Tensor]:
    return tokenizer(["the movie was good .", "bad"], return_tensors="pt", padding=True)


def _wrapped(run_dir):
    """The run's model as zoo serves it: the base with the saved adapter, not merged."""
    record = read_run(run_dir)
    base, tokenizer = load_model(ModelConfig(**record.model_config))
    return zoo.load_adapter(base, run_dir / "adapter"), tokenizer


@pytest.mark.parametrize("method", method_params(MERGEABLE))
def test_merged_export_loads_in_transformers_to_the_wrapped_logits(method, tmp_path, capsys):
    run_dir = _run(method, tmp_path / "run")
    assert main([str(run_dir), "--merged", str(tmp_path / "merged")]) == 0
    assert f"wrote the merged model to {tmp_path / 'merged'}" in capsys.readouterr().out

    wrapped, tokenizer = _wrapped(run_dir)
    plain = AutoModelForCausalLM.from_pretrained(tmp_path / "merged").eval()
    exported_tokenizer = AutoTokenizer.from_pretrained(tmp_path / "merged")
    batch = _ids(tokenizer)
    assert torch.equal(
        exported_tokenizer(["the movie was good .", "bad"], return_tensors="pt", padding=True).input_ids, batch.input_ids
    )
    base, _ = load_model(ModelConfig(**read_run(run_dir).model_config))
    with torch.no_grad():
        expected = wrapped(**batch).logits
        got = plain(**batch).logits
        assert (expected - base(**batch).logits).abs().max() > 1e-4, "three steps must have changed the model"
    torch.testing.assert_close(got, expected, atol=ATOL, rtol=0)
    assert type(plain) is type(base) and set(plain.state_dict()) == set(base.state_dict())
    assert json.loads((tmp_path / "merged" / MARKER).read_text())["method"] == method


@pytest.fixture(scope="module")
def prompt_run(tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HOME", str(tmp_path_factory.mktemp("home")))
        return _run("prompt_tuning", tmp_path_factory.mktemp("prompt_run"))


def test_non_mergeable_method_is_named_with_the_mergeable_ones(prompt_run, tmp_path, capsys):
    assert main([str(prompt_run), "--merged", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "method 'prompt_tuning'" in err and "cannot be merged" in err and f"mergeable methods: {MERGEABLE}" in err
    assert not (tmp_path / "out").exists()


def test_peft_export_of_a_run_loads_in_peft(prompt_run, tmp_path):
    assert main([str(prompt_run), "--peft", str(tmp_path / "peft")]) == 0
    wrapped, tokenizer = _wrapped(prompt_run)
    theirs = peft.PeftModel.from_pretrained(
        load_model(ModelConfig(**read_run(prompt_run).model_config))[0], tmp_path / "peft"
    ).eval()
    batch = _ids(tokenizer)
    with torch.no_grad(), quiet_peft():
        expected, got = wrapped(**batch).logits, theirs(**batch).logits
    torch.testing.assert_close(got[:, -expected.shape[1] :], expected, atol=ATOL, rtol=0)


def test_never_replaces_a_folder_zoo_did_not_create(tmp_path, capsys):
    run_dir = _run("lora", tmp_path / "run")
    mine = tmp_path / "my-model"
    mine.mkdir()
    (mine / "config.json").write_text("{}")
    assert main([str(run_dir), "--merged", str(mine)]) == 2
    assert f"cannot write a merged model to '{mine}'" in capsys.readouterr().err
    assert [p.name for p in mine.iterdir()] == ["config.json"] and (mine / "config.json").read_text() == "{}"
    assert main([str(run_dir), "--merged", str(tmp_path / "out")]) == 0
    assert main([str(run_dir), "--merged", str(tmp_path / "out")]) == 0  # its own export: replaced
    assert sorted(p.name for p in tmp_path.iterdir()) == ["my-model", "out", "run"]  # no staging folder left behind


def test_a_folder_that_is_not_a_run_is_named(tmp_path, capsys):
    assert main([str(tmp_path), "--merged", str(tmp_path / "out")]) == 2
    assert f"{str(tmp_path)!r} is not a finished zoo run: it has no metrics.json" in capsys.readouterr().err


def test_an_output_option_is_required(tmp_path):
    with pytest.raises(SystemExit):
        main([str(tmp_path)])


@pytest.fixture
def scaffolded(tmp_path, monkeypatch):
    """Import the method ``zoo new-method`` writes (or a broken copy) under a name of the test's; removed afterwards."""
    monkeypatch.setattr(registry, "_methods", dict(registry._methods))
    stored = ConfigStore.instance().repo["method"]

    def install(name: str, broken: bool = False) -> str:
        folder = new_method.write_plugin(name, tmp_path / name)
        module = folder / f"zoo_{name}.py"
        if broken:
            module.write_text(broken_copy(module.read_text()))
        monkeypatch.syspath_prepend(str(folder))
        importlib.import_module(f"zoo_{name}")
        monkeypatch.delitem(sys.modules, f"zoo_{name}")
        monkeypatch.setitem(stored, f"{name}.yaml", None)  # held for the undo: store_configs puts the method there
        return name

    return install


def test_a_merge_the_method_refuses_for_its_config_is_reported_with_its_reason(scaffolded, tmp_path, capsys):
    run_dir = _run(scaffolded("scaffold_export"), tmp_path / "run")  # shift=True on tiny-llama's bias-free projections
    assert main([str(run_dir), "--merged", str(tmp_path / "out")]) == 2
    assert (
        "method 'scaffold_export' cannot merge this adapter into the base weights: shift=True on 4 layers without a bias "
        "(model.layers.0.self_attn.q_proj, ...)"
    ) in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_a_merge_that_adds_a_tensor_is_reported_naming_it_not_as_a_traceback(scaffolded, tmp_path, capsys):
    run_dir = _run(scaffolded("scaffold_broken_export", broken=True), tmp_path / "run")
    assert main([str(run_dir), "--merged", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(
        "zoo-export: merging method 'scaffold_broken_export' does not leave the base model's tensors: tensors "
        "the base model lacks: ['model.layers.0.self_attn.q_proj.bias', 'model.layers.0.self_attn.v_proj.bias',"
    )
    assert not (tmp_path / "out").exists()
