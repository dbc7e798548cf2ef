"""The peft bridge (zoo.peft_bridge): every peft tuner placed, configs generated from peft's, peft's own format works.

The method contract itself (identity, only adapter tensors train, save/load, merge, generate)
is checked for every bridged method by tests/test_contract.py, as for any registered method (with --full; by
default for the sample of tests/tiers.py, as the per-tuner tests here).
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any, Literal, Optional, Union

import peft
import pytest
import torch
from conftest import make_model
from contract_helpers import output, perturb
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf
from peft.mapping import PEFT_TYPE_TO_CONFIG_MAPPING
from tiers import method_params

import zoo
from zoo.peft_bridge import BRIDGED, UNBRIDGED, _register, bridged_methods, peft_model
from zoo.peft_bridge.config import ZOO_OWNED, zoo_type
from zoo.peft_bridge.tuners import Tuner
from zoo.runner.config import store_configs

BRIDGED_NAMES = bridged_methods()


def test_every_peft_type_is_bridged_or_left_out_with_a_reason():
    bridged = {t.peft_type for t in BRIDGED}
    installed = {str(t.value if hasattr(t, "value") else t) for t in PEFT_TYPE_TO_CONFIG_MAPPING}
    assert installed - bridged - set(UNBRIDGED) == set(), "a peft type is neither bridged nor listed in UNBRIDGED"
    assert (bridged - {"LORA"}) & set(UNBRIDGED) == set()
    assert all(len(reason) > 20 for reason in UNBRIDGED.values())
    assert len(BRIDGED_NAMES) >= 20 and all(zoo.get_method(m).source != "" for m in BRIDGED_NAMES)


def test_the_peft_types_zoo_s_own_methods_declare_are_left_out_naming_the_method():
    specs = [zoo.get_method(m) for m in zoo.list_methods()]
    # the method that imports each peft type (one per type; LoRA+ exports as LoRA and imports as nothing of its own)
    own = {
        spec.peft.peft_type: spec.name for spec in specs if spec.source == "zoo" and spec.peft is not None and spec.peft.import_
    }
    assert len(own) == 6 and all(f"`{method}`" in UNBRIDGED[peft_type] for peft_type, method in own.items())


def test_a_tuner_missing_from_the_installed_peft_is_not_registered():
    before = zoo.list_methods()
    _register(Tuner("peft_not_in_this_peft", "NOT_A_PEFT_TYPE", "a tuner of a newer peft"))
    assert zoo.list_methods() == before


@pytest.mark.parametrize(
    ("annotation", "expected"),
    [  # typing's Optional/Union: how peft's configs annotate
        (int, int),
        (Optional[float], float | None),
        (Literal["gaussian", "pissa"], str),  # noqa: UP045
        (Optional[Union[list[str], str]], Any),
        (list[int], list[int]),
        (Optional[dict], dict[str, Any] | None),  # noqa: UP007, UP045
        (Union[bool, Literal["pissa"]], Any),
        (Optional[list[tuple[int, int]]], None),  # noqa: UP007, UP045
        (Optional[list[dict]], list[Any] | None),
        (torch.nn.Module, None),
        (list[str] | None, list[str] | None),  # noqa: UP045
    ],
)
def test_peft_annotations_become_types_omegaconf_holds(annotation, expected):
    assert zoo_type(annotation) == expected


def test_a_generated_config_mirrors_peft_fields_defaults_and_help():
    config = zoo.get_method("peft_vera").config
    ours = {f.name: f for f in dataclasses.fields(config)}
    theirs = {f.name: f for f in dataclasses.fields(peft.VeraConfig)}
    assert set(ours) == set(theirs) - set(ZOO_OWNED) - set(config.dropped) | {"target_modules"}
    assert ours["r"].default == theirs["r"].default == 256
    assert ours["r"].metadata["help"] == theirs["r"].metadata["help"] and ours["r"].metadata["help"]
    assert ours["target_modules"].default is None
    assert "task_type" not in ours and "inference_mode" not in ours and "modules_to_save" not in ours


def test_a_pinned_field_is_not_a_config_field_and_changed_defaults_are_documented():
    dora = zoo.get_method("peft_dora").config
    assert "use_dora" not in {f.name for f in dataclasses.fields(dora)} and dora.preset == {"use_dora": True}
    vblora = zoo.get_method("peft_vblora").config
    assert vblora().vector_length == 16 != peft.VBLoRAConfig().vector_length
    assert "vector_length=16" in vblora.__doc__


def test_mutable_defaults_are_not_shared_between_configs():
    first, second = zoo.get_method("peft_loha").config(), zoo.get_method("peft_loha").config()
    first.rank_pattern["x"] = 2
    assert second.rank_pattern == {}


def test_peft_refuses_bad_values_when_the_config_is_built():
    with pytest.raises(ValueError, match="peft's BOFTConfig refuses"):
        zoo.get_method("peft_boft").config(boft_block_size=4, boft_block_num=4)
    with pytest.raises(ValueError, match="target_modules is empty"):
        zoo.get_method("peft_oft").config(target_modules=[])


def _compose(*overrides: str):
    store_configs()
    with initialize_config_module(config_module="zoo.conf", version_base=None):
        return compose("config", overrides=list(overrides))


def test_hydra_overrides_bridged_fields_with_their_types():
    cfg = OmegaConf.to_object(
        _compose("method=peft_dora", "method.r=4", "method.lora_dropout=0.1", "method.target_modules=[q_proj]").method
    )
    assert (type(cfg).__name__, cfg.r, cfg.lora_dropout, cfg.target_modules) == ("PeftDoraConfig", 4, 0.1, ["q_proj"])
    with pytest.raises(Exception, match="r"):
        _compose("method=peft_dora", "method.r=many")


def test_targets_default_to_the_roles_on_any_family():
    model = zoo.wrap(make_model("tiny-phi3"), "peft_loha")  # fused qkv_proj, which peft's own table knows under another name
    wrapped = {n.split(".base_model.model.", 1)[1].rsplit(".hada_", 1)[0] for n in model.adapter_state_dict()}
    assert wrapped == {"model.layers.0.self_attn.qkv_proj", "model.layers.1.self_attn.qkv_proj"}
    norms = zoo.wrap(make_model("tiny-llama"), "peft_ln_tuning")
    assert len({n.rsplit(".ln_tuning_layers", 1)[0] for n in norms.adapter_state_dict()}) == 4  # 2 norms × 2 blocks


def test_given_targets_match_as_in_zoo_suffixes_and_regexes():
    model = zoo.wrap(make_model("tiny-llama"), "peft_loha", target_modules=[r"re:.*layers\.0\.self_attn\.(q|k)_proj", "o_proj"])
    wrapped = {n.split(".base_model.model.", 1)[1].rsplit(".hada_", 1)[0] for n in model.adapter_state_dict()}
    assert wrapped == {
        "model.layers.0.self_attn.q_proj",
        "model.layers.0.self_attn.k_proj",
        "model.layers.0.self_attn.o_proj",
        "model.layers.1.self_attn.o_proj",
    }
    with pytest.raises(ValueError, match=r"target_modules=\['nowhere'\] matched no Linear/Conv1D module; targetable names: \["):
        zoo.wrap(make_model("tiny-llama"), "peft_loha", target_modules=["nowhere"])


def test_a_conv1d_model_is_refused_by_a_linear_only_tuner_and_peft_agrees():
    with pytest.raises(ValueError, match="supports nn.Linear projections only, not the GPT-2-style Conv1D maps"):
        zoo.wrap(make_model("tiny-gpt2"), "peft_boft")
    with pytest.raises((TypeError, ValueError), match="Conv1D"):  # the refusal is not overcautious: peft's layer rejects it
        peft.get_peft_model(make_model("tiny-gpt2"), peft.BOFTConfig(target_modules=["c_attn"]))


@pytest.mark.parametrize("method", method_params(BRIDGED_NAMES))
def test_identity_flag_is_what_peft_does(method, batch):
    """Identity within the contract's tolerance where claimed; where not claimed, the output is not exactly the base's."""
    base = output(make_model("tiny-llama"), batch)
    distance = (output(zoo.wrap(make_model("tiny-llama"), method), batch) - base).abs().max().item()
    assert distance <= 1e-6 if zoo.get_method(method).identity_at_init else distance > 0, distance


@pytest.mark.parametrize("method", ["peft_dora", "peft_vera", "peft_ln_tuning", "peft_oft", "peft_vblora", "peft_pissa"])
def test_peft_save_pretrained_reloads_with_peft(method, batch, tmp_path):
    model = zoo.wrap(make_model("tiny-llama"), method)
    perturb(model)
    expected = output(model, batch)
    peft_model(model).save_pretrained(tmp_path / "peft")
    reloaded = peft.PeftModel.from_pretrained(make_model("tiny-llama"), tmp_path / "peft").eval()
    torch.testing.assert_close(output(reloaded, batch), expected, atol=1e-6, rtol=0)


@pytest.mark.parametrize("method", method_params(BRIDGED_NAMES))
def test_the_dry_run_predicts_the_tensors_or_defers_to_the_real_wrap(method, caplog):
    """Some peft initialisations read the base weights (BOFT, PiSSA): those fall back, none predicts wrong shapes."""
    from zoo.dry_run import implied_shapes

    cfg = zoo.get_method(method).config()
    with caplog.at_level(logging.WARNING, logger="zoo.io.adapter_checks"):
        implied = implied_shapes(make_model("tiny-llama"), zoo.get_method(method), cfg)
    real = {name: tuple(p.shape) for name, p in zoo.wrap(make_model("tiny-llama"), cfg).adapter_state_dict().items()}
    assert implied == real or (implied is None and "cannot be wrapped on the meta device" in caplog.text)


def test_peft_model_refuses_a_model_of_another_method():
    with pytest.raises(TypeError, match="wrapped with a bridged method"):
        peft_model(zoo.wrap(make_model("tiny-llama"), "lora"))


def test_the_suite_runs_bridged_methods_only_when_asked(tmp_path):
    from benchmarks import suite

    plain = suite.sweeps("smoke", tmp_path, [])
    assert len(plain) == 3 and not any(a.startswith("method=") for cmd in plain for a in cmd)
    bridged = suite.sweeps("smoke", tmp_path, [], "peft_dora,peft_vera")
    assert len(bridged) == 4 and "method=peft_dora,peft_vera" in bridged[-1]
    assert "method=glob(peft_*)" in suite.sweeps("quick", tmp_path, [], suite.BRIDGED)[-1]
