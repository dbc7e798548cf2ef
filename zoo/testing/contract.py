"""The method contract as pytest checks, one per (method, tiny family) pair.

``pytest --zoo-contract=<method>`` collects this module (see :mod:`pytest_zoo`) for the methods
named, on every tiny family or those of ``--zoo-families``; zoo's own tests/test_contract.py
imports these checks and runs them for every registered method on every family. Collected
without the option (``pytest <this file>``), it checks every registered method.
"""
from __future__ import annotations

import copy
import json

import pytest
import torch
from pytest_zoo import selection

import zoo
from zoo.inject import adapter_parameters
from zoo.models.cache_kwarg import CACHE_KWARG
from zoo.testing.cells import parametrise, runs_on
from zoo.testing.helpers import output, perturb, refused, wrap_for_test
from zoo.testing.models import labelled, make_model, tiny_batch

NO_PAST_KEY_VALUES = pytest.mark.filterwarnings("error:.*past_key_values:FutureWarning")
"""transformers >= 5.24 warns when a cache is passed under its old name (zoo/models/cache_kwarg.py): that is a failure."""
pytestmark = NO_PAST_KEY_VALUES


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    parametrise(metafunc, *selection(metafunc.config))


@pytest.fixture
def batch() -> dict[str, torch.Tensor]:
    return tiny_batch()


def _wrapped(method: str, kind: str) -> zoo.ZooModel:
    return wrap_for_test(method, make_model(kind))


@runs_on("refused")
def test_unsupported_kind_is_refused(method, kind):
    with pytest.raises(ValueError, match="supports") as error:
        wrap_for_test(method, make_model(kind))
    assert str(error.value) == refused(method, kind)


@runs_on("supported", runs_forward=False)
def test_exactly_the_method_parameters_require_grad(method, kind):
    model = _wrapped(method, kind)
    trainable = {n for n, p in model.model.named_parameters() if p.requires_grad}
    assert trainable == set(adapter_parameters(model.model))
    assert trainable, "a method must own at least one parameter"
    n_trainable, n_total = zoo.count_parameters(model)
    assert n_trainable == sum(p.numel() for p in model.adapter_state_dict().values())
    # adapter parameters are new tensors: a view or a reuse of a base weight would count once, not twice
    assert n_total == n_trainable + sum(p.numel() for p in make_model(kind).parameters())


@runs_on("identity")
def test_identity_at_init(method, kind, batch):
    expected = output(make_model(kind), batch)
    got = output(_wrapped(method, kind), batch)
    if got.shape != expected.shape:  # methods that prepend tokens return them too; compare the real positions
        got = got[:, -expected.shape[1]:]
    torch.testing.assert_close(got, expected, atol=1e-6, rtol=0)


@runs_on("supported")
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
        probe = torch.randn(out.shape, generator=torch.Generator().manual_seed(0)).to(out.device)
        (out * probe).sum().backward()
        torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1).step()
    adapter = {"model." + n for n in model.adapter_state_dict()}
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert changed, "no parameter changed"
    assert changed <= adapter, f"base parameters changed: {sorted(changed - adapter)[:5]}"


@runs_on("supported")
def test_save_load_round_trip(method, kind, batch, tmp_path):
    model = _wrapped(method, kind)
    perturb(model)
    model.eval()
    expected = output(model, batch)
    zoo.save_adapter(model, tmp_path / "adapter")
    meta = json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())
    assert meta["method"] == method and meta["zoo_version"] == zoo.__version__
    torch.manual_seed(1234)  # a fresh init differs from the saved weights: a tensor that fails to load shows
    loaded = zoo.load_adapter(make_model(kind), tmp_path / "adapter").eval()
    torch.testing.assert_close(output(loaded, batch), expected, atol=0, rtol=0)


@runs_on("supported", runs_forward=False)
def test_load_refuses_another_base_model(method, kind, tmp_path):
    zoo.save_adapter(_wrapped(method, kind), tmp_path / "adapter")
    with pytest.raises(ValueError, match="another base model"):
        zoo.load_adapter(make_model(kind, seed=7), tmp_path / "adapter")


@runs_on("supported", runs_forward=False)
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


@runs_on("generating")
def test_generate_keeps_the_base_contract(method, kind, batch):
    model = _wrapped(method, kind).eval()
    out = model.generate(**batch, max_new_tokens=3, do_sample=False, pad_token_id=0)
    assert out.shape == (batch["input_ids"].shape[0], batch["input_ids"].shape[1] + 3)
    assert torch.equal(out[:, : batch["input_ids"].shape[1]], batch["input_ids"])
    if model.spec.identity_at_init:
        base = make_model(kind).generate(**batch, max_new_tokens=3, do_sample=False, pad_token_id=0)
        assert torch.equal(out, base)


@runs_on("positions")
def test_decoding_leaves_the_new_tokens_untouched(method, kind, batch):
    """A method acting at prompt positions (``positions``) changes the prompt, and no token a call adds to its cache."""
    model = _wrapped(method, kind)
    perturb(model)
    model.eval()
    base = make_model(kind).eval()
    new_ids = batch["input_ids"][:, -2:]  # two more tokens after the prompt
    mask = torch.cat([batch["attention_mask"], torch.ones_like(new_ids)], dim=1)
    with torch.no_grad():
        prompt = model(**batch, use_cache=True)
        assert not torch.equal(prompt.logits, output(base, batch)), "the method changed nothing in the prompt"
        cache = getattr(prompt, CACHE_KWARG)
        expected = base(input_ids=new_ids, attention_mask=mask, use_cache=True, **{CACHE_KWARG: copy.deepcopy(cache)}).logits
        got = model(input_ids=new_ids, attention_mask=mask, use_cache=True, **{CACHE_KWARG: cache}).logits
    assert torch.equal(got, expected)
