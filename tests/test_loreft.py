"""LoReFT (zoo/methods/loreft.py) against the paper's formula, and the prompt positions it acts at (zoo/positions.py)."""

from __future__ import annotations

import pytest
import torch
from conftest import make_model
from contract_helpers import perturb
from safetensors.torch import load_file

import zoo
from zoo.methods.loreft import LoReFTConfig, LoReFTIntervention
from zoo.positions import PositionTracker, PromptPositions


def _interventions(model: zoo.ZooModel) -> list[LoReFTIntervention]:
    return [m for m in model.modules() if isinstance(m, LoReFTIntervention)]


def _chosen_everywhere(batch: int, length: int) -> PositionTracker:
    tracker = PositionTracker(PromptPositions(1, 0))
    tracker.chosen = torch.ones(batch, length, dtype=torch.bool)
    return tracker


def test_formula_on_hand_computed_values():
    module = LoReFTIntervention(3, 1, _chosen_everywhere(1, 1), {})
    with torch.no_grad():
        module.rotate.weight = torch.tensor([[0.6, 0.8, 0.0]])  # a unit row: R Rᵀ = 1
        module.source.weight.copy_(torch.tensor([[1.0, 2.0, 3.0]]))
        module.source.bias.copy_(torch.tensor([0.5]))
    torch.testing.assert_close(module.rotate.weight, torch.tensor([[0.6, 0.8, 0.0]]), atol=1e-6, rtol=0)
    h = torch.tensor([[[1.0, 1.0, 1.0]]])
    # W h + b = 6.5, R h = 1.4: h + Rᵀ (6.5 − 1.4) = (1, 1, 1) + 5.1 · (0.6, 0.8, 0)
    torch.testing.assert_close(module(h), torch.tensor([[[4.06, 5.08, 1.0]]]), atol=1e-5, rtol=0)


def test_identity_at_init_is_exact_and_w_moves_it():
    module = LoReFTIntervention(16, 4, _chosen_everywhere(2, 5), {})
    h = torch.randn(2, 5, 16, generator=torch.Generator().manual_seed(0))
    assert torch.equal(module(h), h)  # W = R and b = 0: (W − R) h + b is exactly zero
    with torch.no_grad():
        module.source.bias.add_(0.1)
    assert not torch.allclose(module(h), h)


def test_rows_of_r_stay_orthonormal_through_training(batch):
    model = zoo.wrap(make_model("tiny-llama"), "loreft", r=4)
    rotate = _interventions(model)[0].rotate
    start = rotate.weight.detach().clone()
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=0.05, weight_decay=0.1)  # decay shrinks the free matrix; R must not care
    for _ in range(10):
        logits = model(**batch).logits
        logits[:, -1, :8].logsumexp(-1).sum().backward()
        optimizer.step()
        optimizer.zero_grad()
    for module in _interventions(model):
        r = module.rotate.weight.detach()
        torch.testing.assert_close(r @ r.T, torch.eye(4), atol=1e-5, rtol=0)
    assert (rotate.weight.detach() - start).abs().max() > 1e-2, "R did not move: the test would not see it leave the manifold"


def test_saved_tensors_are_r_w_and_b_of_each_layer(tmp_path):
    model = zoo.wrap(make_model("tiny-llama"), "loreft", r=4, layers=[1])
    perturb(model)
    zoo.save_adapter(model, tmp_path / "adapter")
    saved = load_file(str(tmp_path / "adapter" / "adapter_model.safetensors"))
    prefix = "model.layers.1.loreft."
    assert {k: tuple(v.shape) for k, v in saved.items()} == {
        prefix + "rotate.parametrizations.weight.original": (4, 64),
        prefix + "source.weight": (4, 64),
        prefix + "source.bias": (4,),
    }
    loaded = zoo.load_adapter(make_model("tiny-llama"), tmp_path / "adapter")
    assert torch.equal(_interventions(loaded)[0].rotate.weight, _interventions(model)[0].rotate.weight)


@pytest.mark.parametrize(
    ("mask", "expected"),
    [
        ([0, 0, 1, 1, 1, 1, 1, 1], [0, 0, 1, 1, 0, 0, 0, 1]),  # left padded
        ([1, 1, 1, 1, 1, 1, 0, 0], [1, 1, 0, 0, 0, 1, 0, 0]),  # right padded
        ([0, 1, 1, 0, 0, 0, 0, 0], [0, 1, 1, 0, 0, 0, 0, 0]),  # shorter than first + last: each token once
    ],
)
def test_prompt_positions_count_attended_tokens(mask, expected):
    chosen = PromptPositions(first=2, last=1).chosen(torch.tensor([mask]))
    assert chosen.tolist() == [[bool(e) for e in expected]]


