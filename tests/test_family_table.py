"""The family × method tables of docs/models.md and docs/peft-bridge.md are the ones benchmarks/family_table.py generates
from the contract tests."""

from __future__ import annotations

import pytest

from benchmarks import family_table


def test_models_page_table_is_the_generated_one():
    assert family_table.page_block() == family_table.table(family_table.planned())
    assert family_table.main(["--check"]) == 0


def test_bridge_page_table_is_the_generated_one():
    if not family_table.bridge_comparable():  # CI's lowest-versions job: peft 0.19 has fewer tuners to bridge
        pytest.skip(
            f"docs/peft-bridge.md's table was generated with another peft than the installed {family_table.peft.__version__}"
        )
    assert family_table.page_block(bridge=True) == family_table.table(family_table.planned(), bridge=True)


def test_cells_follow_the_contract_parametrisation():
    cells = family_table.planned()
    rows = [line for line in family_table.table(cells).splitlines() if line.startswith("| tiny-")]
    assert len(rows) == 16
    assert cells["lora", "tiny-gemma3"] == cells["ia3", "tiny-gpt-neox"] == cells["llama_adapter", "tiny-phi3"] == "✓"
    assert cells["llama_adapter", "tiny-bert"] == cells["closed_form_head", "tiny-modernbert"] == "—"
    assert cells["prefix_tuning", "tiny-deberta-v2"] == "—"  # declares uses_cache, and DeBERTa-v2 takes no cache
    # the optimiser recipes: LoRA+ wherever LoRA goes, GaLore wherever full fine-tuning goes (all 16 families)
    assert all(
        cells["lora_plus", k] == cells["lora", k] == "✓" and cells["galore", k] == cells["full_finetune", k] == "✓"
        for k in family_table.TINY_FAMILIES
    )
    assert "`lora_plus`" in family_table.table(
        cells
    ) and "under its own optimiser too where it declares one" in family_table.table(cells)
    assert cells["loreft", "tiny-gemma2"] == cells["loreft", "tiny-opt"] == "✓"
    assert cells["loreft", "tiny-bert"] == cells["loreft", "tiny-modernbert"] == "—"  # declares model_kinds=('causal_lm',)
    assert cells["peft_vera", "tiny-gpt2"] == cells["peft_boft", "tiny-qwen3"] == "✓"
    assert cells["peft_boft", "tiny-gpt2"] == cells["peft_dora", "tiny-bert"] == "—"  # Conv1D; an encoder
    bridge = family_table.table(cells, bridge=True)
    assert "`peft_dora`" in bridge and "`lora`" not in bridge and "`peft_dora`" not in family_table.table(cells)
    assert (
        "`peft_boft`, `peft_c3a`" in bridge
        and "declare `refuses`: they support nn.Linear projections only, not the GPT-2-style" in bridge
    )


def test_a_stale_page_is_reported(tmp_path, monkeypatch, capsys):
    models, bridge = tmp_path / "models.md", tmp_path / "peft-bridge.md"
    models.write_text(f"intro\n{family_table.BEGIN}\nold\n{family_table.END}\nrest\n")
    bridge.write_text(f"{family_table.BRIDGE_BEGIN}\nold\n{family_table.BRIDGE_END}\n")
    monkeypatch.setattr(family_table, "MODELS_PAGE", models)
    monkeypatch.setattr(family_table, "BRIDGE_PAGE", bridge)
    assert family_table.main(["--check"]) == 1
    family_table.write_into(models, family_table.table(family_table.planned()))
    capsys.readouterr()
    assert family_table.main(["--check"]) == 1  # the bridge's table is still stale
    assert "family table differs in peft-bridge.md" in capsys.readouterr().out
    family_table.write_into(bridge, family_table.table(family_table.planned(), bridge=True))
    assert models.read_text().startswith("intro\n") and models.read_text().endswith("\nrest\n")
    assert family_table.main(["--check"]) == 0
    (tmp_path / "plain.md").write_text("no markers\n")
    with pytest.raises(ValueError, match="has no <!-- family-table --> ... <!-- /family-table --> markers"):
        family_table.write_into(tmp_path / "plain.md", "")
