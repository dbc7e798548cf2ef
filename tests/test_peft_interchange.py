"""Adapters both ways between zoo and peft: zoo -> peft -> zoo and peft -> zoo give the same outputs,
and adapters whose formats disagree are refused with the option that would make them fit.

peft's outputs are compared by forward logits (peft 0.21's generate is broken on transformers 5.24,
see peft_oracle.py); peft returns the virtual positions of prompt and P-tuning too, zoo does not.
"""

from __future__ import annotations

import copy
import json

import peft
import pytest
import torch
from conftest import make_model
from contract_helpers import output, perturb
from peft_oracle import quiet_peft

import zoo
from zoo.io.export_dir import MARKER
from zoo.io.peft_interchange import NotConvertible, export_peft

ATOL = 1e-5
P = 3
EXPORTS = [  # (method, family, overrides, zoo method after the round trip)
    ("lora", "tiny-llama", {"r": 4}, "lora"),
    ("lora", "tiny-gpt2", {"r": 4}, "lora"),
    ("ia3", "tiny-llama", {}, "ia3"),
    ("ia3", "tiny-gpt2", {}, "ia3"),  # fused c_attn: zoo's fixed query ones go into peft's one vector
    ("ia3", "tiny-qwen2", {}, "ia3"),
    ("ia3", "tiny-bert", {}, "ia3"),
    ("ia3", "tiny-gpt-neox", {}, "ia3"),  # fused query_key_value laid out head by head: the ones go where the queries are
    ("ia3", "tiny-phi3", {}, "ia3"),  # fused qkv_proj with grouped-query widths
    ("lora", "tiny-gemma3", {"r": 2}, "lora"),
    ("lora_plus", "tiny-llama", {"r": 4}, "lora"),  # LoRA's weights: its recipe is in the optimiser, which peft does not save
    ("prompt_tuning", "tiny-llama", {"num_virtual_tokens": P}, "prompt_tuning"),
    ("prompt_tuning", "tiny-bert", {"num_virtual_tokens": P}, "prompt_tuning"),
    ("p_tuning", "tiny-llama", {"num_virtual_tokens": P}, "prompt_tuning"),  # peft keeps the encoder's output only
    ("p_tuning", "tiny-gpt2", {"num_virtual_tokens": P, "encoder_type": "mlp"}, "prompt_tuning"),
    ("prefix_tuning", "tiny-llama", {"num_virtual_tokens": P}, "prefix_tuning"),
    ("prefix_tuning", "tiny-gpt2", {"num_virtual_tokens": P, "reparameterize": False}, "prefix_tuning"),
    ("llama_adapter", "tiny-llama", {"adapter_len": P, "gate": "scalar"}, "llama_adapter"),
    ("llama_adapter", "tiny-mistral", {"adapter_len": P, "adapter_layers": 1, "gate": "scalar"}, "llama_adapter"),
]


def test_every_built_in_method_declaring_a_peft_format_has_round_trips_here():
    """The cases above are the oracle for what the specs declare: a built-in method that gains a PeftFormat needs its own."""
    declared = {m for m in zoo.list_methods() if zoo.get_method(m).peft is not None and zoo.get_method(m).source == "zoo"}
    assert declared == {method for method, *_ in EXPORTS}


def _peft_output(model, batch) -> torch.Tensor:
    with torch.no_grad(), quiet_peft():
        return output(model.eval(), batch)


def _real_positions(theirs: torch.Tensor, ours: torch.Tensor) -> torch.Tensor:
    """peft's output cut to the real tokens (it keeps the virtual ones of prompt and P-tuning in front)."""
    return theirs[:, theirs.shape[1] - ours.shape[1] :]


