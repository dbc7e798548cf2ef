"""docs/plugins/roles.md is the page benchmarks/roles_page.py generates from zoo.models.arch: it cannot drift from the code."""
from __future__ import annotations

import pytest

from benchmarks import roles_page
from zoo.models import arch
from zoo.models.arch import ROLE_NAMES


def test_the_committed_page_is_the_generated_one():
    assert roles_page.PAGE.read_text() == roles_page.render(), "docs/plugins/roles.md is stale: run python -m benchmarks.roles_page"
    assert roles_page.main(["--check"]) == 0


def test_the_page_lists_every_role_with_its_type_and_each_family_with_its_tuples():
    page = roles_page.render()
    assert all(f"| `{role}` |" in page for role in ROLE_NAMES)
    assert "| `ff_in` | `tuple[str, ...]` | the feed-forward input projections. |" in page
    assert "| `query` | `str` or `None` | the query projection. |" in page
    # gated: gate and up apart (Llama), or one fused projection (Phi-3); fused q/k/v: one path for the three roles
    assert "| tiny-llama | LlamaForCausalLM | `model.layers` | `self_attn.q_proj` |" in page
    assert "`('mlp.gate_proj', 'mlp.up_proj')`" in page and "`('mlp.gate_up_proj',)`" in page
    assert "| tiny-phi3 | Phi3ForCausalLM | `model.layers` | `self_attn.qkv_proj` | `self_attn.qkv_proj` | `self_attn.qkv_proj` |" in page


def test_a_change_in_the_code_makes_the_committed_page_stale(tmp_path, monkeypatch):
    monkeypatch.setitem(arch.ROLE_DESCRIPTIONS, "ff_out", "the feed-forward down projection")
    assert roles_page.main(["--check"]) == 1
    monkeypatch.setattr(roles_page, "PAGE", tmp_path / "roles.md")
    assert roles_page.main([]) == 0 and "| `ff_out` | `str` or `None` | the feed-forward down projection. |" in (tmp_path / "roles.md").read_text()


def test_a_bar_in_a_docstring_is_refused_as_it_would_split_a_table_cell():
    assert roles_page.markdown("the :class:`~zoo.models.arch.Roles` of ``model``") == "the `Roles` of `model`"
    with pytest.raises(ValueError, match=r"'\[q \| k\]' holds a '\|', which would split its table cell"):
        roles_page.markdown("[q | k]")
