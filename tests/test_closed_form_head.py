"""Closed-form head: the solve against numpy and gradient descent, the fit through a tiny LM, merging.

Tolerances: float64 solves against numpy's lstsq, atol 1e-6; against 2000 steps of gradient
descent, atol 1e-8 (the quadratic is well conditioned); W fitted through the float32 model (stored in float32) against numpy
on the same features, rtol 1e-4 + atol 1e-5.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import WORDS, make_model

import zoo
from zoo.methods.closed_form_head import ridge_lambda, smoothed_log_targets, solve_ridge

LABEL_IDS = [5, 6, 7]


def _random_problem(n: int, d: int, k: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g, dtype=torch.float64), torch.randn(n, k, generator=g, dtype=torch.float64)


def _numpy_ridge(z: torch.Tensor, r: torch.Tensor, lam: float) -> np.ndarray:
    """Ridge as plain least squares on rows augmented with sqrt(λ)·I (and zero targets)."""
    d = z.shape[1]
    z_aug = np.vstack([z.numpy(), np.sqrt(lam) * np.eye(d)])
    r_aug = np.vstack([r.numpy(), np.zeros((d, r.shape[1]))])
    return np.linalg.lstsq(z_aug, r_aug, rcond=None)[0]


@pytest.mark.parametrize("ridge", [0.0, 1e-3, 0.5])
def test_solve_matches_numpy_least_squares(ridge):
    z, r = _random_problem(30, 8, 3)
    w, solver = solve_ridge(z.T @ z, z.T @ r, ridge)
    assert solver == "cholesky"
    lam = ridge * float((z**2).sum()) / 8
    np.testing.assert_allclose(w.numpy(), _numpy_ridge(z, r, lam), atol=1e-6, rtol=0)


def test_closed_form_equals_trained_w():
    """Training W by gradient descent on the same objective converges to the closed form."""
    z, r = _random_problem(40, 5, 2, seed=1)
    ztz = z.T @ z
    lam = ridge_lambda(ztz, 1e-3)
    closed, _ = solve_ridge(ztz, z.T @ r, 1e-3)
    w = torch.zeros(5, 2, dtype=torch.float64, requires_grad=True)
    step = 1.0 / (2 * float(torch.linalg.eigvalsh(ztz).max() + lam))  # 1/L for this quadratic
    opt = torch.optim.SGD([w], lr=step)
    for _ in range(2000):
        opt.zero_grad()
        loss = (r - z @ w).pow(2).sum() + lam * w.pow(2).sum()
        loss.backward()
        opt.step()
    np.testing.assert_allclose(w.detach().numpy(), closed.numpy(), atol=1e-8, rtol=0)


def test_rank_deficient_features_give_a_finite_fitting_w():
    z, r = _random_problem(6, 10, 2, seed=2)
    z[:, 3] = z[:, 0]  # duplicate column, and N < d
    min_norm = np.linalg.lstsq(z.numpy(), r.numpy(), rcond=None)[0]
    w, solver = solve_ridge(z.T @ z, z.T @ r, 0.0)
    assert solver == "pinv"
    np.testing.assert_allclose(w.numpy(), min_norm, atol=1e-6, rtol=0)
    w_ridge, solver = solve_ridge(z.T @ z, z.T @ r, 1e-3)
    assert solver == "cholesky" and torch.isfinite(w_ridge).all()
    assert float((z @ w_ridge - r).abs().max()) < 0.05 * float(r.abs().max())  # min-norm fits exactly; ridge nearly
    assert float(w_ridge.norm()) <= np.linalg.norm(min_norm) + 1e-9


def test_smoothed_targets():
    logp = smoothed_log_targets(torch.tensor([2, 0]), 3, 0.1)
    np.testing.assert_allclose(logp.exp().numpy(), [[0.05, 0.05, 0.9], [0.9, 0.05, 0.05]], atol=1e-12)


def _toy(n: int, k: int, seed: int, length: int = 6) -> dict[str, torch.Tensor]:
    """Class c: tokens drawn from the c-th group of 15 words; left padded to ``length``."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % k
    ids = 10 + 15 * labels[:, None] + torch.randint(0, 15, (n, length), generator=g)
    mask = torch.ones_like(ids)
    short = torch.randint(0, 2, (n,), generator=g).bool()
    ids[short, :2], mask[short, :2] = 0, 0
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def _predict(model, batch) -> torch.Tensor:
    with torch.no_grad():
        out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], logits_to_keep=1)
    return out.logits[:, -1, LABEL_IDS].argmax(-1)


