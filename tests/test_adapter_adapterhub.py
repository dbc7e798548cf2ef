"""zoo's bottleneck adapter against AdapterHub's (``adapters`` 1.3), through a committed fixture.

AdapterHub cannot share zoo's environment (it pins transformers 4.57), so tests/fixtures/adapterhub/make_fixture.py,
run by hand in its own virtual environment, wrote a tiny BERT's weights, inputs, AdapterHub adapter weights and the
outputs AdapterHub computes. Here the same base and adapter weights go into zoo's adapter at the equivalent config and
must give the same last hidden states. AdapterHub's default Pfeiffer configuration (the adapter reads
LayerNorm(sub-layer output + residual)) has no zoo equivalent: the last test checks that zoo's closest differs.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import BertConfig, BertModel

import zoo

FIXTURE = Path(__file__).parent / "fixtures" / "adapterhub"
EQUIVALENT = {
    "houlsby": dict(placement="houlsby", activation="silu", layer_norm=False),
    "houlsby_ln_before": dict(placement="houlsby", activation="silu", layer_norm=True),
    "pfeiffer_sublayer_input": dict(placement="pfeiffer", activation="relu", layer_norm=False),
}
"""AdapterHub configuration -> zoo's adapter config that computes the same (AdapterHub's swish is silu)."""
COVERED = {
    "scaling": 1.0,
    "use_gating": False,
    "ln_after": False,
    "is_parallel": False,
    "phm_layer": False,
    "residual_before_ln": True,
    "original_ln_before": False,
    "original_ln_after": True,
    "reduction_factor": 4,
}
"""The AdapterHub options at the values zoo's adapter reproduces (zoo/methods/adapter.py says which others it lacks)."""
ZOO_PART = {"adapter_up": "up", "adapter_norm_before": "norm"}


@pytest.fixture(scope="module")
def fixture() -> tuple[dict, dict[str, torch.Tensor]]:
    return json.loads((FIXTURE / "fixture.json").read_text()), load_file(str(FIXTURE / "fixture.safetensors"))


def _part(group: str, prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix) :]: v for k, v in group.items() if k.startswith(prefix)}


def _base(meta: dict, tensors: dict[str, torch.Tensor]) -> BertModel:
    model = BertModel(BertConfig(**meta["bert"], attn_implementation="eager"), add_pooling_layer=False)
    model.load_state_dict(_part(tensors, "base."), strict=True)
    return model.eval()


def _zoo_name(adapterhub_name: str) -> str:
    """``encoder.layer.0.output.adapters.<name>.adapter_down.0.weight`` -> ``encoder.layer.0.output.dense.down.weight``."""
    found = re.fullmatch(
        r"(.+)\.adapters\.[^.]+\.(adapter_down\.\d|adapter_up|adapter_norm_before)\.(weight|bias)", adapterhub_name
    )
    assert found, f"unexpected AdapterHub tensor {adapterhub_name}"
    where, part, kind = found.groups()
    return f"{where}.dense.{ZOO_PART.get(part, 'down')}.{kind}"


def _zoo_with(meta, tensors, config: str, **overrides) -> torch.Tensor:
    model = zoo.wrap(_base(meta, tensors), "adapter", bottleneck_size=8, **overrides)
    weights = {_zoo_name(k): v for k, v in _part(tensors, f"{config}.").items() if k != "output"}
    own = model.adapter_state_dict()
    assert set(weights) == set(own), "zoo's adapter and AdapterHub's hold different tensors"
    with torch.no_grad():
        for name, value in weights.items():
            own[name].copy_(value)
        return model(**_part(tensors, "inputs.")).last_hidden_state


@pytest.mark.parametrize("config", list(EQUIVALENT))
def test_zoo_adapter_matches_adapterhub(fixture, config):
    meta, tensors = fixture
    options = meta["configs"][config]
    assert {k: options[k] for k in COVERED} == COVERED
    assert options["ln_before"] == EQUIVALENT[config]["layer_norm"]
    assert (options["mh_adapter"], options["output_adapter"]) == (
        (True, True) if EQUIVALENT[config]["placement"] == "houlsby" else (False, True)
    )
    got = _zoo_with(meta, tensors, config, **EQUIVALENT[config])
    expected = tensors[f"{config}.output"]
    base = _base(meta, tensors)(**_part(tensors, "inputs.")).last_hidden_state
    assert not torch.allclose(expected, base, atol=1e-2), "the fixture's adapter changes nothing: the match would prove nothing"
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)


def test_adapterhub_default_pfeiffer_is_not_zoos(fixture):
    meta, tensors = fixture
    assert meta["configs"]["pfeiffer"]["original_ln_before"] is True  # the adapter reads LN(h + x), zoo's reads h
    got = _zoo_with(meta, tensors, "pfeiffer", **EQUIVALENT["pfeiffer_sublayer_input"])
    assert not torch.allclose(got, tensors["pfeiffer.output"], atol=1e-3)
