"""The method contract as pytest checks, one per (method, tiny family) pair.

``pytest --zoo-contract=<method>`` collects this module (see :mod:`pytest_zoo`) for the methods
named, on every tiny family or those of ``--zoo-families``; zoo's own tests/test_contract.py
imports these checks and runs them for every registered method on every family. Collected
without the option (``pytest <this file>``), it checks every registered method. A failure names
the promise the method broke (:mod:`zoo.testing.promises`): the flag or rule, the family, the tensors.
"""

from __future__ import annotations

import copy
import json

import pytest
import torch
from pytest_zoo import selection

import zoo
from zoo.inject import adapter_parameters
from zoo.io.adapter_io import plugin_of
from zoo.io.base_structure import BaseStructure
from zoo.models.cache_kwarg import CACHE_KWARG
from zoo.testing.cells import parametrise, runs_on
from zoo.testing.helpers import output, perturb, refused, wrap_for_test
from zoo.testing.models import labelled, make_model, tiny_batch
from zoo.testing.promises import close, holds
from zoo.training.optimizer import method_groups, optimizer_of
from zoo.wrapped import merge_refusal

NO_PAST_KEY_VALUES = pytest.mark.filterwarnings("error:.*past_key_values:FutureWarning")
"""transformers >= 5.24 warns when a cache is passed under its old name (zoo/models/cache_kwarg.py): that is a failure."""
GREEDY_THREE = dict(max_new_tokens=3, min_new_tokens=3, do_sample=False, pad_token_id=0)
"""Three greedy new tokens: a random tiny model may write its end-of-sequence token, which would end ``generate`` early."""
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
    holds(
        str(error.value) == refused(method, kind),
        "that wrap refuses a model its flags exclude with the declared reason",
        method,
        kind,
        f"wrap said {str(error.value)!r}, the flags say {refused(method, kind)!r}",
    )


@runs_on("supported", runs_forward=False)
def test_exactly_the_method_parameters_require_grad(method, kind):
    model = _wrapped(method, kind)
    trainable = {n for n, p in model.model.named_parameters() if p.requires_grad}
    named = set(adapter_parameters(model.model))
    holds(
        trainable == named,
        "that exactly the parameters its adapters name in adapter_params() require grad",
        method,
        kind,
        f"trainable but not named: {sorted(trainable - named)[:5]}; named but frozen: {sorted(named - trainable)[:5]}",
    )
    holds(bool(trainable), "that a method owns at least one parameter", method, kind)
    n_trainable, n_total = zoo.count_parameters(model)
    saved = sum(p.numel() for p in model.adapter_state_dict().values())
    holds(
        n_trainable == saved,
        "that the adapter state dict holds every trainable parameter",
        method,
        kind,
        f"{n_trainable} trainable, {saved} in adapter_state_dict()",
    )
    base = sum(p.numel() for p in make_model(kind).parameters())
    holds(
        n_total == n_trainable + base,
        "that adapter parameters are new tensors (base + trainable parameters in all)",
        method,
        kind,
        f"{n_total} parameters in all, {base} base + {n_trainable} trainable: a view or reuse of a base weight counts once",
    )


@runs_on("identity")
def test_identity_at_init(method, kind, batch):
    expected = output(make_model(kind), batch)
    got = output(_wrapped(method, kind), batch)
    if got.shape != expected.shape:  # methods that prepend tokens return them too; compare the real positions
        got = got[:, -expected.shape[1] :]
    close(
        got,
        expected,
        "identity_at_init=True (the wrapped model's outputs equal the base model's before training)",
        method,
        kind,
        atol=1e-6,
        rtol=0,
    )


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
    step = "fit()" if model.spec.gradient_free else "an optimiser step"
    holds(bool(changed), f"that {step} changes the method's parameters", method, kind, "no parameter changed")
    holds(
        changed <= adapter,
        f"that {step} changes only the method's parameters",
        method,
        kind,
        f"base tensors changed: {sorted(changed - adapter)[:5]}",
    )


@runs_on("optimizer")
def test_the_declared_optimizer_steps_exactly_the_method_parameters(method, kind, batch):
    """A method that declares its optimizer (OptimizerRecipe): its groups, as the trainer builds them, hold each trainable
    parameter once, and one step of its optimizer changes only the method's parameters."""
    model = _wrapped(method, kind)
    perturb(model)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    groups = method_groups(model, lr=1e-2)  # raises where a trainable parameter is left out or grouped twice
    optimizer = optimizer_of(model.spec)(groups, weight_decay=0.0)
    model.train()
    out = output(model, batch).float()
    (out * torch.randn(out.shape, generator=torch.Generator().manual_seed(0)).to(out.device)).sum().backward()
    optimizer.step()
    adapter = {"model." + n for n in model.adapter_state_dict()}
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    holds(
        bool(changed),
        "that a step of its declared optimiser changes the method's parameters",
        method,
        kind,
        "no parameter changed",
    )
    holds(
        changed <= adapter,
        "that a step of its declared optimiser changes only the method's parameters",
        method,
        kind,
        f"base tensors changed: {sorted(changed - adapter)[:5]}",
    )


