"""Prefix tuning: peft as oracle, the cache path in forward and generate, GQA, folding, errors."""

from __future__ import annotations

import copy

import pytest
import torch
from conftest import NO_PAST_KEY_VALUES, make_model
from peft import PrefixTuningConfig as PeftPrefixConfig
from peft import get_peft_model
from peft_oracle import peft_greedy, quiet_peft
from transformers import DynamicCache, LlamaForCausalLM

import zoo
from zoo.methods.prefix_tuning import PrefixTuningConfig, fold_prefix
from zoo.models.cache_kwarg import CACHE_KWARG

pytestmark = NO_PAST_KEY_VALUES

P = 5
ATOL = 1e-5  # float32 on tiny models; the measured difference against peft is 0.0


def _wrap(kind: str, **overrides):
    return zoo.wrap(make_model(kind), "prefix_tuning", num_virtual_tokens=P, **overrides).eval()


def _peft_pair(kind: str, projection: bool):
    """peft and zoo prefix tuning on copies of one base, holding the same prefix (and MLP) values."""
    base = make_model(kind)
    task = "CAUSAL_LM" if kind != "tiny-bert" else "FEATURE_EXTRACTION"
    peft_model = get_peft_model(
        copy.deepcopy(base),
        PeftPrefixConfig(task_type=task, num_virtual_tokens=P, prefix_projection=projection),
    ).eval()
    peft_cfg, encoder = peft_model.peft_config["default"], peft_model.prompt_encoder["default"]
    sizes = dict(embedding_dim=peft_cfg.token_dim, projection_hidden_size=peft_cfg.encoder_hidden_size) if projection else {}
    ours = zoo.wrap(copy.deepcopy(base), "prefix_tuning", num_virtual_tokens=P, reparameterize=projection, **sizes).eval()
    prefix = ours.model.prefix_encoder
    with torch.no_grad():
        if projection:
            prefix.embedding.copy_(encoder.embedding.weight)
            prefix.mlp[0].load_state_dict(encoder.transform[0].state_dict())
            prefix.mlp[2].load_state_dict(encoder.transform[2].state_dict())
        else:
            prefix.prefix.copy_(encoder.embedding.weight)
    return base, peft_model, ours


@pytest.mark.parametrize("projection", [False, True])
@pytest.mark.parametrize("kind", ["tiny-llama", "tiny-gpt2"])
def test_matches_peft_logits_and_greedy_generate(kind, projection, batch):
    base, peft_model, ours = _peft_pair(kind, projection)
    with torch.no_grad(), quiet_peft():
        expected = peft_model(**batch).logits
    with torch.no_grad():
        got = ours(**batch).logits
        torch.testing.assert_close(got, expected, atol=ATOL, rtol=0)
        assert (got - base(**batch).logits).abs().max() > 1e-2, "the prefix must change the output"
    got = ours.generate(**batch, max_new_tokens=5, do_sample=False, pad_token_id=0)
    assert torch.equal(got, peft_greedy(peft_model, **batch, max_new_tokens=5, pad_token_id=0, positions_from_mask=True))


def test_encoder_matches_peft_once_positions_agree(batch):
    """On an encoder zoo keeps the real tokens at positions 0..T-1; peft shifts them by P."""
    _, peft_model, ours = _peft_pair("tiny-bert", projection=False)
    length = batch["input_ids"].shape[1]
    with torch.no_grad():
        got = ours(**batch).last_hidden_state
        assert got.shape == (3, length, 64)
        with quiet_peft():
            # peft adds P to given position_ids, so these become 0..T-1 inside peft
            unshifted = peft_model(**batch, position_ids=torch.arange(length).unsqueeze(0) - P).last_hidden_state
            shifted = peft_model(**batch).last_hidden_state
        torch.testing.assert_close(got, unshifted, atol=ATOL, rtol=0)
        assert (got - shifted).abs().max() > 1e-2


