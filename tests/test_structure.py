"""Structural analysis: a synthetic case with a known scaling and known rotations, models, interventions, the CLI."""

from __future__ import annotations

import copy
import csv
import math

import pytest
import torch
from conftest import make_model
from contract_helpers import perturb

import zoo
from zoo.models.load import ModelConfig, load_model
from zoo.research.structure import analyse, compare, linear_map, summarise, svd
from zoo.research.structure_cli import main, run_analysis
from zoo.research.structure_experiments import apply_experiment, rebuild
from zoo.runtime.written import MANIFEST


def _rotation(k: int, angle: float, seed: int) -> torch.Tensor:
    """A (k, k) rotation exp(angle · A), A skew-symmetric: close enough to I that no singular pair flips."""
    a = torch.randn(k, k, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return torch.linalg.matrix_exp(angle * (a - a.T) / math.sqrt(k))


def _known_case(d_out: int, d_in: int, c: float, same_rotation: bool = False, rotation_seed: int = 1):
    """W_t = U_b R_U diag(c·S_b) (V_b R_V)ᵀ, with W_b random: returns W_b, W_t, R_U, R_V."""
    w_b = torch.randn(d_out, d_in, generator=torch.Generator().manual_seed(d_out * d_in), dtype=torch.float64)
    b = svd(w_b)
    k = b.S.numel()
    r_u = _rotation(k, 0.3, rotation_seed)
    r_v = r_u if same_rotation else _rotation(k, 0.3, rotation_seed + 1000)
    return w_b, (b.U @ r_u) @ torch.diag(c * b.S) @ (b.V @ r_v).T, r_u, r_v


@pytest.mark.parametrize("shape", [(24, 24), (40, 16), (16, 40)])
def test_known_scale_and_rotations_are_recovered(shape):
    w_b, w_t, r_u, r_v = _known_case(*shape, c=1.3)
    change = compare("m", w_b, w_t)
    k = min(shape)
    assert change.scale == pytest.approx(1.3, abs=1e-10)
    assert change.scale_residual < 1e-10 and change.model_residual < 1e-10 and change.procrustes_residual < 1e-10
    torch.testing.assert_close(change.R_U, r_u, rtol=0, atol=1e-8)
    torch.testing.assert_close(change.R_V, r_v, rtol=0, atol=1e-8)
    eye = torch.eye(k, dtype=torch.float64)
    assert change.rotation_left == pytest.approx(float((r_u - eye).norm()) / math.sqrt(2 * k), abs=1e-8)
    assert change.left_right_agreement == pytest.approx(float(torch.trace(r_u.T @ r_v)) / k, abs=1e-8)
    assert 0.05 < change.rotation_left < 0.5 and change.left_right_agreement < 0.99  # the case is not trivial
    assert change.ratio_min == pytest.approx(1.3) and change.ratio_max == pytest.approx(1.3)


def test_same_rotation_on_both_sides_reads_as_full_agreement_and_no_change_as_identity():
    w_b, w_t, _, _ = _known_case(20, 20, c=0.8, same_rotation=True)
    assert compare("m", w_b, w_t).left_right_agreement == pytest.approx(1.0, abs=1e-10)
    unchanged = compare("m", w_b, w_b.clone())
    assert unchanged.scale == pytest.approx(1.0) and unchanged.rotation_left < 1e-7 and unchanged.rotation_right < 1e-7
    assert unchanged.relative_change == 0.0


def test_a_random_rotation_reads_near_one():
    w_b = torch.randn(64, 64, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    w_t = rebuild("random_rotation", w_b, w_b, torch.Generator().manual_seed(1))
    change = compare("m", w_b, w_t)
    assert change.scale == pytest.approx(1.0, abs=1e-10)  # the spectrum is kept
    assert 0.8 < change.rotation_left < 1.2 and abs(change.left_right_agreement) < 0.3


def test_scale_uniformity_across_layers_is_the_coefficient_of_variation():
    uniform = [compare(f"l{i}", *_known_case(16, 16 + i, c=1.2)[:2], layer=i, kind="q") for i in range(3)]
    varied = [compare(f"l{i}", *_known_case(16, 16 + i, c=c)[:2], layer=i, kind="v") for i, c in enumerate([1.0, 2.0])]
    by_kind = {s.kind: s for s in summarise(uniform + varied)}
    assert by_kind["q"].scale_mean == pytest.approx(1.2) and by_kind["q"].scale_cv == pytest.approx(0.0, abs=1e-10)
    assert by_kind["v"].scale_cv == pytest.approx(math.sqrt(0.5) / 1.5)  # sample std of (1, 2) over their mean
    assert by_kind["all"].layers == 5
    assert by_kind["q"].rotation_similarity == pytest.approx(1.0)  # every layer got the same R_U and R_V
    assert by_kind["q"].rotation_cv == pytest.approx(0.0, abs=1e-8)


def test_unrelated_rotations_across_layers_read_as_dissimilar():
    layers = [compare(f"l{i}", *_known_case(32, 32, c=1.0, rotation_seed=i)[:2], layer=i, kind="q") for i in range(4)]
    (summary,) = summarise(layers)
    assert abs(summary.rotation_similarity) < 0.15


def test_a_random_perturbation_scores_at_its_own_chance_level():
    w_b = torch.randn(48, 48, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    noise = torch.randn(48, 48, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    change = compare("m", w_b, w_b + 0.1 * noise, seed=5)
    rotation = (change.rotation_left + change.rotation_right) / 2
    assert rotation > 0.3  # a 10% random change already turns the singular vectors of a dense spectrum a lot
    assert rotation == pytest.approx(change.null_rotation, rel=0.15)
    assert change.left_right_agreement == pytest.approx(change.null_agreement, abs=0.05)


def test_interventions_on_the_known_case():
    w_b, w_t, _, _ = _known_case(24, 16, c=1.3)
    torch.testing.assert_close(rebuild("scaled_spectrum", w_b, w_t), w_t)  # S_t is exactly c·S_b
    torch.testing.assert_close(rebuild("no_rotation", w_b, w_t), 1.3 * w_b)
    torch.testing.assert_close(rebuild("base_spectrum", w_b, w_t), w_t / 1.3)
    scrambled = rebuild("random_rotation", w_b, w_t, torch.Generator().manual_seed(0))
    torch.testing.assert_close(svd(scrambled).S, svd(w_t).S)
    assert (scrambled - w_t).norm() > 0.5 * w_t.norm()
    with pytest.raises(ValueError, match="unknown experiment 'spin'"):
        rebuild("spin", w_b, w_t)


@pytest.fixture
def merged_lora():
    base = make_model("tiny-llama")
    wrapped = zoo.wrap(copy.deepcopy(base), "lora")
    perturb(wrapped)
    return base, zoo.merge(wrapped)


def test_merged_adapter_matrices_are_read_and_an_unmerged_wrapper_reads_the_same(merged_lora):
    base, wrapped = merged_lora
    changes = {c.name: c for c in analyse(base, wrapped.model)}
    assert len(changes) == 2 * 7  # q, k, v, o, gate, up, down in each of 2 layers
    moved = {n for n, c in changes.items() if c.relative_change > 0}
    assert moved == {f"model.layers.{i}.self_attn.{p}" for i in range(2) for p in ("q_proj", "v_proj")}
    assert changes["model.layers.0.self_attn.k_proj"].scale == pytest.approx(1.0)
    kinds = {k.kind: k.layers for k in summarise(list(changes.values()))}
    assert kinds == {"self_attn.q_proj": 2, "self_attn.v_proj": 2, "all": 4}  # untouched matrices say nothing about tuning
    assert [c.scale for c in analyse(base, wrapped)] == [c.scale for c in changes.values()]  # the zoo model itself reads the same
    q = wrapped.model.get_submodule("model.layers.0.self_attn.q_proj")
    assert type(q) is torch.nn.Linear  # merged: the base's own layer, holding the update
    merged = q.weight.double().clone()
    zoo.unmerge(wrapped)
    w, _ = linear_map(wrapped.model.get_submodule("model.layers.0.self_attn.q_proj"), 64)  # the wrapper, read off its outputs
    torch.testing.assert_close(w, merged, rtol=1e-5, atol=1e-6)


def test_a_head_only_adapter_is_read_through_its_own_wrapper(tmp_path):
    """closed_form_head nests the LM one wrapper deeper: its merged blocks are found, and none changed."""
    base, _ = load_model(ModelConfig("tiny-llama"))
    wrapped = zoo.wrap(copy.deepcopy(base), "closed_form_head", label_token_ids=[5, 6])
    perturb(wrapped)
    zoo.save_adapter(wrapped, tmp_path / "adapter")
    assert (
        main(["--base", "tiny-llama", "--adapter", str(tmp_path / "adapter"), "--out", str(tmp_path / "out"), "--n-eval", "8"])
        == 0
    )
    rows = list(csv.DictReader((tmp_path / "out" / "matrices.csv").open()))
    assert len(rows) == 14 and {float(r["relative_change"]) for r in rows} == {0.0}


def test_conv1d_weights_are_read_as_out_by_in():
    base = make_model("tiny-gpt2")
    tuned = copy.deepcopy(base)
    with torch.no_grad():
        tuned.transformer.h[1].attn.c_attn.weight.mul_(1.5)
    changes = {c.name: c for c in analyse(base, tuned)}
    attn = changes["transformer.h.1.attn.c_attn"]
    assert attn.shape == (192, 64) and attn.scale == pytest.approx(1.5) and attn.rotation_left < 1e-6
    assert changes["transformer.h.0.attn.c_attn"].relative_change == 0.0


def test_interventions_rebuild_only_what_tuning_changed(merged_lora):
    base, wrapped = merged_lora
    edited, rebuilt = apply_experiment(base, wrapped.model, "no_rotation")
    assert rebuilt == 4
    name = "model.layers.1.self_attn.q_proj"
    q = edited.get_submodule(name)
    assert type(q) is torch.nn.Linear  # a plain layer holding the rebuilt matrix
    expected = rebuild("no_rotation", base.get_submodule(name).weight.double(), wrapped.model.get_submodule(name).weight.double())
    torch.testing.assert_close(q.weight, expected.float())
    assert torch.equal(
        edited.get_submodule("model.layers.0.mlp.up_proj").weight, base.get_submodule("model.layers.0.mlp.up_proj").weight
    )
    ids = torch.tensor([[5, 6, 7]])
    assert not torch.allclose(edited(ids).logits, wrapped(ids).logits)  # the copy changed, the original did not
    torch.testing.assert_close(wrapped(ids).logits, zoo.unmerge(zoo.merge(wrapped))(ids).logits)


def test_cli_writes_tables_and_plots_for_a_merged_adapter(tmp_path, capsys):
    base, _ = load_model(ModelConfig("tiny-llama"))
    wrapped = zoo.wrap(base, "lora")
    perturb(wrapped)
    zoo.save_adapter(wrapped, tmp_path / "adapter")
    out = tmp_path / "out"
    code = main(
        [
            "--base",
            "tiny-llama",
            "--adapter",
            str(tmp_path / "adapter"),
            "--out",
            str(out),
            "--experiments",
            "scaled_spectrum,random_rotation",
            "--n-eval",
            "32",
        ]
    )
    assert code == 0
    assert "lora (merged) vs tiny-llama" in capsys.readouterr().out
    rows = list(csv.DictReader((out / "matrices.csv").open()))
    assert len(rows) == 14 and {r["kind"] for r in rows} >= {"self_attn.q_proj", "mlp.down_proj"}
    kinds = list(csv.DictReader((out / "kinds.csv").open()))
    assert {k["kind"] for k in kinds} >= {"self_attn.v_proj", "all"}
    text = (out / "structure.md").read_text()
    assert "| scaled_spectrum | 4 |" in text and "| random_rotation | 4 |" in text
    for png in ("structure.png", "experiments.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == [MANIFEST]  # no temporary files left behind


def test_cli_reads_a_full_fine_tune_folder(tmp_path):
    base, tokenizer = load_model(ModelConfig("tiny-llama"))
    tuned = copy.deepcopy(base)
    with torch.no_grad():
        tuned.model.layers[0].mlp.down_proj.weight.mul_(0.5)
    tuned.save_pretrained(tmp_path / "full")
    tokenizer.save_pretrained(tmp_path / "full")
    assert main(["--base", "tiny-llama", "--tuned", str(tmp_path / "full"), "--out", str(tmp_path / "out")]) == 0
    rows = {r["name"]: r for r in csv.DictReader((tmp_path / "out" / "matrices.csv").open())}
    assert float(rows["model.layers.0.mlp.down_proj"]["scale"]) == pytest.approx(0.5)
    assert float(rows["model.layers.1.mlp.down_proj"]["relative_change"]) == 0.0


def test_cli_errors_name_the_problem(tmp_path, capsys):
    assert main(["--base", "tiny-llama", "--adapter", str(tmp_path / "missing"), "--out", str(tmp_path / "out")]) == 2
    assert "lacks" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--base", "tiny-llama", "--adapter", str(tmp_path), "--experiments", "spin"])
    assert "unknown experiment(s) ['spin']" in capsys.readouterr().err


def test_no_block_change_runs_no_intervention(tmp_path):
    """An adapter that leaves every block matrix alone (a head-only method) gets the analysis but no task scoring."""
    base, tokenizer = load_model(ModelConfig("tiny-llama"))
    result = run_analysis(base, copy.deepcopy(base), tmp_path / "out", "unchanged", ["scaled_spectrum"], tokenizer)
    assert result["kinds"] == [] and result["experiments"] == []
    assert (tmp_path / "out" / "structure.md").is_file()