def test_fit_equals_numpy_on_the_model_features():
    data = _toy(24, 3, seed=0)
    base = make_model("tiny-llama")
    with torch.no_grad():
        out = base(input_ids=data["input_ids"], attention_mask=data["attention_mask"], output_hidden_states=True)
    z = out.hidden_states[-1][:, -1].double()  # the post-norm state the LM head reads
    logp = torch.log_softmax(out.logits[:, -1, LABEL_IDS].double(), -1)
    r = smoothed_log_targets(data["labels"], 3, 0.05) - logp
    model = zoo.wrap(make_model("tiny-llama"), "closed_form_head", label_token_ids=LABEL_IDS)
    summary = model.fit([data])
    lam = 1e-3 * float((z**2).sum()) / z.shape[1]
    np.testing.assert_allclose(
        model.model.head.weight_delta.detach().double().numpy(), _numpy_ridge(z, r, lam), rtol=1e-4, atol=1e-5
    )
    assert summary["n_examples"] == 24 and summary["cholesky"] == 1.0
    assert summary["ridge_lambda"] == pytest.approx(lam, rel=1e-9)
    assert summary["residual_before"] == pytest.approx(float((r**2).sum()) / 24, rel=1e-6)  # float32 logits, computed two ways
    assert summary["train_residual"] < summary["residual_before"]


def test_forward_adds_z_w_on_the_label_columns_only(batch):
    model = zoo.wrap(make_model("tiny-llama"), "closed_form_head", label_token_ids=LABEL_IDS)
    base = make_model("tiny-llama")
    with torch.no_grad():
        model.model.head.weight_delta.normal_()
        out = base(**batch, output_hidden_states=True)
        got = model(**batch).logits
        kept = model(**batch, logits_to_keep=1).logits
    expected = out.logits.clone()
    expected[..., LABEL_IDS] += out.hidden_states[-1] @ model.model.head.weight_delta
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)
    others = [i for i in range(got.shape[-1]) if i not in LABEL_IDS]
    assert torch.equal(got[..., others], out.logits[..., others])
    torch.testing.assert_close(kept, expected[:, -1:], atol=1e-5, rtol=0)


def test_generate_sees_the_fitted_head(batch):
    model = zoo.wrap(make_model("tiny-llama"), "closed_form_head", label_token_ids=LABEL_IDS).eval()
    with torch.no_grad():
        model.model.head.weight_delta.normal_(std=5.0)
    first = model.generate(**batch, max_new_tokens=1, do_sample=False, pad_token_id=0)[:, -1]
    assert torch.equal(first, model(**batch).logits[:, -1].argmax(-1))
    assert torch.isin(first, torch.tensor(LABEL_IDS)).any()


def test_batches_accumulate_like_one_batch():
    data = _toy(12, 3, seed=1)
    whole = zoo.wrap(make_model("tiny-llama"), "closed_form_head", label_token_ids=LABEL_IDS)
    parts = zoo.wrap(make_model("tiny-llama"), "closed_form_head", label_token_ids=LABEL_IDS)
    s_whole = whole.fit([data])
    s_parts = parts.fit([{key: v[i : i + 4] for key, v in data.items()} for i in range(0, 12, 4)])
    torch.testing.assert_close(parts.model.head.weight_delta, whole.model.head.weight_delta, atol=1e-5, rtol=1e-5)
    assert s_parts["n_examples"] == 12 and s_parts["train_residual"] == pytest.approx(s_whole["train_residual"], rel=1e-4)


