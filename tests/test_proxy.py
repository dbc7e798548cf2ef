"""Proxy-tuning: logits against a hand computation, vocabulary checks, cached decoding, the gain metric."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from conftest import NO_PAST_KEY_VALUES, WORDS, make_model
from contract_helpers import perturb, refused, wrap_for_test
from tiers import method_params

import zoo
from zoo.evaluation.classification import predict
from zoo.fingerprint import fingerprint
from zoo.models.tiny import tiny_model
from zoo.models.tokenizer import word_tokenizer
from zoo.research.proxy import ProxyTunedModel, VocabularyMismatchError, check_same_vocabulary, gain_recovered, next_token
from zoo.tasks.prompt import class_logits

pytestmark = NO_PAST_KEY_VALUES

VOCAB = len(WORDS) + 4


def _perturbed(model, method: str):
    """``model`` wrapped with ``method`` and its adapter moved off its initial values (so it steers)."""
    wrapped = wrap_for_test(method, model)
    perturb(wrapped)
    return wrapped.eval()


def _proxy(kind: str = "tiny-llama", method: str = "lora", alpha: float = 1.0) -> ProxyTunedModel:
    large = tiny_model(kind, VOCAB, seed=7, layers=3)
    small = make_model(kind, seed=1)
    return ProxyTunedModel(large, _perturbed(copy.deepcopy(small), method), small, alpha)


def _left_padded() -> dict[str, torch.Tensor]:
    ids = torch.tensor([[0, 0, 0, 9, 10, 11], [12, 13, 14, 15, 16, 17]])
    return {"input_ids": ids, "attention_mask": (ids != 0).long()}


@pytest.mark.parametrize("alpha", [0.0, 1.0, 2.5])
def test_logits_are_large_plus_alpha_times_tuned_minus_untuned(tmp_path, alpha):
    large, small = tiny_model("tiny-llama", VOCAB, seed=7, layers=3), make_model("tiny-llama", seed=1)
    zoo.save_adapter(_perturbed(copy.deepcopy(small), "lora"), tmp_path / "adapter")
    untouched = fingerprint(small)
    proxy = ProxyTunedModel.from_adapter(large, small, tmp_path / "adapter", alpha=alpha)
    batch = _left_padded()

    got = proxy(**batch).logits
    tuned = zoo.load_adapter(copy.deepcopy(small), tmp_path / "adapter")
    s_large, s_tuned, s_small = (m(**batch).logits for m in (large, tuned, small))
    assert torch.equal(got, s_large + alpha * (s_tuned - s_small))
    assert fingerprint(small) == untouched  # the anti-expert stays untuned
    assert not torch.allclose(s_tuned, s_small)  # the steer is not zero, so the check above means something


def test_classifier_scores_left_padded_batches_through_the_proxy():
    proxy = _proxy()
    batch = {**_left_padded(), "index": torch.tensor([0, 1])}
    label_ids = torch.tensor([WORDS.index("bad") + 4, WORDS.index("good") + 4])
    by_hand = sum(w * class_logits(m, batch, label_ids) for w, m in zip((1, proxy.alpha, -proxy.alpha), proxy.models))
    torch.testing.assert_close(class_logits(proxy, batch, label_ids), by_hand, rtol=0, atol=1e-6)
    predictions, _ = predict(proxy, [batch], label_ids.tolist())
    assert predictions == by_hand.argmax(-1).tolist()
    # the left-padded row scores as it does alone: rotary positions make the padding invisible
    alone = proxy(input_ids=batch["input_ids"][:1, 3:], logits_to_keep=1).logits[0, -1]
    torch.testing.assert_close(proxy(**_left_padded(), logits_to_keep=1).logits[0, -1], alone, rtol=0, atol=1e-5)


def _greedy_reference(proxy: ProxyTunedModel, ids: torch.Tensor, mask: torch.Tensor, steps: int) -> torch.Tensor:
    """No caches: rerun the whole sequence through ``proxy.forward`` at every step."""
    for _ in range(steps):
        token = proxy(input_ids=ids, attention_mask=mask).logits[:, -1].argmax(-1, keepdim=True)
        ids, mask = torch.cat([ids, token], 1), torch.cat([mask, torch.ones_like(token)], 1)
    return ids


# a method acting at prompt positions (``positions``: LoReFT) reads each no-cache step's whole sequence as the prompt, so
# a loop without caches is not its reference; the contract tests check its decoding (new tokens untouched) instead
@pytest.mark.parametrize(
    "method",
    method_params([m for m in zoo.list_methods() if refused(m, "tiny-llama") is None and not zoo.get_method(m).positions]),
)
def test_cached_greedy_generate_equals_a_loop_without_caches(method):
    proxy = _proxy(method=method)
    batch = _left_padded()
    got = proxy.generate(**batch, max_new_tokens=6)
    assert torch.equal(got, _greedy_reference(proxy, batch["input_ids"], batch["attention_mask"], 6))


def test_gpt2_style_models_decode_with_their_caches_too():
    proxy = _proxy("tiny-gpt2", alpha=1.5)
    batch = _left_padded()
    assert torch.equal(
        proxy.generate(**batch, max_new_tokens=5), _greedy_reference(proxy, batch["input_ids"], batch["attention_mask"], 5)
    )


def test_alpha_zero_generates_what_transformers_generates_for_the_large_model():
    proxy = _proxy(alpha=0.0)
    ids = torch.tensor([[5, 6, 7, 8], [9, 10, 11, 12]])
    expected = proxy.large.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=6, do_sample=False, pad_token_id=0)
    assert torch.equal(proxy.generate(ids, max_new_tokens=6), expected)


def test_rows_that_reach_eos_are_padded_and_decoding_stops_when_all_do():
    proxy = _proxy()
    batch = _left_padded()
    free = proxy.generate(**batch, max_new_tokens=4)
    eos = int(free[0, 6])  # row 0's first new token
    got = proxy.generate(**batch, max_new_tokens=4, eos_token_id=eos, pad_token_id=1)
    assert got[0, 6] == eos and (got[0, 7:] == 1).all()
    row1_eos = (free[1, 6:] == eos).nonzero()
    stop = 6 + int(row1_eos[0]) + 1 if len(row1_eos) else free.shape[1]
    assert torch.equal(got[1, :stop], free[1, :stop])


def test_sampling_with_a_seeded_generator_repeats_and_top_k_1_is_greedy():
    proxy = _proxy()
    batch = _left_padded()
    draw = [
        proxy.generate(**batch, max_new_tokens=5, do_sample=True, temperature=2.0, generator=torch.Generator().manual_seed(3))
        for _ in range(2)
    ]
    assert torch.equal(draw[0], draw[1])
    greedy = proxy.generate(**batch, max_new_tokens=5)
    assert torch.equal(proxy.generate(**batch, max_new_tokens=5, do_sample=True, top_k=1), greedy)
    assert not torch.equal(draw[0], greedy)  # temperature 2 over 64 tokens: 10 equal draws would be a broken sampler


def test_sampling_follows_the_combined_distribution_and_top_p_cuts_the_tail():
    scores = torch.tensor([[2.0, 1.0, 0.0, -1.0]]).expand(4000, -1)
    g = torch.Generator().manual_seed(0)
    counts = torch.bincount(next_token(scores, True, generator=g), minlength=4).float() / 4000
    torch.testing.assert_close(counts, scores[0].softmax(-1), rtol=0, atol=0.03)
    # softmax ≈ [0.64, 0.24, 0.09, 0.03]: top_p=0.8 keeps the first two tokens only
    kept = next_token(scores, True, top_p=0.8, generator=g)
    assert set(kept.tolist()) == {0, 1}


@pytest.mark.parametrize("setting", [{"temperature": 0.0}, {"top_k": -1}, {"top_p": 0.0}, {"max_new_tokens": 0}])
def test_bad_sampling_settings_are_refused_by_name(setting):
    name = next(iter(setting))
    with pytest.raises(ValueError, match=name):
        _proxy().generate(**_left_padded(), **setting)


def test_models_with_different_vocabulary_sizes_are_refused():
    large = tiny_model("tiny-llama", VOCAB + 2, layers=3)
    small = make_model("tiny-llama")
    with pytest.raises(VocabularyMismatchError, match=rf"'large': {VOCAB + 2}, 'small tuned': {VOCAB}"):
        ProxyTunedModel(large, _perturbed(copy.deepcopy(small), "lora"), small)


def test_tokenizer_mismatch_names_the_first_differing_token():
    same = word_tokenizer(WORDS)
    check_same_vocabulary(same, word_tokenizer(WORDS))
    other = word_tokenizer(WORDS[:10] + ["zebra"] + WORDS[11:])
    with pytest.raises(
        VocabularyMismatchError, match=r"sizes 69 and 69.*token id 14 is 'w10' in the large tokenizer and 'zebra'"
    ):
        check_same_vocabulary(same, other)
    with pytest.raises(VocabularyMismatchError, match=r"sizes 69 and 71.*token id 69 is absent in the large tokenizer and 'x1'"):
        check_same_vocabulary(same, word_tokenizer(WORDS + ["x1", "x2"]))
    small = make_model("tiny-llama")
    with pytest.raises(VocabularyMismatchError, match="zebra"):
        ProxyTunedModel(
            make_model("tiny-llama", 5),
            _perturbed(copy.deepcopy(small), "lora"),
            small,
            large_tokenizer=same,
            small_tokenizer=other,
        )


def test_same_module_as_tuned_and_untuned_is_refused():
    small = make_model("tiny-llama")
    with pytest.raises(ValueError, match="same module"):
        ProxyTunedModel(make_model("tiny-llama", 5), small, small)


@pytest.mark.parametrize("name", ["cache", "past_key_values"])
def test_forward_refuses_a_shared_cache(name):
    with pytest.raises(ValueError, match=f"does not take {name}"):
        _proxy()(**_left_padded(), **{name: object()})


def test_gain_recovered():
    assert gain_recovered(proxy=0.8, base=0.5, tuned=0.9) == pytest.approx(0.75)
    assert gain_recovered(proxy=0.4, base=0.5, tuned=0.9) == pytest.approx(-0.25)
    assert gain_recovered(proxy=1.0, base=0.5, tuned=0.9) == pytest.approx(1.25)
    assert math.isnan(gain_recovered(proxy=0.7, base=0.5, tuned=0.5))
    with pytest.raises(ValueError, match="tuned score must be a finite number"):
        gain_recovered(0.7, 0.5, math.nan)
