"""docs/plugins/roles.md is the page docs.gen.roles generates from zoo.models.arch: it cannot drift from the code."""

from __future__ import annotations

import pytest

from docs.gen import roles
from docs.gen.__main__ import stale
from zoo.models import arch
from zoo.models.arch import ROLE_NAMES


def test_the_committed_page_is_the_generated_one():
    assert stale({roles.PAGE: roles.page()}) == [], "docs/plugins/roles.md is stale: run python -m docs.gen"


def test_the_page_lists_every_role_with_its_type_and_each_family_with_its_tuples():
    page = roles.page()
    assert all(f"| `{role}` |" in page for role in ROLE_NAMES)
    assert "| `ff_in` | `tuple[str, ...]` | the feed-forward input projections. |" in page
    assert "| `query` | `str` or `None` | the query projection. |" in page
    # gated: gate and up apart (Llama), or one fused projection (Phi-3); fused q/k/v: one path for the three roles
    assert "| tiny-llama | LlamaForCausalLM | `model.layers` | `self_attn.q_proj` |" in page
    assert "`('mlp.gate_proj', 'mlp.up_proj')`" in page and "`('mlp.gate_up_proj',)`" in page
    assert (
        "| tiny-phi3 | Phi3ForCausalLM | `model.layers` | `self_attn.qkv_proj` | `self_attn.qkv_proj` | `self_attn.qkv_proj` |"
        in page
    )


def test_a_change_in_the_code_makes_the_committed_page_stale(monkeypatch):
    monkeypatch.setitem(arch.ROLE_DESCRIPTIONS, "ff_out", "the feed-forward down projection")
    page = roles.page()
    assert "| `ff_out` | `str` or `None` | the feed-forward down projection. |" in page
    assert stale({roles.PAGE: page}) == ["docs/plugins/roles.md"]


def test_a_bar_in_a_docstring_is_refused_as_it_would_split_a_table_cell():
    assert roles.markdown("the :class:`Roles` of ``model``") == "the `Roles` of `model`"
    with pytest.raises(ValueError, match=r"'\[q \| k\]' holds a '\|', which would split its table cell"):
        roles.markdown("[q | k]")