def test_fit_learns_a_separable_toy_task():
    train, held_out = _toy(90, 3, seed=2), _toy(60, 3, seed=3)
    model = zoo.wrap(make_model("tiny-llama"), "closed_form_head", label_token_ids=LABEL_IDS)
    before = (_predict(model, train) == train["labels"]).float().mean()
    summary = model.fit([train])
    after = (_predict(model, train) == train["labels"]).float().mean()
    assert summary["base_accuracy"] == pytest.approx(float(before))
    assert before < 0.5 and after >= 0.95  # chance is 1/3
    assert (_predict(model, held_out) == held_out["labels"]).float().mean() >= 0.8


@pytest.mark.parametrize("kind", ["tiny-llama", "tiny-gpt2"])
def test_merge_moves_only_the_label_rows_of_the_output_embedding(kind, batch):
    model = zoo.wrap(make_model(kind), "closed_form_head", label_token_ids=LABEL_IDS).eval()
    model.fit([_toy(24, 3, seed=4)])
    inputs_before = model.get_input_embeddings().weight.detach().clone()
    head = model.model.head
    rows_before = head.base.weight.detach().clone()
    unmerged = model(**batch).logits
    zoo.merge(model)
    torch.testing.assert_close(model(**batch).logits, unmerged, atol=1e-5, rtol=1e-4)
    assert torch.equal(model.get_input_embeddings().weight, inputs_before)
    torch.testing.assert_close(
        head.base.weight[LABEL_IDS], rows_before[LABEL_IDS] + head.weight_delta.detach().T, atol=1e-6, rtol=0
    )
    others = [i for i in range(rows_before.shape[0]) if i not in LABEL_IDS]
    assert torch.equal(head.base.weight[others], rows_before[others])
    with pytest.raises(ValueError, match="unmerged model"):
        model.fit([_toy(6, 3, seed=5)])
    zoo.unmerge(model)
    assert torch.equal(head.base.weight, rows_before)
    if kind == "tiny-gpt2":  # tied: the head shares the input embedding again
        assert head.base.weight is model.get_input_embeddings().weight
    torch.testing.assert_close(model(**batch).logits, unmerged, atol=0, rtol=0)


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"label_token_ids": None}, "label_token_ids is None"),
        ({"label_token_ids": []}, r"label_token_ids is \[\]"),
        ({"label_token_ids": [5, 5]}, "repeat a token id"),
        ({"label_token_ids": [5, -1]}, "non-negative integers"),
        ({"label_token_ids": [5]}, "at least two"),
        ({"label_token_ids": [5, len(WORDS) + 4]}, "exceed the vocabulary"),
        ({"label_token_ids": [5, 6], "label_smoothing": 0.0}, r"label_smoothing must be in \(0, 1\)"),
        ({"label_token_ids": [5, 6], "label_smoothing": 1.0}, r"label_smoothing must be in \(0, 1\)"),
        ({"label_token_ids": [5, 6], "label_smoothing": 0.5}, "must be below"),
        ({"label_token_ids": [5, 6], "ridge": -1.0}, "ridge must be >= 0"),
    ],
)
def test_config_errors(overrides, message):
    with pytest.raises(ValueError, match=message):
        zoo.wrap(make_model("tiny-llama"), "closed_form_head", **overrides)


def test_fit_errors():
    model = zoo.wrap(make_model("tiny-llama"), "closed_form_head", label_token_ids=[5, 6])
    data = _toy(6, 3, seed=6)
    with pytest.raises(ValueError, match=r"class indices in 0\.\.1"):
        model.fit([data])
    right_padded = {**_toy(4, 2, seed=7), "attention_mask": torch.tensor([[1] * 5 + [0]] * 4)}
    with pytest.raises(ValueError, match="left padded"):
        model.fit([right_padded])
    with pytest.raises(ValueError, match="no examples"):
        model.fit([])
    with pytest.raises(ValueError, match="supports"):
        zoo.wrap(make_model("tiny-bert"), "closed_form_head", label_token_ids=[5, 6])
