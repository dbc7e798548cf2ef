"""Prompt tuning: peft as oracle, the shared virtual-token wrapper (masks, labels, positions,
cache, generate, outputs cut to the real positions), the three initialisations, errors."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from conftest import NO_PAST_KEY_VALUES, make_model
from peft import PromptTuningConfig as PeftPromptTuningConfig
from peft import get_peft_model
from peft_oracle import peft_greedy

import zoo
from zoo.methods.prompt_tuning import PromptTuningConfig
from zoo.models.cache_kwarg import CACHE_KWARG

pytestmark = NO_PAST_KEY_VALUES

P = 5
ATOL = 1e-5  # float32 on tiny models; the measured difference against peft is 0.0


def _wrap(kind: str, **overrides):
    return zoo.wrap(make_model(kind), "prompt_tuning", num_virtual_tokens=P, **overrides).eval()


def _spy(model):
    """Record the keyword arguments the base model's forward receives."""
    seen = []
    model.model.base.register_forward_pre_hook(lambda _m, _a, kwargs: seen.append(kwargs), with_kwargs=True)
    return seen


def _peft_pair(kind: str):
    base = make_model(kind)
    task = "FEATURE_EXTRACTION" if kind == "tiny-bert" else "CAUSAL_LM"
    peft_model = get_peft_model(copy.deepcopy(base), PeftPromptTuningConfig(task_type=task, num_virtual_tokens=P)).eval()
    ours = zoo.wrap(copy.deepcopy(base), "prompt_tuning", num_virtual_tokens=P).eval()
    with torch.no_grad():
        peft_model.prompt_encoder["default"].embedding.weight.copy_(ours.model.prompt.embedding)
    return base, peft_model, ours


@pytest.mark.parametrize("kind", ["tiny-llama", "tiny-gpt2"])
def test_matches_peft_logits_loss_and_greedy_generate(kind, batch):
    base, peft_model, ours = _peft_pair(kind)
    labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
    with torch.no_grad():
        expected = peft_model(**batch, labels=labels)
        got = ours(**batch, labels=labels)
    assert expected.logits.shape[1] == got.logits.shape[1] + P  # peft returns the virtual positions, zoo does not
    torch.testing.assert_close(got.logits, expected.logits[:, P:], atol=ATOL, rtol=0)
    torch.testing.assert_close(got.loss, expected.loss, atol=ATOL, rtol=0)
    assert (got.logits - base(**batch).logits).abs().max() > 1e-3, "the soft prompt must change the output"
    # unpadded rows only: on left-padded rows peft drops the position ids generate derives from the mask
    # (test_generate_positions_padded_rows_like_the_base shows what zoo does there)
    unpadded = {k: v[1:] for k, v in batch.items()}
    got = ours.generate(**unpadded, max_new_tokens=5, do_sample=False, pad_token_id=0)
    assert torch.equal(got, peft_greedy(peft_model, **unpadded, max_new_tokens=5, pad_token_id=0))


def test_generate_positions_padded_rows_like_the_base(batch):
    """generate numbers real tokens from the mask (as transformers does for the base model), after the P virtual ones."""
    model = _wrap("tiny-gpt2")  # learned absolute positions: a wrong position shows
    settings = dict(max_new_tokens=1, do_sample=False, pad_token_id=0, output_scores=True, return_dict_in_generate=True)
    out = model.generate(**batch, **settings)
    mask = batch["attention_mask"]
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    with torch.no_grad():
        expected = model(**batch, position_ids=positions).logits[:, -1]
        unpositioned = model(**batch).logits[:, -1]
    torch.testing.assert_close(out.scores[0], expected, atol=1e-5, rtol=0)
    assert (out.scores[0][0] - unpositioned[0]).abs().max() > 1e-2  # the padded row's positions do matter


def test_encoder_matches_peft(batch):
    _, peft_model, ours = _peft_pair("tiny-bert")
    with torch.no_grad():
        expected = peft_model(**batch).last_hidden_state
        got = ours(**batch).last_hidden_state
    assert got.shape == (*batch["input_ids"].shape, 64)
    torch.testing.assert_close(got, expected[:, P:], atol=ATOL, rtol=0)


