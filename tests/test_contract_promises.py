"""A contract failure names the promise broken (the flag or rule), the method and the family; the rerun command selects it."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import pytest_zoo
import torch
from torch import nn

import zoo
from zoo import registry
from zoo.inject import match_targets, replace_module
from zoo.testing import contract, tiny_batch
from zoo.testing.promises import BrokenPromise


@dataclass
class DoubledConfig(zoo.MethodConfig):
    pass


class Doubled(nn.Module):
    """Multiplies a layer's output by a trainable scale that starts at 2: not the identity it claims to be."""

    def __init__(self, base: nn.Module):
        super().__init__()
        self.base = base
        self.scale = nn.Parameter(torch.tensor(2.0))

    def adapter_params(self) -> list[str]:
        return ["scale"]

    def forward(self, x):
        return self.base(x) * self.scale


@pytest.fixture
def doubled(monkeypatch):
    """A method that claims identity_at_init but doubles every value projection's output."""
    monkeypatch.setattr(registry, "_methods", dict(registry._methods))

    @zoo.register("doubled", config=DoubledConfig, identity_at_init=True)
    def wrap_doubled(model, cfg):
        for name in match_targets(model, ["v_proj"]):
            replace_module(model, name, Doubled(model.get_submodule(name)))
        return model

    return "doubled"


def test_identity_at_init_names_the_flag_the_method_and_the_family(doubled):
    with pytest.raises(
        BrokenPromise,
        match=r"^method 'doubled' on tiny-llama breaks the promise identity_at_init=True \(the "
        r"wrapped model's outputs equal the base model's before training\):\nTensor-likes",
    ):
        contract.test_identity_at_init(doubled, "tiny-llama", tiny_batch())


def test_the_generate_check_names_the_flag_and_shows_both_models_tokens(doubled, monkeypatch):
    original = zoo.ZooModel.generate  # made to write another last token than the base model does, whatever the logits

    def shifted(self, **kwargs):
        out = original(self, **kwargs)
        out[:, -1] = (out[:, -1] + 1) % 60
        return out

    monkeypatch.setattr(zoo.ZooModel, "generate", shifted)
    with pytest.raises(
        BrokenPromise,
        match=r"^method 'doubled' on tiny-llama breaks the promise identity_at_init=True "
        r"\(generate\(\) before training writes the base model's tokens\):\nbase model wrote ",
    ):
        contract.test_generate_keeps_the_base_contract(doubled, "tiny-llama", tiny_batch())


def test_the_rerun_command_selects_the_failed_checks_by_their_names():
    cells = [
        ("test_identity_at_init[ssf-tiny-llama]", "ssf", "tiny-llama"),
        ("test_merge_equals_unmerged[ssf-tiny-bert]", "ssf", "tiny-bert"),
        ("test_identity_at_init[ssf-tiny-bert]", "ssf", "tiny-bert"),
    ]
    assert pytest_zoo.rerun_command(cells) == (
        'pytest --zoo-contract=ssf --zoo-families=tiny-llama,tiny-bert -k "test_identity_at_init[ssf-tiny-llama] or '
        'test_merge_equals_unmerged[ssf-tiny-bert] or test_identity_at_init[ssf-tiny-bert]"'
    )
