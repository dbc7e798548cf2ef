"""The base-model fingerprint tells apart any two models whose weights differ in any value: a swapped or changed
row of any weight matrix, a sum-preserving edit. Adapters and exports recorded with the older, sampled
fingerprint still load onto their base model, with a warning."""

from __future__ import annotations

import json
import logging

import pytest
import torch
from conftest import make_model

import zoo
from benchmarks import fingerprint_cost
from zoo.fingerprint import fingerprint, sampled_weights_fingerprint
from zoo.io.adapter_io import config_checksum
from zoo.io.export_dir import MARKER
from zoo.io.peft_interchange import export_peft

Q = "model.layers.0.self_attn.q_proj.weight"


def _edited(edit) -> torch.nn.Module:
    model = make_model("tiny-llama")
    with torch.no_grad():
        edit(dict(model.named_parameters()))
    return model


def _swap_rows(params, name: str, i: int, j: int) -> None:
    weight = params[name]
    weight[[i, j]] = weight[[j, i]]


def _sum_preserving(params, name: str) -> None:
    flat = params[name].view(-1)
    flat[100] += 0.25  # past the 16 values the sampled fingerprint reads; the sum stays as it was
    flat[200] -= 0.25


@pytest.mark.parametrize(
    "edit",
    [lambda p: _swap_rows(p, Q, 10, 20), lambda p: _sum_preserving(p, Q)],
    ids=["swapped-q_proj-rows", "sum-preserving-edit"],
)
def test_an_adapter_is_refused_on_a_base_whose_weights_differ_in_a_way_sampling_misses(edit, tmp_path):
    base, other = make_model("tiny-llama"), _edited(edit)
    assert sampled_weights_fingerprint(other) == sampled_weights_fingerprint(base)  # what the older scheme saw
    zoo.save_adapter(zoo.wrap(base, "lora", r=2), tmp_path / "adapter")
    with pytest.raises(ValueError, match="was saved for another base model"):
        zoo.load_adapter(other, tmp_path / "adapter")


def test_every_row_of_every_weight_matrix_counts():
    """Swapping the first and last rows, or changing one value of the last row, of any matrix changes the fingerprint."""
    base = make_model("tiny-llama")
    expected = fingerprint(base)
    matrices = [name for name, p in base.named_parameters() if p.dim() == 2]
    assert len(matrices) > 10
    for name in matrices:
        rows = base.get_parameter(name).shape[0]
        assert fingerprint(_edited(lambda p, n=name, r=rows: _swap_rows(p, n, 0, r - 1))) != expected, name
        assert fingerprint(_edited(lambda p, n=name: p[n][-1, -1].add_(1e-6))) != expected, name
    assert fingerprint(make_model("tiny-llama")) == expected  # and an unchanged copy keeps it


def test_an_adapter_saved_with_the_sampled_fingerprint_still_loads_with_a_warning(tmp_path, caplog):
    """A format 2 folder (saved before every byte counted) is checked with the fingerprint it recorded."""
    folder = zoo.save_adapter(zoo.wrap(make_model("tiny-llama"), "lora", r=2), tmp_path / "adapter")
    meta = json.loads((folder / "adapter_config.json").read_text())
    assert meta["format"] == 3
    meta.pop("config_sha256")
    meta.update(format=2, base_fingerprint=fingerprint(make_model("tiny-llama"), version=1))
    (folder / "adapter_config.json").write_text(json.dumps({**meta, "config_sha256": config_checksum(meta)}))
    with caplog.at_level(logging.WARNING, logger="zoo.io.adapter_io"):
        zoo.load_adapter(make_model("tiny-llama"), folder)
    assert "old format 2: the base model is compared by 16 values and the sum of each tensor" in caplog.text
    with pytest.raises(ValueError, match="was saved for another base model"):
        zoo.load_adapter(make_model("tiny-llama", seed=1), folder)


def test_a_peft_export_recorded_with_the_sampled_fingerprint_still_imports(tmp_path):
    folder = export_peft(zoo.wrap(make_model("tiny-llama"), "lora", r=2), tmp_path / "peft")
    record = json.loads((folder / MARKER).read_text())
    assert record["fingerprint_version"] == 2
    del record["fingerprint_version"]
    record["base_fingerprint"] = fingerprint(make_model("tiny-llama"), version=1)
    (folder / MARKER).write_text(json.dumps(record))
    assert zoo.load_adapter(make_model("tiny-llama"), folder).method == "lora"
    with pytest.raises(ValueError, match="exported by zoo from another base model"):
        zoo.load_adapter(make_model("tiny-llama", seed=1), folder)
    (folder / MARKER).write_text(json.dumps({**record, "fingerprint_version": 9}))
    with pytest.raises(ValueError, match="fingerprint scheme 9; this zoo knows schemes 1 and 2"):
        zoo.load_adapter(make_model("tiny-llama"), folder)


def test_the_cost_script_measures_both_schemes():
    """benchmarks/fingerprint_cost.py, which measured the cost zoo.fingerprint states, on one layer of SmolLM2-135M's widths."""
    found = fingerprint_cost.measure(layers=1)
    assert found["parameters"] == 49152 * 576 + 576 * 576 * 2 + 576 * 192 * 2 + 3 * 576 * 1536 + 2 * 576 + 576
    assert found["bytes_seconds"] > 0 and found["sampled_seconds"] > 0