def test_forward_extends_mask_labels_and_cuts_outputs(batch):
    model = _wrap("tiny-llama")
    seen = _spy(model)
    labels = batch["input_ids"].clone()
    out = model(**batch, labels=labels, output_hidden_states=True)
    kwargs = seen[-1]
    b, t = batch["input_ids"].shape
    assert kwargs["attention_mask"].shape == (b, P + t)
    assert torch.equal(kwargs["attention_mask"][:, :P], torch.ones(b, P, dtype=torch.long))
    assert torch.equal(kwargs["attention_mask"][:, P:], batch["attention_mask"])
    assert torch.equal(kwargs["labels"][:, :P], torch.full((b, P), -100))
    assert torch.equal(kwargs["labels"][:, P:], labels)
    assert torch.equal(kwargs["inputs_embeds"][1, :P], model.model.prompt.embedding.detach())
    assert out.logits.shape == (b, t, model.config.vocab_size)
    assert all(h.shape == (b, t, 64) for h in out.hidden_states)
    # the loss is the base's over the extended labels: the first real token is predicted by the last virtual one
    full = model.model.base(inputs_embeds=kwargs["inputs_embeds"], attention_mask=kwargs["attention_mask"]).logits
    expected = F.cross_entropy(full[:, P - 1 : -1].reshape(-1, full.shape[-1]), labels.reshape(-1))
    torch.testing.assert_close(out.loss, expected, atol=1e-6, rtol=0)


@pytest.mark.parametrize("kind", ["tiny-llama", "tiny-gpt2"])
def test_last_position_and_logits_to_keep(kind, batch):
    model = _wrap(kind)
    with torch.no_grad():
        full = model(**batch).logits
        last = model(batch["input_ids"], batch["attention_mask"], logits_to_keep=1).logits  # the classifier's call
        picked = model(**batch, logits_to_keep=torch.tensor([0, 3])).logits
    assert last.shape[1] == 1
    torch.testing.assert_close(last[:, 0], full[:, -1], atol=1e-6, rtol=0)
    torch.testing.assert_close(picked, full[:, [0, 3]], atol=1e-6, rtol=0)


@pytest.mark.parametrize("kind", ["tiny-llama", "tiny-gpt2", "tiny-bert"])
def test_inputs_embeds_equal_input_ids(kind, batch):
    model = _wrap(kind)
    embeds = model.get_input_embeddings()(batch["input_ids"])
    with torch.no_grad():
        a = model(**batch)
        b = model(inputs_embeds=embeds, attention_mask=batch["attention_mask"])
    key = "last_hidden_state" if kind == "tiny-bert" else "logits"
    torch.testing.assert_close(b[key], a[key], atol=0, rtol=0)
    with pytest.raises(ValueError, match="not both"):
        model(input_ids=batch["input_ids"], inputs_embeds=embeds)
    with pytest.raises(ValueError, match="input_ids or inputs_embeds"):
        model(attention_mask=batch["attention_mask"])


@pytest.mark.parametrize("kind", ["tiny-llama", "tiny-bert"])
def test_given_positions_and_token_types_follow_the_virtual_tokens(kind, batch):
    """Positions 0..T-1 of the real tokens become P..P+T-1, as when the base numbers them itself."""
    model = _wrap(kind)
    b, t = batch["input_ids"].shape
    extra = {"position_ids": torch.arange(t).expand(b, t)}
    if kind == "tiny-bert":
        extra["token_type_ids"] = torch.zeros(b, t, dtype=torch.long)
    key = "last_hidden_state" if kind == "tiny-bert" else "logits"
    with torch.no_grad():
        torch.testing.assert_close(model(**batch, **extra)[key], model(**batch)[key], atol=1e-6, rtol=0)
        shifted = model(**batch, position_ids=torch.arange(1, t + 1).expand(b, t))[key]
    assert (shifted - model(**batch)[key]).abs().max() > 1e-4


@pytest.mark.parametrize("name", ["cache", "past_key_values"])
def test_continuing_a_cache_does_not_prepend_again(name, batch):
    """The cache is taken under either name (transformers 5.24 renamed it) and handed on under the installed one."""
    model = _wrap("tiny-llama")
    step = torch.tensor([[7], [8], [9]])
    with torch.no_grad():
        first = model(**batch, use_cache=True)
        cache = getattr(first, CACHE_KWARG)
        assert cache.get_seq_length() == P + batch["input_ids"].shape[1]
        mask = torch.cat([batch["attention_mask"], torch.ones_like(step)], dim=1)
        nxt = model(input_ids=step, attention_mask=mask, **{name: cache}).logits
        full = model(input_ids=torch.cat([batch["input_ids"], step], dim=1), attention_mask=mask).logits
    torch.testing.assert_close(nxt[:, -1], full[:, -1], atol=1e-5, rtol=0)


