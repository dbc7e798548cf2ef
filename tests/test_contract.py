"""The method contract, checked for every registered method on every tiny architecture family.

Parametrised at collection by ``zoo.list_methods()`` × ``TINY_FAMILIES`` (16 families, decoders
and encoders): a new method or family is tested with no edit. A pair the method's capability
flags exclude (model kind, positional scheme) is not skipped: it is checked to be refused.
"""
from __future__ import annotations

import json

import pytest
import torch
from conftest import NO_PAST_KEY_VALUES
from contract_helpers import cells, fresh, generates, labelled, output, perturb, refused, wrap_for_test

import zoo
from zoo.inject import adapter_parameters

pytestmark = NO_PAST_KEY_VALUES

METHODS = zoo.list_methods()
SUPPORTED, REFUSED = cells(METHODS)
IDENTITY = [(m, k) for m, k in SUPPORTED if zoo.get_method(m).identity_at_init]
GENERATING = [(m, k) for m, k in SUPPORTED if generates(k)]


KNOWN_GAPS = {
    (method, kind): "prefix tuning enters through the key/value cache, which this encoder's attention does not take "
                    "(zoo/methods/prefix_tuning.py declares no such limit yet)"
    for method, kind in [("prefix_tuning", "tiny-deberta-v2"), ("prefix_tuning", "tiny-modernbert")]
}
"""Pairs that fail for a reason outside the method contract; strict: a fix turns them into failures to remove here."""


def pairs(selected: list[tuple[str, str]], runs_forward: bool = True):
    """Parametrise over ``selected`` (method, family) pairs; where the test runs the model forward, known gaps xfail."""
    params = [pytest.param(m, k, id=f"{m}-{k}", marks=[pytest.mark.xfail(reason=KNOWN_GAPS[m, k], strict=True, raises=RuntimeError)]
                           if runs_forward and (m, k) in KNOWN_GAPS else []) for m, k in selected]
    return pytest.mark.parametrize(("method", "kind"), params)


def _wrapped(method, kind, **overrides):
    return wrap_for_test(method, fresh(kind), **overrides)


@pairs(REFUSED)
def test_unsupported_kind_is_refused(method, kind):
    with pytest.raises(ValueError, match="supports") as error:
        wrap_for_test(method, fresh(kind))
    assert str(error.value) == refused(method, kind)


@pairs(SUPPORTED, runs_forward=False)
def test_exactly_the_method_parameters_require_grad(method, kind):
    model = _wrapped(method, kind)
    trainable = {n for n, p in model.model.named_parameters() if p.requires_grad}
    assert trainable == set(adapter_parameters(model.model))
    assert trainable, "a method must own at least one parameter"
    n_trainable, n_total = zoo.count_parameters(model)
    assert n_trainable == sum(p.numel() for p in model.adapter_state_dict().values())
    assert n_total == n_trainable + sum(p.numel() for p in fresh(kind).parameters())


@pairs(IDENTITY)
def test_identity_at_init(method, kind, batch):
    expected = output(fresh(kind), batch)
    model = _wrapped(method, kind)
    got = output(model, batch)
    if got.shape != expected.shape:  # methods that prepend tokens return them too; compare the real positions
        got = got[:, -expected.shape[1]:]
    torch.testing.assert_close(got, expected, atol=1e-6, rtol=0)


@pairs(SUPPORTED)
def test_one_step_changes_only_the_method_parameters(method, kind, batch):
    model = _wrapped(method, kind)
    perturb(model)  # zero-initialised factors would otherwise block some gradients
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    if model.spec.gradient_free:
        model.fit([labelled(batch)])
    else:
        model.train()
        out = output(model, batch).float()
        # a fixed random projection: the square of a LayerNorm output (BERT) is constant and has ~no gradient
        probe = torch.randn(out.shape, generator=torch.Generator().manual_seed(0))
        loss = (out * probe).sum()
        loss.backward()
        torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1).step()
    adapter = {"model." + n for n in model.adapter_state_dict()}
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert changed, "no parameter changed"
    assert changed <= adapter, f"base parameters changed: {sorted(changed - adapter)[:5]}"


@pairs(SUPPORTED)
def test_save_load_round_trip(method, kind, batch, tmp_path):
    model = _wrapped(method, kind)
    perturb(model)
    model.eval()
    expected = output(model, batch)
    zoo.save_adapter(model, tmp_path / "adapter")
    meta = json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())
    assert meta["method"] == method and meta["zoo_version"] == zoo.__version__
    torch.manual_seed(1234)  # a fresh init differs from the saved weights: a tensor that fails to load shows
    loaded = zoo.load_adapter(fresh(kind), tmp_path / "adapter").eval()
    torch.testing.assert_close(output(loaded, batch), expected, atol=0, rtol=0)


@pairs(SUPPORTED, runs_forward=False)
def test_load_refuses_another_base_model(method, kind, tmp_path):
    model = _wrapped(method, kind)
    zoo.save_adapter(model, tmp_path / "adapter")
    from conftest import make_model

    with pytest.raises(ValueError, match="another base model"):
        zoo.load_adapter(make_model(kind, seed=7), tmp_path / "adapter")


@pairs(SUPPORTED, runs_forward=False)
def test_merge_equals_unmerged(method, kind, batch):
    model = _wrapped(method, kind)
    perturb(model)
    model.eval()
    if not model.spec.mergeable:
        with pytest.raises(ValueError, match="cannot be merged"):
            zoo.merge(model)
        return
    unmerged = output(model, batch)
    zoo.merge(model)
    torch.testing.assert_close(output(model, batch), unmerged, atol=1e-5, rtol=1e-4)
    zoo.unmerge(model)
    torch.testing.assert_close(output(model, batch), unmerged, atol=1e-5, rtol=1e-4)


@pairs(GENERATING)
def test_generate_keeps_the_base_contract(method, kind, batch):
    model = _wrapped(method, kind).eval()
    out = model.generate(**batch, max_new_tokens=3, do_sample=False, pad_token_id=0)
    assert out.shape == (batch["input_ids"].shape[0], batch["input_ids"].shape[1] + 3)
    assert torch.equal(out[:, : batch["input_ids"].shape[1]], batch["input_ids"])
    if model.spec.identity_at_init:
        base = fresh(kind).generate(**batch, max_new_tokens=3, do_sample=False, pad_token_id=0)
        assert torch.equal(out, base)
