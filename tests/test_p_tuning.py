"""P-tuning: peft as oracle for both encoders, the encoder's layout and coupling, the inference
cache, seeding, errors. The virtual-token wrapper itself is tested in test_prompt_tuning.py."""

from __future__ import annotations

import copy

import pytest
import torch
from conftest import NO_PAST_KEY_VALUES, make_model
from peft import PromptEncoderConfig, get_peft_model
from peft_oracle import peft_greedy

import zoo
from zoo.methods.p_tuning import PTuningConfig

pytestmark = NO_PAST_KEY_VALUES

P = 5
ATOL = 1e-5  # float32 on tiny models; the measured difference against peft is 0.0


def _wrap(kind: str = "tiny-llama", **overrides):
    return zoo.wrap(make_model(kind), "p_tuning", num_virtual_tokens=P, **overrides).eval()


def _peft_pair(kind: str, encoder: str):
    """peft and zoo p-tuning on copies of one base, holding the same embeddings and encoder weights."""
    base = make_model(kind)
    task = "FEATURE_EXTRACTION" if kind == "tiny-bert" else "CAUSAL_LM"
    peft_cfg = PromptEncoderConfig(
        task_type=task,
        num_virtual_tokens=P,
        encoder_reparameterization_type=encoder.upper(),
        encoder_hidden_size=32,
    )
    peft_model = get_peft_model(copy.deepcopy(base), peft_cfg).eval()
    ours = zoo.wrap(copy.deepcopy(base), "p_tuning", num_virtual_tokens=P, encoder_type=encoder, encoder_hidden_size=32).eval()
    renamed = {
        "embedding.weight" if name == "embedding" else name.replace("lstm.", "lstm_head.").replace("mlp.", "mlp_head."): value
        for name, value in ours.model.prompt.state_dict().items()
    }
    peft_model.prompt_encoder["default"].load_state_dict(renamed, strict=True)  # same layout, every tensor copied
    return base, peft_model, ours


@pytest.mark.parametrize("encoder", ["lstm", "mlp"])
@pytest.mark.parametrize("kind", ["tiny-llama", "tiny-gpt2"])
def test_matches_peft_logits_and_greedy_generate(kind, encoder, batch):
    base, peft_model, ours = _peft_pair(kind, encoder)
    with torch.no_grad():
        expected = peft_model(**batch).logits
        got = ours(**batch).logits
    assert expected.shape[1] == got.shape[1] + P  # peft returns the virtual positions, zoo does not
    torch.testing.assert_close(got, expected[:, P:], atol=ATOL, rtol=0)
    assert (got - base(**batch).logits).abs().max() > 1e-3, "the virtual tokens must change the output"
    unpadded = {k: v[1:] for k, v in batch.items()}  # peft ignores generate's position ids on padded rows
    got = ours.generate(**unpadded, max_new_tokens=5, do_sample=False, pad_token_id=0)
    assert torch.equal(got, peft_greedy(peft_model, **unpadded, max_new_tokens=5, pad_token_id=0))


def test_encoder_model_matches_peft(batch):
    _, peft_model, ours = _peft_pair("tiny-bert", "lstm")
    with torch.no_grad():
        expected = peft_model(**batch).last_hidden_state
        got = ours(**batch).last_hidden_state
    torch.testing.assert_close(got, expected[:, P:], atol=ATOL, rtol=0)


def test_generate_and_training_mode_outputs(batch):
    model = _wrap("tiny-gpt2", encoder_dropout=0.5, encoder_num_layers=2)
    out = model.generate(**batch, max_new_tokens=3, do_sample=False, pad_token_id=0)
    assert out.shape == (3, 10) and torch.equal(out[:, :7], batch["input_ids"])
    model.train()  # dropout inside the LSTM: two training passes differ (no cache, even without grad), eval passes agree
    assert not torch.equal(model.model.prompt(), model.model.prompt())
    with torch.no_grad():
        assert not torch.equal(model.model.prompt(), model.model.prompt())
    model.eval()
    with torch.no_grad():
        assert torch.equal(model.model.prompt(), model.model.prompt())