@pytest.mark.parametrize("kind", ["tiny-llama", "tiny-gpt2"])
def test_generate_returns_real_ids_and_matches_a_greedy_loop(kind, batch):
    model = _wrap(kind)
    ids, t = batch["input_ids"], batch["input_ids"].shape[1]
    out = model.generate(**batch, max_new_tokens=4, do_sample=False, pad_token_id=0)
    assert out.shape == (3, t + 4) and torch.equal(out[:, :t], ids)
    seq = ids[1:2]  # an unpadded row: the forward's and generate's positions agree
    with torch.no_grad():
        for _ in range(4):
            seq = torch.cat([seq, model(input_ids=seq).logits[:, -1].argmax(-1, keepdim=True)], dim=1)
    assert torch.equal(out[1:2], seq)
    # max_length and min_length count the real tokens, as for the base model
    assert torch.equal(model.generate(**batch, max_length=t + 4, do_sample=False, pad_token_id=0), out)
    # min_length holds back an end token the model would emit at once: row 1's first new token (the tiny
    # model's weights, so its tokens, depend on transformers' initialisation and differ between versions)
    eos = int(out[1, t])
    assert model.generate(**batch, max_new_tokens=4, do_sample=False, pad_token_id=0, eos_token_id=eos)[1, t] == eos
    held = model.generate(**batch, min_length=t + 4, max_new_tokens=4, do_sample=False, pad_token_id=0, eos_token_id=eos)
    assert not (held[:, t:] == eos).any()
    embeds = model.get_input_embeddings()(ids)
    settings = dict(max_new_tokens=4, do_sample=False, pad_token_id=0)
    new = model.generate(inputs_embeds=embeds, attention_mask=batch["attention_mask"], **settings)
    assert torch.equal(new, out[:, t:])  # from embeddings only the new tokens come back, as from the base
    torch.manual_seed(0)
    sampled = model.generate(**batch, max_new_tokens=4, do_sample=True, top_k=0, pad_token_id=0)
    torch.manual_seed(0)
    assert torch.equal(model.generate(**batch, max_new_tokens=4, do_sample=True, top_k=0, pad_token_id=0), sampled)
    assert sampled.shape == (3, t + 4) and torch.equal(sampled[:, :t], ids)


def test_initialisations():
    table = make_model("tiny-llama").get_input_embeddings().weight
    vocab = _wrap("tiny-llama").model.prompt.embedding.detach()
    assert all((table == row).all(-1).any() for row in vocab), "vocab init rows come from the embedding table"
    assert torch.equal(_wrap("tiny-llama").model.prompt.embedding, vocab)  # seeded
    assert not torch.equal(_wrap("tiny-llama", seed=1).model.prompt.embedding, vocab)
    text = _wrap("tiny-llama", init="text", init_token_ids=[5, 6, 7]).model.prompt.embedding.detach()
    assert torch.equal(text, table[[5, 6, 7, 5, 6]])  # repeated to P
    cut = zoo.wrap(make_model("tiny-llama"), "prompt_tuning", num_virtual_tokens=2, init="text", init_token_ids=[5, 6, 7])
    assert torch.equal(cut.model.prompt.embedding.detach(), table[[5, 6]])
    rand = zoo.wrap(make_model("tiny-llama"), "prompt_tuning", num_virtual_tokens=400, init="random").model.prompt.embedding
    assert abs(rand.std().item() / table.std().item() - 1) < 0.1


def test_training_moves_the_answer():
    """A few steps on the soft prompt alone flip the model's preferred label word."""
    model = _wrap("tiny-llama").train()
    ids = torch.randint(4, 60, (8, 6), generator=torch.Generator().manual_seed(0))
    target = torch.full((8,), 1)
    opt = torch.optim.AdamW([model.model.prompt.embedding], lr=0.1)

    def loss():
        return F.cross_entropy(model(input_ids=ids, logits_to_keep=1).logits[:, -1, [5, 6]], target)

    start = loss().item()
    for _ in range(30):
        opt.zero_grad()
        value = loss()
        value.backward()
        opt.step()
    assert loss().item() < start - 0.3


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        (dict(num_virtual_tokens=0), "num_virtual_tokens must be a positive integer, got 0"),
        (dict(init="sample"), "init must be one of .*'vocab'.*got 'sample'"),
        (dict(init="vocab", init_text="bad good"), r"init_text='bad good' are only used with init='text'"),
        (dict(init="text", init_text=" "), r"init_text=' ' has no words"),
        (dict(init_token_ids=[5]), r"only used with init='text', not init='vocab'"),
        (dict(init="text", init_token_ids=[5, -1]), "non-negative integers"),
    ],
)
def test_bad_config(overrides, match):
    with pytest.raises(ValueError, match=match):
        PromptTuningConfig(**overrides)


def test_out_of_vocabulary_init_ids():
    with pytest.raises(ValueError, match=r"init_token_ids \[1000\] are outside the vocabulary of 69 tokens"):
        zoo.wrap(make_model("tiny-llama"), "prompt_tuning", init="text", init_token_ids=[5, 1000])