@pytest.mark.parametrize(("method", "kind", "overrides", "back"), EXPORTS, ids=[f"{m}-{k}" for m, k, *_ in EXPORTS])
def test_zoo_to_peft_to_zoo_keeps_the_outputs(method, kind, overrides, back, batch, tmp_path):
    ours = zoo.wrap(make_model(kind), method, **overrides)
    perturb(ours)
    with torch.no_grad():
        expected = output(ours, batch)
        assert (expected - output(make_model(kind), batch)).abs().max() > 1e-3, "the adapter must change the output"
    folder = zoo.export_peft(ours, tmp_path / "peft")
    assert json.loads((folder / MARKER).read_text())["method"] == method

    theirs = peft.PeftModel.from_pretrained(make_model(kind), folder)
    torch.testing.assert_close(_real_positions(_peft_output(theirs, batch), expected), expected, atol=ATOL, rtol=0)

    again = zoo.load_adapter(make_model(kind), folder)
    assert again.method == back
    with torch.no_grad():
        torch.testing.assert_close(output(again, batch), expected, atol=ATOL, rtol=0)


@torch.no_grad()
def _randomise(model, seed: int = 0) -> None:
    """Move every trainable tensor of a peft model off its init (peft's IA3 starts at ones, its gates at zero)."""
    g = torch.Generator().manual_seed(seed)
    for p in model.parameters():
        if p.requires_grad:
            p.add_(0.1 * torch.randn(p.shape, generator=g, dtype=p.dtype))


PEFT_ADAPTERS = [  # (id, family, peft config, zoo method it imports as)
    ("lora", "tiny-llama", lambda: peft.LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "down_proj"]), "lora"),
    ("rslora", "tiny-llama", lambda: peft.LoraConfig(r=4, lora_alpha=8, use_rslora=True, target_modules=["k_proj"]), "lora"),
    ("lora-conv1d", "tiny-gpt2", lambda: peft.LoraConfig(r=2, target_modules=["c_attn"], fan_in_fan_out=True), "lora"),
    ("ia3", "tiny-llama", lambda: peft.IA3Config(task_type="CAUSAL_LM"), "ia3"),
    ("ia3-query", "tiny-qwen2", lambda: peft.IA3Config(task_type="CAUSAL_LM"), "ia3"),  # peft's table: q, v, down
    (
        "prompt_tuning",
        "tiny-llama",
        lambda: peft.PromptTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=P),
        "prompt_tuning",
    ),
    (
        "prompt_tuning-encoder",
        "tiny-bert",
        lambda: peft.PromptTuningConfig(task_type="FEATURE_EXTRACTION", num_virtual_tokens=P),
        "prompt_tuning",
    ),
    ("ia3-encoder", "tiny-bert", lambda: peft.IA3Config(task_type="FEATURE_EXTRACTION"), "ia3"),
    (
        "p_tuning-lstm",
        "tiny-llama",
        lambda: peft.PromptEncoderConfig(
            task_type="CAUSAL_LM", num_virtual_tokens=P, encoder_reparameterization_type="LSTM", encoder_hidden_size=16
        ),
        "prompt_tuning",
    ),
    ("prefix", "tiny-gpt2", lambda: peft.PrefixTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=P), "prefix_tuning"),
    (
        "prefix-projection",
        "tiny-llama",
        lambda: peft.PrefixTuningConfig(
            task_type="CAUSAL_LM", num_virtual_tokens=P, prefix_projection=True, encoder_hidden_size=16
        ),
        "prefix_tuning",
    ),
    (
        "adaption_prompt",
        "tiny-llama",
        lambda: peft.AdaptionPromptConfig(task_type="CAUSAL_LM", adapter_len=P, adapter_layers=1),
        "llama_adapter",
    ),
]


@pytest.mark.parametrize(("kind", "make_config", "method"), [a[1:] for a in PEFT_ADAPTERS], ids=[a[0] for a in PEFT_ADAPTERS])
def test_adapter_peft_saved_imports_to_the_same_outputs(kind, make_config, method, batch, tmp_path):
    theirs = peft.get_peft_model(make_model(kind), make_config())
    _randomise(theirs)
    theirs.save_pretrained(tmp_path / "peft")
    expected = peft.PeftModel.from_pretrained(make_model(kind), tmp_path / "peft")  # what peft itself serves from the folder
    ours = zoo.load_adapter(make_model(kind), tmp_path / "peft")
    assert ours.method == method
    with torch.no_grad():
        got = output(ours, batch)
        assert (got - output(make_model(kind), batch)).abs().max() > 1e-3, "the adapter must change the output"
    torch.testing.assert_close(got, _real_positions(_peft_output(expected, batch), got), atol=ATOL, rtol=0)