def test_encoder_layout_and_coupling():
    lstm = _wrap(encoder_hidden_size=16, encoder_num_layers=3).model.prompt
    assert lstm.lstm.hidden_size == 16 and lstm.lstm.num_layers == 3 and lstm.lstm.bidirectional
    assert [tuple(m.weight.shape) for m in lstm.mlp if isinstance(m, torch.nn.Linear)] == [(32, 32), (64, 32)]
    mlp = _wrap(encoder_type="mlp").model.prompt
    assert mlp.lstm is None  # hidden size defaults to the model's width, 64
    assert [tuple(m.weight.shape) for m in mlp.mlp if isinstance(m, torch.nn.Linear)] == [(64, 64), (64, 64), (64, 64)]
    for prompt, coupled in ((lstm, True), (mlp, False)):
        with torch.no_grad():
            before = prompt.encode()
            prompt.embedding[0] += 1.0
            moved = (prompt.encode() - before).abs().amax(-1)  # (P,)
        assert moved[0] > 0
        assert (moved[-1] > 0) == coupled  # the biLSTM carries the first token to the last; the MLP does not


def test_inference_cache_follows_parameter_updates(batch):
    model = _wrap()
    prompt = model.model.prompt
    with torch.no_grad():
        first = prompt()
        assert prompt() is first  # eval + no_grad: computed once
    model.train()
    opt = torch.optim.SGD(prompt.parameters(), lr=0.5)
    loss = model(**batch).logits.pow(2).mean()
    assert prompt().requires_grad  # training recomputes, with a graph
    loss.backward()
    opt.step()
    model.eval()
    with torch.no_grad():
        updated = prompt()
        torch.testing.assert_close(updated, prompt.encode(), atol=0, rtol=0)
        assert not torch.equal(updated, first)
        prompt.embedding.mul_(2.0)  # in place, outside an optimiser
        torch.testing.assert_close(prompt(), prompt.encode(), atol=0, rtol=0)


def test_seeded_init_leaves_global_rng_alone():
    state = torch.random.get_rng_state()
    a = _wrap().model.prompt.state_dict()
    assert torch.equal(torch.random.get_rng_state(), state)
    b = _wrap().model.prompt.state_dict()
    c = _wrap(seed=1).model.prompt.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["lstm.weight_ih_l0"], c["lstm.weight_ih_l0"])
    table = make_model("tiny-llama").get_input_embeddings().weight
    assert all((table == row).all(-1).any() for row in a["embedding"]), "vocab init rows come from the embedding table"
    random = zoo.wrap(make_model("tiny-llama"), "p_tuning", num_virtual_tokens=400, init="random").model.prompt.embedding
    assert abs(random.std().item() / table.std().item() - 1) < 0.1


def test_trainable_parameters_are_the_encoder():
    model = _wrap(encoder_type="mlp", encoder_hidden_size=8)
    trainable = {n for n, p in model.model.named_parameters() if p.requires_grad}
    assert trainable == {"prompt.embedding"} | {f"prompt.mlp.{i}.{w}" for i in (0, 2, 4) for w in ("weight", "bias")}
    assert zoo.count_parameters(model)[0] == P * 64 + (64 * 8 + 8) + (8 * 8 + 8) + (8 * 64 + 64)


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        (dict(num_virtual_tokens=-1), "num_virtual_tokens must be a positive integer, got -1"),
        (dict(encoder_type="gru"), r"encoder_type must be one of \['lstm', 'mlp'\], got 'gru'"),
        (dict(encoder_hidden_size=0), "encoder_hidden_size must be a positive integer or None, got 0"),
        (dict(encoder_num_layers=0), "encoder_num_layers must be an integer from 1 to 32 \\(the paper.s LSTM has 2\\), got 0"),
        (dict(encoder_type="mlp", encoder_num_layers=3), "applies to encoder_type='lstm' only"),
        (dict(encoder_dropout=1.0), r"encoder_dropout must be in \[0, 1\), got 1.0"),
        (dict(init="text"), r"init must be one of \['random', 'vocab'\], got 'text'"),
    ],
)
def test_bad_config(overrides, match):
    with pytest.raises(ValueError, match=match):
        PTuningConfig(**overrides)
