"""A peft folder imports as peft itself reads it, or not at all: its ``target_modules`` (a list of names or a
regex), ``exclude_modules`` and ``layers_to_transform`` decide which tensors load, exactly as in peft, and its
numeric fields must be finite numbers of the right type. peft is the oracle."""

from __future__ import annotations

import json
import logging

import peft
import pytest
import torch
from conftest import make_model
from contract_helpers import output
from peft_oracle import quiet_peft

import zoo
from zoo.io.peft_interchange import NotConvertible

ATOL = 1e-5
FOUR = ["q_proj", "k_proj", "v_proj", "o_proj"]


def _saved(folder, config: peft.PeftConfig, **edits):
    """A peft adapter of ``config`` on the tiny Llama, moved off its init, saved to ``folder``; ``edits`` then
    replace entries of its adapter_config.json (a hand-edited or foreign config)."""
    model = peft.get_peft_model(make_model("tiny-llama"), config)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(0.1 * torch.randn(p.shape, generator=g))
    model.save_pretrained(folder)
    meta = json.loads((folder / "adapter_config.json").read_text())
    (folder / "adapter_config.json").write_text(json.dumps({**meta, **edits}))
    return folder


def _peft_output(folder, batch) -> torch.Tensor:
    theirs = peft.PeftModel.from_pretrained(make_model("tiny-llama"), folder).eval()
    with torch.no_grad(), quiet_peft():
        return output(theirs, batch)


@pytest.mark.parametrize(
    "edits",
    [
        {"target_modules": ["q_proj", "v_proj"]},  # 2 of the 4 modules whose tensors the file holds
        {"target_modules": ".*q_proj"},  # a regex, matched against the whole module name
        {"target_modules": r"model\.layers\.1\.self_attn\.(k|o)_proj"},
        {"exclude_modules": ["k_proj"]},
        {"layers_to_transform": [0]},
        {"layers_to_transform": 1, "layers_pattern": "layers"},
    ],
    ids=["two-of-four", "regex", "regex-one-layer", "exclude", "layers-list", "layer-and-pattern"],
)
def test_the_modules_peft_adapts_are_the_ones_zoo_loads(edits, batch, tmp_path, caplog):
    folder = _saved(tmp_path / "peft", peft.LoraConfig(r=2, lora_alpha=4, target_modules=FOUR), **edits)
    expected = _peft_output(folder, batch)
    with caplog.at_level(logging.WARNING, logger="zoo.peft_format"):
        ours = zoo.load_adapter(make_model("tiny-llama"), folder)
    with torch.no_grad():
        got = output(ours, batch)
        everything = output(
            zoo.load_adapter(
                make_model("tiny-llama"), _saved(tmp_path / "all", peft.LoraConfig(r=2, lora_alpha=4, target_modules=FOUR))
            ),
            batch,
        )
    torch.testing.assert_close(got, expected, atol=ATOL, rtol=0)
    assert (got - everything).abs().max() > 1e-3, "the config must leave some of the file's tensors unused"
    assert "which target_modules=" in caplog.text and "does not select; peft does not load them" in caplog.text


def test_target_modules_that_select_no_module_are_refused_as_peft_refuses_them(tmp_path):
    folder = _saved(tmp_path / "peft", peft.LoraConfig(r=2, target_modules=FOUR), target_modules=["foo_proj"])
    with pytest.raises(ValueError, match="foo_proj"), quiet_peft():
        peft.PeftModel.from_pretrained(make_model("tiny-llama"), folder)
    with pytest.raises(
        NotConvertible,
        match=r"target_modules=\['foo_proj'\] selects no module of the base model, so peft "
        r"refuses this adapter; the file holds tensors for \['model.layers.0.self_attn.k_proj'",
    ):
        zoo.load_adapter(make_model("tiny-llama"), folder)


def test_target_modules_that_select_a_module_without_tensors_are_refused(tmp_path):
    folder = _saved(tmp_path / "peft", peft.LoraConfig(r=2, target_modules=["q_proj"]), target_modules=["q_proj", "v_proj"])
    with pytest.raises(
        NotConvertible, match=r"selects \[.*'model.layers.0.self_attn.v_proj'.*\], whose tensors the file does not hold"
    ):
        zoo.load_adapter(make_model("tiny-llama"), folder)


@pytest.mark.parametrize(
    "field,value,match",
    [
        ("lora_alpha", float("nan"), "lora_alpha=nan must be a finite number"),
        ("lora_alpha", float("inf"), "lora_alpha=inf must be a finite number"),
        ("lora_alpha", "16", "lora_alpha='16' must be a finite number"),
        ("lora_alpha", None, "lora_alpha=None must be a finite number"),
        ("r", "2", "r='2' must be an integer"),
        ("r", 2.0, "r=2.0 must be an integer"),
        ("lora_dropout", float("nan"), "lora_dropout=nan must be a finite number"),
        ("target_modules", 3, "target_modules=3 must be str | list"),
        ("target_modules", "(", r"target_modules='\(' is not a valid regex"),
        ("layers_to_transform", "0", "layers_to_transform='0' must be int | list"),
    ],
)
def test_a_numeric_or_target_field_of_the_wrong_type_is_refused_naming_it(field, value, match, tmp_path):
    folder = _saved(tmp_path / "peft", peft.LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj"]), **{field: value})
    with pytest.raises(NotConvertible, match=rf"{tmp_path / 'peft'}: peft config field {match}"):
        zoo.load_adapter(make_model("tiny-llama"), folder)


def test_peft_itself_serves_nan_for_a_nan_alpha(batch, tmp_path):
    """Why a NaN alpha is refused rather than read: peft loads it and every output is NaN."""
    folder = _saved(tmp_path / "peft", peft.LoraConfig(r=2, target_modules=["q_proj"]), lora_alpha=float("nan"))
    assert torch.isnan(_peft_output(folder, batch)).all()


@pytest.mark.parametrize(
    "config,edits,match",
    [
        (
            lambda: peft.PromptTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=3),
            {"num_virtual_tokens": 5},
            "num_virtual_tokens=5 does not match the file, which holds tensors of size 3",
        ),
        (
            lambda: peft.PromptTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=3),
            {"num_virtual_tokens": "3"},
            "num_virtual_tokens='3' must be an integer",
        ),
        (
            lambda: peft.AdaptionPromptConfig(task_type="CAUSAL_LM", adapter_len=3, adapter_layers=1),
            {"adapter_layers": 2},
            "adapter_layers=2 does not match the file, which holds tensors of size 1",
        ),
        (
            lambda: peft.AdaptionPromptConfig(task_type="CAUSAL_LM", adapter_len=3, adapter_layers=1),
            {"adapter_len": 3.5},
            "adapter_len=3.5 must be an integer",
        ),
        (
            lambda: peft.PrefixTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=3),
            {"num_virtual_tokens": 4},
            "num_virtual_tokens=4 does not match the file",
        ),
    ],
)
def test_size_fields_of_the_other_peft_types_are_checked_against_the_tensors(config, edits, match, tmp_path):
    folder = _saved(tmp_path / "peft", config(), **edits)
    with pytest.raises(NotConvertible, match=f"peft config field {match}"):
        zoo.load_adapter(make_model("tiny-llama"), folder)