def test_imported_adapter_trains_and_saves_as_zoo_adapter(tmp_path):
    theirs = peft.get_peft_model(make_model("tiny-llama"), peft.LoraConfig(r=2, target_modules=["q_proj"]))
    theirs.save_pretrained(tmp_path / "peft")
    ours = zoo.load_adapter(make_model("tiny-llama"), tmp_path / "peft")
    assert {n for n, p in ours.named_parameters() if p.requires_grad} == {f"model.{n}" for n in ours.adapter_state_dict()}
    zoo.save_adapter(ours, tmp_path / "zoo")
    assert zoo.load_adapter(make_model("tiny-llama"), tmp_path / "zoo").method_config == ours.method_config


def test_gpt2_ia3_trained_on_the_query_is_refused(tmp_path):
    """peft's one vector over GPT-2's fused c_attn also scales the queries, which zoo's IA3 fixes at one."""
    theirs = peft.get_peft_model(make_model("tiny-gpt2"), peft.IA3Config(task_type="CAUSAL_LM"))
    theirs.save_pretrained(tmp_path / "ones")  # untrained: the query part is still 1, so it imports
    zoo.load_adapter(make_model("tiny-gpt2"), tmp_path / "ones")
    with torch.no_grad():
        theirs.base_model.model.transformer.h[0].attn.c_attn.ia3_l["default"][:64] = 1.5
    theirs.save_pretrained(tmp_path / "query")
    with pytest.raises(NotConvertible, match=r"transformer\.h\.0\.attn\.c_attn.*not 1 on the query features"):
        zoo.load_adapter(make_model("tiny-gpt2"), tmp_path / "query")


