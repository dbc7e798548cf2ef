"""The two tiers of zoo's tests: what ``python -m pytest -q`` runs, and what only ``--full`` adds.

The default tier runs every test but the repetitions of two matrices. The contract checks run for
every built-in method on :data:`DEFAULT_FAMILIES` and for the bridged peft tuners of
:data:`BRIDGED_SAMPLE` on the same families; a test parametrised over methods (runs on saved
folders, formulations, generation, the bridge's own checks) runs the built-in methods and that
sample. ``python -m pytest -q --full -n 2`` adds every method on every tiny family and every other
bridged tuner, and the end-to-end variants marked ``full`` (tests/conftest.py deselects what is
marked ``full`` without ``--full``). tests/test_tiers.py checks that the default tier keeps
covering every built-in method on at least three families, one of them an encoder, and that the
sample keeps covering every kind of bridged tuner, so a new method or tuner cannot drop out unseen. The benchmark
scripts' end-to-end tests run :data:`END_TO_END_SAMPLE` of zoo's methods by default (``--methods``), every one with
``--full``.
"""

from __future__ import annotations

import pytest

import zoo
from zoo.peft_bridge.tuners import BRIDGED, Tuner

DEFAULT_FAMILIES = ("tiny-llama", "tiny-gpt2", "tiny-bert", "tiny-phi3")
"""The families every built-in method is checked on by default, each for the shape of model it stands for:

- tiny-llama: separate q/k/v ``nn.Linear`` projections, grouped-query attention and rotary positions (the Llama,
  Mistral, Qwen, Gemma, OLMo line), and the default run's model;
- tiny-gpt2: GPT-2's ``Conv1D`` maps (transposed weights) with q/k/v fused in one map, learned absolute positions;
- tiny-bert: an encoder (no cache, no generate): a decoder-only method is checked to refuse it;
- tiny-phi3: q/k/v fused in one ``nn.Linear`` of grouped-query widths and a fused gate/up projection, the roles
  that return tuples of slices.
"""

BRIDGED_SAMPLE = (
    "peft_dora",  # a LoRA variant: peft's LORA type with a preset switch; Conv1D from a peft release on
    "peft_loha",  # a product of low-rank factors (LoKr alike); nn.Linear only, so GPT-2 is checked to be refused
    "peft_oft",  # a multiplicative orthogonal rotation of W (BOFT, HRA, RoAd alike)
    "peft_vera",  # frozen shared random bases with trained vectors (RandLoRA, PVeRA, TinyLoRA alike); Conv1D too
    "peft_vblora",  # factors mixed from one trained shared bank (UniLoRA alike): random at init, a changed peft default
    "peft_fourierft",  # an update trained in a transform's coefficients (WaveFT, C3A alike): not identity at init
    "peft_shira",  # a sparse update on a fixed mask (SuperTuning alike): a seed zoo sets for peft
    "peft_ln_tuning",  # copies of the norms, not the projections: the other placement
    "peft_beft",  # trained biases: not mergeable on bias-free projections
    "peft_osf",  # W rebuilt from its SVD, a subspace of it trained: neither identity at init nor mergeable
)
"""The bridged tuners checked by default: one of each kind of peft tuner, which between them take every value of
every flag a :class:`~zoo.peft_bridge.tuners.Tuner` declares (see :func:`tuner_kind`)."""

END_TO_END_SAMPLE = ("ia3", "closed_form_head")
"""zoo's methods the default tier's benchmark runs (the smoke suite, its search, their resumes) run, ``--full`` every one:
a method trained by gradient steps at a searched learning rate, and the gradient-free one, whose search is over its ridge
instead of a rate: the two paths a method takes through the search and the suite."""

FULL = pytest.mark.full
BRIDGED_NAMES = frozenset(t.name for t in BRIDGED)


def tuner_kind(tuner: Tuner) -> dict[str, object]:
    """What the bridge does differently for ``tuner``: each value of each of these must be in the default tier."""
    return {
        "LoRA variant": tuner.peft_type == "LORA",
        "placement": tuner.placement,
        "identity_at_init": tuner.identity_at_init,
        "mergeable": tuner.mergeable,
        "conv1d": tuner.conv1d if isinstance(tuner.conv1d, bool) else "from a peft release",
        "changed defaults": bool(tuner.defaults),
    }


def in_default_tier(method: str, family: str | None = None) -> bool:
    """Whether the contract cell ``(method, family)`` (or any of the bridged ``method``'s tests) runs by default."""
    if method in BRIDGED_NAMES and method not in BRIDGED_SAMPLE:
        return False
    return family is None or family in DEFAULT_FAMILIES


def contract_marks(method: str, family: str) -> list[pytest.MarkDecorator]:
    """The marks of a contract cell: ``full`` outside the default tier."""
    return [] if in_default_tier(method, family) else [FULL]


def end_to_end_methods(config: pytest.Config) -> list[str]:
    """zoo's own methods a benchmark run of the tests runs: every one under ``--full``, else :data:`END_TO_END_SAMPLE`."""
    own = [m for m in zoo.list_methods() if m not in BRIDGED_NAMES]
    return own if config.getoption("--full") else [m for m in own if m in END_TO_END_SAMPLE]


def method_params(names: list[str]) -> list:
    """``names`` as the params of a test parametrised over methods: a bridged tuner outside the sample marked ``full``."""
    return [pytest.param(name, marks=[] if in_default_tier(name) else [FULL]) for name in names]
