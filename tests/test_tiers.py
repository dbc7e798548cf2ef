"""The default tier keeps covering what it promises (tests/tiers.py): a new method or tuner cannot drop out unseen.

The contract module is collected as ``python -m pytest -q`` collects it, in a subprocess, and its
test ids are read back: every built-in method is checked on at least three families, an encoder
among them, and every kind of bridged tuner is in the sample; ``--full`` would run every pair.
"""

from __future__ import annotations

import functools
import os
import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

from tiers import BRIDGED_NAMES, BRIDGED_SAMPLE, DEFAULT_FAMILIES, tuner_kind

import zoo
import zoo.testing.contract as contract
from zoo.models.tiny import TINY_FAMILIES, is_causal
from zoo.peft_bridge.tuners import BRIDGED
from zoo.testing.cells import selected
from zoo.testing.models import make_model

ROOT = Path(__file__).parents[1]
CHECKS = {name: check.zoo_contract_cells[0] for name, check in vars(contract).items() if hasattr(check, "zoo_contract_cells")}
"""Each contract check and the cells it runs on (zoo.testing.cells.runs_on)."""
SUPPORTED_CHECKS = {name for name, cells in CHECKS.items() if cells == "supported"}
"""The contract checks every supported (method, family) pair gets."""


@functools.cache
def _default_tier() -> tuple[dict[str, dict[str, set[str]]], str]:
    """The default tier's contract cells, ``{method: {family: {check, ...}}}``, and pytest's summary line."""
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_ADDOPTS"}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--collect-only",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:xdist",
            "tests/test_contract.py",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    cells: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for check, method, family in re.findall(
        r"^tests/test_contract\.py::(\w+)\[(\w+)-(tiny-[\w-]+)\]$", done.stdout, re.MULTILINE
    ):
        cells[method][family].add(check)
    return cells, done.stdout.strip().splitlines()[-1]


def test_every_built_in_method_is_checked_on_three_families_an_encoder_among_them():
    cells, _ = _default_tier()
    built_in = [m for m in zoo.list_methods() if zoo.get_method(m).source == "zoo" and m not in BRIDGED_NAMES]
    assert len(built_in) >= 10
    for method in built_in:
        families = cells[method]
        supported = [family for family, checks in families.items() if SUPPORTED_CHECKS <= checks]
        assert len(supported) >= 3, f"{method}: the default tier checks it on {supported} only"
        encoders = [family for family in families if not is_causal(family)]
        assert encoders, f"{method}: no encoder in the default tier ({sorted(families)}); a refusal would count"


def test_the_default_families_are_an_encoder_a_llama_a_conv1d_and_a_fused_qkv_decoder():
    assert set(DEFAULT_FAMILIES) <= set(TINY_FAMILIES) and not is_causal("tiny-bert")
    names = {family: {name for name, _ in make_model(family).named_modules()} for family in DEFAULT_FAMILIES}
    assert any(name.endswith("attn.c_attn") for name in names["tiny-gpt2"])  # GPT-2's fused Conv1D
    assert any(name.endswith("self_attn.qkv_proj") for name in names["tiny-phi3"])  # a fused nn.Linear
    assert any(name.endswith("self_attn.q_proj") for name in names["tiny-llama"])


def test_the_bridged_sample_takes_every_value_of_every_flag_a_tuner_declares():
    assert set(BRIDGED_SAMPLE) <= BRIDGED_NAMES and len(set(BRIDGED_SAMPLE)) == len(BRIDGED_SAMPLE)
    sample = [t for t in BRIDGED if t.name in BRIDGED_SAMPLE]
    for flag in tuner_kind(BRIDGED[0]):
        everywhere = {repr(tuner_kind(t)[flag]) for t in BRIDGED}
        sampled = {repr(tuner_kind(t)[flag]) for t in sample}
        assert sampled == everywhere, f"no sampled tuner has {flag} = {sorted(everywhere - sampled)}: add one to BRIDGED_SAMPLE"


def test_the_sample_runs_by_default_and_the_other_tuners_only_in_the_full_tier():
    cells, summary = _default_tier()
    bridged_run = {method for method in cells if method in BRIDGED_NAMES}
    installed = {m for m in BRIDGED_SAMPLE if m in zoo.list_methods()}  # an older peft lacks some tuners (BEFT before 0.20)
    assert bridged_run == installed and len(installed) >= len(BRIDGED_SAMPLE) - 1
    assert all(set(cells[m]) == set(DEFAULT_FAMILIES) for m in installed)
    every = sum(len(selected(which, zoo.list_methods(), TINY_FAMILIES)) for which in CHECKS.values())
    run = sum(len(checks) for families in cells.values() for checks in families.values())
    assert re.match(rf"{run}/{every} tests collected \({every - run} deselected\)", summary), summary