@pytest.mark.parametrize("kind", ["tiny-llama", "tiny-gpt2"])
def test_greedy_generate_equals_a_cacheless_loop(kind, batch):
    """Each new token is the argmax of a full forward over everything so far (left padding included)."""
    model = _wrap(kind)
    out = model.generate(**batch, max_new_tokens=4, do_sample=False, pad_token_id=0)
    ids, mask = batch["input_ids"], batch["attention_mask"]
    finished = torch.zeros(ids.shape[0], 1, dtype=torch.bool)
    with torch.no_grad():
        for _ in range(4):
            positions = (mask.cumsum(-1) - 1).clamp(min=0)  # what generate derives from the mask
            logits = model(input_ids=ids, attention_mask=mask, position_ids=positions).logits[:, -1]
            token = logits.argmax(-1, keepdim=True).masked_fill(finished, 0)  # pad after eos, as generate does
            finished |= token == model.config.eos_token_id
            ids = torch.cat([ids, token], dim=1)
            mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
    assert torch.equal(out, ids)


@pytest.mark.parametrize("kind", ["tiny-llama", "tiny-gpt2"])
def test_sampling_beams_and_lengths_hold_no_virtual_positions(kind, batch):
    model = _wrap(kind)
    rows, length = batch["input_ids"].shape
    greedy = model.generate(**batch, max_new_tokens=3, do_sample=False, pad_token_id=0)
    torch.manual_seed(0)
    top1 = model.generate(**batch, max_new_tokens=3, do_sample=True, top_k=1, pad_token_id=0)
    assert torch.equal(top1, greedy)
    torch.manual_seed(0)
    sampled = model.generate(**batch, max_new_tokens=3, do_sample=True, num_return_sequences=2, pad_token_id=0)
    assert sampled.shape == (2 * rows, length + 3)
    assert torch.equal(sampled[::2, :length], batch["input_ids"])
    beams = model.generate(**batch, max_new_tokens=3, num_beams=2, num_return_sequences=2, pad_token_id=0)
    assert beams.shape == (2 * rows, length + 3)
    assert model.generate(**batch, max_length=length + 2, pad_token_id=0).shape == (rows, length + 2)


def test_forward_cache_holds_the_prefix_first(batch):
    model = _wrap("tiny-llama")
    with torch.no_grad():
        out = model(**batch, use_cache=True)
        table = model.model.prefix_encoder()  # (P, layers·2·kv_heads·head_dim)
    cache = getattr(out, CACHE_KWARG)
    assert cache.get_seq_length() == P + batch["input_ids"].shape[1]
    keys = table.view(P, 2, 2, 2, 16)[:, 1, 0]  # layer 1, keys: (P, kv_heads, head_dim)
    torch.testing.assert_close(cache.layers[1].keys[2, :, :P], keys.transpose(0, 1), atol=0, rtol=0)


@pytest.mark.parametrize("name", ["cache", "past_key_values"])
def test_forward_continues_a_cache_under_either_name(name, batch):
    """A given cache holds the prefix already (no second prefix), whichever name it comes under."""
    model = _wrap("tiny-llama")
    step = torch.tensor([[7], [8], [9]])
    mask = torch.cat([batch["attention_mask"], torch.ones_like(step)], dim=1)
    with torch.no_grad():
        cache = getattr(model(**batch, use_cache=True), CACHE_KWARG)
        nxt = model(input_ids=step, attention_mask=mask, **{name: cache}).logits[:, -1]
        full = model(input_ids=torch.cat([batch["input_ids"], step], dim=1), attention_mask=mask).logits[:, -1]
    assert cache.get_seq_length() == P + batch["input_ids"].shape[1] + 1
    torch.testing.assert_close(nxt, full, atol=1e-5, rtol=0)