@pytest.mark.parametrize(
    ("method", "kind", "overrides", "match"),
    [
        ("llama_adapter", "tiny-llama", {}, r"gate='per_head_tanh' does not convert.*wrap with gate='scalar' to export"),
        ("llama_adapter", "tiny-gpt2", {"gate": "scalar"}, r"model types \['llama', 'mistral'\] only, not 'gpt2'"),
        ("prefix_tuning", "tiny-bert", {}, "prefix tuning on an encoder does not convert"),
    ],
)
def test_adapters_whose_formats_disagree_are_not_exported(method, kind, overrides, match, tmp_path):
    model = zoo.wrap(make_model(kind), method, **overrides)
    with pytest.raises(NotConvertible, match=match):
        export_peft(model, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_methods_without_a_peft_format_and_merged_models_are_refused(tmp_path):
    with pytest.raises(
        ValueError, match=r"method 'gift' has no peft format; exportable methods: \['ia3', 'llama_adapter', 'lora'"
    ):
        export_peft(zoo.wrap(make_model("tiny-llama"), "gift"), tmp_path / "out")
    with pytest.raises(ValueError, match="unmerge the model before exporting"):
        export_peft(zoo.merge(zoo.wrap(make_model("tiny-llama"), "ia3")), tmp_path / "out")
    with pytest.raises(TypeError, match="needs a model returned by zoo.wrap"):
        export_peft(make_model("tiny-llama"), tmp_path / "out")


@pytest.mark.parametrize(
    ("config", "match"),
    [
        (lambda: peft.LoraConfig(r=2, target_modules=["q_proj"], use_dora=True), r"peft option use_dora=True has no equivalent"),
        (lambda: peft.LoraConfig(r=2, target_modules=["q_proj"], bias="all"), r"peft option bias='all' has no equivalent"),
        (lambda: peft.LoraConfig(r=2, target_modules=["q_proj"], rank_pattern={"q_proj": 4}), "peft option rank_pattern="),
    ],
)
def test_peft_options_zoo_lacks_are_refused(config, match, tmp_path):
    peft.get_peft_model(make_model("tiny-llama"), config()).save_pretrained(tmp_path / "peft")
    with pytest.raises(NotConvertible, match=match):
        zoo.load_adapter(make_model("tiny-llama"), tmp_path / "peft")


def test_peft_ia3_scaling_a_feedforward_output_is_refused(tmp_path):
    """With no feedforward_modules zoo scales a feed-forward output projection's input; peft then scales its output."""
    config = peft.IA3Config(target_modules=["k_proj", "down_proj"], feedforward_modules=[])
    peft.get_peft_model(make_model("tiny-llama"), config).save_pretrained(tmp_path / "peft")
    with pytest.raises(
        NotConvertible,
        match=r"peft scales the output of 'model\.layers\.0\.mlp\.down_proj' and names no "
        "feedforward_modules",
    ):
        zoo.load_adapter(make_model("tiny-llama"), tmp_path / "peft")


def test_encoder_prefix_is_not_imported(tmp_path):
    config = peft.PrefixTuningConfig(task_type="FEATURE_EXTRACTION", num_virtual_tokens=P)
    peft.get_peft_model(make_model("tiny-bert"), config).save_pretrained(tmp_path / "peft")
    with pytest.raises(NotConvertible, match="prefix tuning on an encoder does not convert: peft shifts"):
        zoo.load_adapter(make_model("tiny-bert"), tmp_path / "peft")


def test_peft_types_zoo_lacks_are_refused(tmp_path):
    peft.get_peft_model(make_model("tiny-llama"), peft.LoKrConfig(r=2, target_modules=["q_proj"])).save_pretrained(tmp_path / "p")
    with pytest.raises(ValueError, match=r"holds a peft 'LOKR' adapter, which zoo has no method for; importable peft types: \["):
        zoo.load_adapter(make_model("tiny-llama"), tmp_path / "p")


def test_a_folder_neither_zoo_nor_peft_wrote_is_named(tmp_path):
    folder = tmp_path / "other"
    folder.mkdir()
    (folder / "adapter_config.json").write_text('{"rank": 8}')
    (folder / "adapter_model.safetensors").write_bytes(b"")
    with pytest.raises(
        ValueError,
        match=rf"'{folder}' is not an adapter folder zoo or peft wrote.*neither a zoo 'format' and "
        r"'method' nor a peft 'peft_type'",
    ):
        zoo.load_adapter(make_model("tiny-llama"), folder)


def test_a_zoo_export_refuses_another_base_model(tmp_path):
    folder = export_peft(zoo.wrap(make_model("tiny-llama"), "ia3"), tmp_path / "peft")
    with pytest.raises(ValueError, match="exported by zoo from another base model"):
        zoo.load_adapter(make_model("tiny-llama", seed=1), folder)


def test_export_replaces_its_own_folder_and_never_a_foreign_one(tmp_path):
    model = zoo.wrap(make_model("tiny-llama"), "lora", r=2)
    target = export_peft(model, tmp_path / "peft")
    export_peft(zoo.wrap(make_model("tiny-llama"), "lora", r=4), target)  # zoo's own export: replaced
    assert json.loads((target / "adapter_config.json").read_text())["r"] == 4
    theirs = tmp_path / "theirs"
    peft.get_peft_model(make_model("tiny-llama"), peft.LoraConfig(r=2, target_modules=["q_proj"])).save_pretrained(theirs)
    before = {p.name: p.read_bytes() for p in theirs.iterdir()}
    with pytest.raises(FileExistsError, match=rf"cannot write a peft adapter to '{theirs}': it holds what zoo did not write"):
        export_peft(model, theirs)
    assert {p.name: p.read_bytes() for p in theirs.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["peft", "theirs"]  # no staging folder left behind


def test_peft_folder_without_safetensors_is_refused(tmp_path):
    peft.get_peft_model(make_model("tiny-llama"), peft.LoraConfig(r=2, target_modules=["q_proj"])).save_pretrained(
        tmp_path / "bin", safe_serialization=False
    )
    with pytest.raises(FileNotFoundError, match="has no adapter_model.safetensors.*safe_serialization=True"):
        zoo.load_adapter(make_model("tiny-llama"), tmp_path / "bin")


def test_export_of_a_copy_leaves_the_model_untouched(batch, tmp_path):
    """Exporting P-tuning evaluates its encoder in eval mode and restores the training flag."""
    model = zoo.wrap(make_model("tiny-llama"), "p_tuning", num_virtual_tokens=P, encoder_dropout=0.5).train()
    state = copy.deepcopy(model.adapter_state_dict())
    export_peft(model, tmp_path / "peft")
    assert model.model.prompt.training
    assert all(torch.equal(v, state[k]) for k, v in model.adapter_state_dict().items())
