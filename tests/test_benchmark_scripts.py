"""The benchmark scripts reuse the library: no branches on a method's name, peft equivalents from the specs, overrides as data."""

from __future__ import annotations

import copy
import json

import peft
import pytest
import torch
import transformers

import zoo
from benchmarks import step_speed, structure_analysis


@pytest.fixture(scope="module")
def gqa_llama():
    """A tiny Llama with grouped-query attention, where peft's prefix width differs from the hidden size."""
    config = transformers.LlamaConfig(
        vocab_size=128,
        hidden_size=64,
        intermediate_size=96,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        tie_word_embeddings=True,
    )
    torch.manual_seed(0)
    return transformers.LlamaForCausalLM(config).eval()


SAME_SIZE = {"llama_adapter": {"gate": "scalar"}}
"""zoo's fields that differ from peft by design (zoo gates each head, peft each layer), set to peft's for the size check."""


EQUIVALENTS = [name for name in zoo.list_methods() if step_speed.peft_equivalent(zoo.get_method(name))]
"""Methods whose spec names peft's config of the same size, as step_speed.py finds them."""


def test_the_built_in_methods_peft_implements_declare_an_equivalent():
    assert set(EQUIVALENTS) >= {"ia3", "llama_adapter", "lora", "p_tuning", "prefix_tuning", "prompt_tuning"}


@pytest.mark.parametrize("method", EQUIVALENTS)
def test_each_peft_equivalent_has_zoo_s_size(method, gqa_llama):
    equivalent = zoo.get_method(method).peft
    overrides = equivalent.zoo_overrides(gqa_llama.config) if equivalent.zoo_overrides else {}
    cfg = zoo.get_method(method).config(**overrides, **SAME_SIZE.get(method, {}))
    ours = zoo.count_parameters(zoo.wrap(copy.deepcopy(gqa_llama), cfg))[0]
    theirs = peft.get_peft_model(copy.deepcopy(gqa_llama), equivalent.equivalent_config(cfg, gqa_llama.config))
    assert ours == sum(p.numel() for p in theirs.parameters() if p.requires_grad) > 0


def test_prefix_equivalent_embeds_at_the_key_value_width(gqa_llama):
    assert zoo.get_method("prefix_tuning").peft.zoo_overrides(gqa_llama.config) == {"embedding_dim": 32}


@pytest.fixture(scope="module")
def structure():
    return structure_analysis


def test_method_overrides_lay_over_the_defaults_field_by_field(structure):
    merged = structure.merged_overrides({"lora": {"method": {"r": 2}}, "gift": {"trainer": {"max_steps": 3}}})
    assert merged["lora"]["method"] == {"target_modules": structure.ALL_PROJECTIONS, "r": 2}
    assert merged["gift"] == {"trainer": {"max_steps": 3}}
    assert merged["full_finetune"] == structure.METHOD_OVERRIDES["full_finetune"]
    assert structure.METHOD_OVERRIDES["lora"]["method"] == {"target_modules": structure.ALL_PROJECTIONS}  # the defaults stay


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"lorra": {}}, r"unknown method\(s\) \['lorra'\]; registered methods: \[.*'lora'"),
        ({"lora": {"optimiser": {}}}, r"--method-overrides\['lora'\] must be an object with keys among \['method', 'trainer'\]"),
    ],
)
def test_bad_method_overrides_say_what_is_valid(structure, extra, message):
    with pytest.raises(ValueError, match=message):
        structure.merged_overrides(extra)


def test_tiny_mode_tunes_every_method_through_zoo(structure, tmp_path):
    """The full fine-tune is the registered method like any other: trained by zoo's loop, merged, saved, analysed."""
    argv = [
        "--out",
        str(tmp_path),
        "--methods",
        "full_finetune,lora",
        "--steps",
        "2",
        "--layers",
        "2",
        "--n-eval",
        "16",
        "--batch-size",
        "8",
        "--method-overrides",
        '{"lora": {"method": {"r": 2}}}',
    ]
    assert structure.main(argv) == 0
    summary = (tmp_path / "summary.md").read_text()
    rows = [line for line in summary.splitlines() if "(merged) vs random tiny-llama (2 layers)" in line]
    assert [row.split(" | ")[0] for row in rows] == [
        "| full_finetune (merged) vs random tiny-llama (2 layers)",
        "| lora (merged) vs random tiny-llama (2 layers)",
    ]
    assert all(float(row.split(" | ")[1]) > 0 for row in rows)  # ‖ΔW‖/‖W‖: both changed the weights
    for method in ("full_finetune", "lora"):
        assert json.loads((tmp_path / method / "adapter" / "adapter_config.json").read_text())["method"] == method
    lora = json.loads((tmp_path / "lora" / "adapter" / "adapter_config.json").read_text())["config"]
    assert lora["r"] == 2 and lora["target_modules"] == structure.ALL_PROJECTIONS  # the default and the CLI's override