@runs_on("supported")
def test_save_load_round_trip(method, kind, batch, tmp_path):
    model = _wrapped(method, kind)
    perturb(model)
    model.eval()
    expected = output(model, batch)
    zoo.save_adapter(model, tmp_path / "adapter")
    meta = json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())
    recorded = (meta["method"], meta["zoo_version"], meta.get("plugin"))
    expected_record = (method, zoo.__version__, plugin_of(model.spec))
    holds(
        recorded == expected_record,
        "that adapter_config.json names the method, zoo's version and the plugin's distribution and version",
        method,
        kind,
        f"recorded {recorded}, expected {expected_record}",
    )
    torch.manual_seed(1234)  # a fresh init differs from the saved weights: a tensor that fails to load shows
    loaded = zoo.load_adapter(make_model(kind), tmp_path / "adapter").eval()
    close(
        output(loaded, batch),
        expected,
        "that load_adapter onto a fresh base model gives the saved model's outputs (every adapter tensor saved and loaded)",
        method,
        kind,
        atol=0,
        rtol=0,
    )


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
    if (reason := merge_refusal(model)) is not None:
        with pytest.raises(ValueError, match="cannot merge this adapter") as error:
            zoo.merge(model)
        holds(
            reason in str(error.value) and not model.merged,
            "that merge refuses what refuses_merge declares, with its reason",
            method,
            kind,
            f"declared {reason!r}, merge raised {str(error.value)!r}",
        )
        close(output(model, batch), unmerged, "that a refused merge leaves the model as it was", method, kind, atol=0, rtol=0)
        return
    zoo.merge(model)
    close(
        output(model, batch), unmerged, "mergeable=True (merge leaves the outputs unchanged)", method, kind, atol=1e-5, rtol=1e-4
    )
    zoo.unmerge(model)
    close(
        output(model, batch),
        unmerged,
        "mergeable=True (unmerge after merge gives the unmerged outputs)",
        method,
        kind,
        atol=1e-5,
        rtol=1e-4,
    )


@runs_on("mergeable", runs_forward=False)
def test_merged_model_has_exactly_the_base_tensors(method, kind):
    base = make_model(kind)
    structure = BaseStructure(base)
    model = wrap_for_test(method, base)
    perturb(model)
    if merge_refusal(model) is not None:  # declared: test_merge_equals_unmerged checks that merge refuses it
        pytest.skip(f"refuses_merge declares this adapter cannot merge: {merge_refusal(model)}")
    zoo.merge(model)
    try:
        structure.check(base, method)  # before any restore: the merge itself put the base's own modules back (zoo.models.layout)
    except ValueError as err:
        holds(
            False,
            "mergeable=True (the merged model runs the base model's own modules, with exactly its tensors, names and "
            "shapes, as zoo-export --merged saves it)",
            method,
            kind,
            str(err),
        )


@runs_on("generating")
def test_generate_keeps_the_base_contract(method, kind, batch):
    model = _wrapped(method, kind).eval()
    out = model.generate(**batch, **GREEDY_THREE)
    prompt = batch["input_ids"]
    holds(
        out.shape == (prompt.shape[0], prompt.shape[1] + 3),
        "that generate() returns the prompt and max_new_tokens new tokens",
        method,
        kind,
        f"generate(max_new_tokens=3, min_new_tokens=3) on prompts of shape {tuple(prompt.shape)} returned shape "
        f"{tuple(out.shape)}: {out[:, prompt.shape[1] :].tolist()}",
    )
    holds(
        torch.equal(out[:, : prompt.shape[1]], prompt),
        "that generate() returns the prompt unchanged before the new tokens",
        method,
        kind,
        f"prompt {prompt.tolist()}, returned {out[:, : prompt.shape[1]].tolist()}",
    )
    if model.spec.identity_at_init:
        base = make_model(kind).generate(**batch, **GREEDY_THREE)
        holds(
            torch.equal(out, base),
            "identity_at_init=True (generate() before training writes the base model's tokens)",
            method,
            kind,
            f"base model wrote {base[:, prompt.shape[1] :].tolist()}, wrapped {out[:, prompt.shape[1] :].tolist()}",
        )


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
        holds(
            not torch.equal(prompt.logits, output(base, batch)),
            "positions=True (it acts at the prompt's chosen positions)",
            method,
            kind,
            "the trained method changed nothing in the prompt's logits",
        )
        cache = getattr(prompt, CACHE_KWARG)
        expected = base(input_ids=new_ids, attention_mask=mask, use_cache=True, **{CACHE_KWARG: copy.deepcopy(cache)}).logits
        got = model(input_ids=new_ids, attention_mask=mask, use_cache=True, **{CACHE_KWARG: cache}).logits
    holds(
        torch.equal(got, expected),
        "positions=True (the tokens a call adds to its cache stay as the base computes them)",
        method,
        kind,
        f"largest difference in the new tokens' logits {(got - expected).abs().max().item():.3g}",
    )