def _mha_twin(gqa: LlamaForCausalLM) -> LlamaForCausalLM:
    """The same function as ``gqa`` with one key/value head per query head (k/v weights repeated)."""
    config = copy.deepcopy(gqa.config)
    heads, kv_heads, head_dim = config.num_attention_heads, config.num_key_value_heads, config.head_dim
    config.num_key_value_heads = heads
    state = gqa.state_dict()
    for name, weight in state.items():
        if name.endswith(("k_proj.weight", "v_proj.weight")):
            repeated = weight.view(kv_heads, head_dim, -1).repeat_interleave(heads // kv_heads, 0)
            state[name] = repeated.reshape(heads * head_dim, -1)
    twin = LlamaForCausalLM(config).eval()
    twin.load_state_dict(state)
    return twin


def test_grouped_query_prefix_is_per_kv_head(batch):
    """A GQA prefix equals, on the equivalent multi-head model, the prefix repeated per query head."""
    gqa_base = make_model("tiny-llama")
    twin = _mha_twin(gqa_base)
    torch.testing.assert_close(twin(**batch).logits, gqa_base(**batch).logits, atol=1e-6, rtol=0)
    gqa = zoo.wrap(gqa_base, "prefix_tuning", num_virtual_tokens=P, reparameterize=False).eval()
    mha = zoo.wrap(twin, "prefix_tuning", num_virtual_tokens=P, reparameterize=False).eval()
    table = gqa.model.prefix_encoder.prefix  # (P, layers·2·kv_heads·head_dim)
    assert table.shape == (P, 2 * 2 * 2 * 16)
    with torch.no_grad():
        mha.model.prefix_encoder.prefix.copy_(table.view(P, 2, 2, 2, 16).repeat_interleave(2, dim=3).reshape(P, -1))
        torch.testing.assert_close(mha(**batch).logits, gqa(**batch).logits, atol=ATOL, rtol=0)


def test_gpt2_prefix_width_uses_all_heads():
    assert _wrap("tiny-gpt2").model.prefix_encoder().shape == (P, 2 * 2 * 4 * 16)


@pytest.mark.parametrize("kind", ["tiny-llama", "tiny-gpt2", "tiny-bert"])
def test_fold_keeps_outputs_and_saves_only_the_table(kind, batch, tmp_path):
    model = _wrap(kind)
    with torch.no_grad():
        before = model(**batch)
    assert set(model.adapter_state_dict()) == {
        "prefix_encoder.embedding",
        "prefix_encoder.mlp.0.weight",
        "prefix_encoder.mlp.0.bias",
        "prefix_encoder.mlp.2.weight",
        "prefix_encoder.mlp.2.bias",
    }
    fold_prefix(model)
    assert set(model.adapter_state_dict()) == {"prefix_encoder.prefix"}
    assert model.method_config.reparameterize is False
    assert {n for n, p in model.named_parameters() if p.requires_grad} == {"model.prefix_encoder.prefix"}
    key = "logits" if kind != "tiny-bert" else "last_hidden_state"
    with torch.no_grad():
        torch.testing.assert_close(model(**batch)[key], before[key], atol=1e-6, rtol=0)
    zoo.save_adapter(model, tmp_path / "folded")
    loaded = zoo.load_adapter(make_model(kind), tmp_path / "folded").eval()
    with torch.no_grad():
        torch.testing.assert_close(loaded(**batch)[key], before[key], atol=1e-6, rtol=0)


def test_not_identity_at_init(batch):
    with torch.no_grad():
        assert (_wrap("tiny-llama")(**batch).logits - make_model("tiny-llama")(**batch).logits).abs().max() > 1e-2


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("num_virtual_tokens", 0, "num_virtual_tokens must be a positive integer, got 0"),
        ("projection_hidden_size", -3, "projection_hidden_size must be a positive integer, got -3"),
        ("embedding_dim", 0, "embedding_dim must be a positive integer or None"),
        ("reparameterize", "yes", "reparameterize must be true or false, got 'yes'"),
    ],
)
def test_bad_config_is_refused(field, value, match):
    with pytest.raises(ValueError, match=match):
        PrefixTuningConfig(**{field: value})


def test_bad_generate_calls_and_fold_targets_are_refused(batch):
    model = _wrap("tiny-llama")
    with pytest.raises(ValueError, match="use_cache=False is not supported"):
        model.generate(**batch, max_new_tokens=2, use_cache=False)
    with pytest.raises(ValueError, match="inputs_embeds is not supported"):
        model.generate(inputs_embeds=torch.zeros(1, 3, 64), max_new_tokens=2)
    for name in ("cache", "past_key_values"):
        with pytest.raises(ValueError, match=f"seeds its own cache; do not pass {name}"):
            model.generate(**batch, max_new_tokens=2, **{name: DynamicCache()})
    with pytest.raises(ValueError, match="got both cache and past_key_values"):
        model(**batch, cache=DynamicCache(), past_key_values=DynamicCache())
    with pytest.raises(TypeError, match="fold_prefix needs a model wrapped with 'prefix_tuning'"):
        fold_prefix(zoo.wrap(make_model("tiny-llama"), "lora"))