def _hidden(model, batch) -> tuple[torch.Tensor, ...]:
    with torch.no_grad():
        return model(**batch, output_hidden_states=True).hidden_states


def test_positions_outside_the_chosen_are_untouched(batch):
    model = zoo.wrap(make_model("tiny-llama"), "loreft", first_positions=1, last_positions=2, layers=[0])
    perturb(model)
    model.eval()
    ours, base = _hidden(model, batch), _hidden(make_model("tiny-llama"), batch)
    chosen = PromptPositions(1, 2).chosen(batch["attention_mask"])  # (B, T)
    assert torch.equal(ours[0], base[0])  # the embeddings, before block 0
    after = ours[1] != base[1]  # block 0's output, where LoReFT edits
    assert torch.equal(after.any(-1), chosen)  # changed exactly at the chosen positions, bit-identical elsewhere


def test_only_the_last_tokens_leave_every_earlier_position_bit_identical(batch):
    model = zoo.wrap(make_model("tiny-llama"), "loreft", first_positions=0, last_positions=2)
    perturb(model)
    model.eval()
    with torch.no_grad():
        ours, base = model(**batch).logits, make_model("tiny-llama")(**batch).logits
    assert torch.equal(ours[:, :-2], base[:, :-2])  # a causal model: nothing before the edited tokens sees them
    assert not torch.allclose(ours[:, -2:], base[:, -2:])


@pytest.mark.parametrize("kind", ["tiny-llama", "tiny-gpt2"])
def test_left_and_right_padding_edit_the_same_tokens(kind):
    model = zoo.wrap(make_model(kind), "loreft", first_positions=2, last_positions=2)
    perturb(model)
    model.eval()
    ids = torch.randint(4, 60, (1, 6), generator=torch.Generator().manual_seed(3))
    pad, ones = torch.zeros(1, 3, dtype=torch.long), torch.ones(1, 6, dtype=torch.long)
    with torch.no_grad():
        alone = model(input_ids=ids).logits[0]
        right = model(input_ids=torch.cat([ids, pad], 1), attention_mask=torch.cat([ones, pad], 1)).logits[0, :6]
        left = model(
            input_ids=torch.cat([pad, ids], 1),
            attention_mask=torch.cat([pad, ones], 1),
            position_ids=torch.cat([torch.zeros(1, 3, dtype=torch.long), torch.arange(6)[None]], 1),
        ).logits[0, 3:]
    base = make_model(kind)(input_ids=ids).logits[0]
    assert not torch.allclose(alone, base, atol=1e-3)
    torch.testing.assert_close(right, alone, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(left, alone, atol=1e-5, rtol=1e-4)


def test_generate_edits_the_prompt_at_prefill_only(batch):
    model = zoo.wrap(make_model("tiny-llama"), "loreft")
    perturb(model)
    model.eval()
    tracker = _interventions(model)[0].tracker
    seen = []
    model.model.register_forward_hook(lambda *_: seen.append(tracker.chosen.clone()))
    model.generate(**batch, max_new_tokens=3, do_sample=False, pad_token_id=0)
    assert torch.equal(seen[0], PromptPositions(7, 7).chosen(batch["attention_mask"]))
    assert len(seen) == 3 and all(s.shape == (3, 1) and not s.any() for s in seen[1:])


def test_refuses_encoders_and_bad_configs():
    with pytest.raises(ValueError, match=r"method 'loreft' supports \['causal_lm'\] models, not a encoder"):
        zoo.wrap(make_model("tiny-bert"), "loreft")
    with pytest.raises(ValueError, match="r must be a positive integer, got 0"):
        LoReFTConfig(r=0)
    with pytest.raises(ValueError, match="first must be a non-negative integer"):
        LoReFTConfig(first_positions=-1)
    with pytest.raises(ValueError, match="first and last are both 0"):
        LoReFTConfig(first_positions=0, last_positions=0)
    with pytest.raises(ValueError, match=r"layers \[5\] name block 5, but the model has 2 blocks \(0 to 1\)"):
        zoo.wrap(make_model("tiny-llama"), "loreft", layers=[5])
    with pytest.raises(ValueError, match="r=65 exceeds the hidden width 64"):
        zoo.wrap(make_model("tiny-llama"), "loreft", r=65)
    assert zoo.get_method("loreft").task_kinds == ("classification",)  # a teacher-forced response would be read as prompt
