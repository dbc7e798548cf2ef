"""Which peft tuners the bridge registers, how, and why the others are left out.

:data:`BRIDGED` lists one :class:`Tuner` per zoo method; :data:`UNBRIDGED` gives, for every
other peft type, the reason it does not fit zoo's method contract. Between them they name
every peft type of the installed peft (tests/test_peft_bridge.py checks it), so a new peft
release that adds a tuner fails that test until the tuner is placed in one of them.

Capability flags are what peft's tuners do, measured on the tiny families (and checked for
every registered method by tests/test_contract.py): ``identity_at_init`` is False where peft
initialises the update at random by default (FourierFT's spectrum, UniLoRA's and VB-LoRA's
vector banks) or rebuilds W from its SVD, equal to the base only up to rounding (OSF); ``mergeable`` is False where peft's layer cannot fold itself into the base
weight and back (OSF cannot unmerge; BEFT's merge needs a bias the
projections of most models lack);
``conv1d`` is False where peft's layer takes ``nn.Linear`` only (or, for OLoRA, where its
initialisation does not handle a transposed weight), so a model whose projections are GPT-2
``Conv1D`` maps is refused with that reason.

``defaults`` change a peft default that cannot fit a small projection (VB-LoRA's 256-long
vectors do not divide a 16-wide map) or that is not reproducible (SHiRA's random mask without a
seed could not be rebuilt on load); each is named in the method's config docstring.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Tuner:
    """One bridged method: the peft type it builds and what zoo declares about it."""

    name: str
    peft_type: str
    summary: str
    preset: dict[str, Any] = field(default_factory=dict)
    """peft config values the method pins (a LoRA variant's switch); not fields of its zoo config."""
    defaults: dict[str, Any] = field(default_factory=dict)
    """peft defaults zoo replaces (still fields of its config)."""
    placement: str = "query_value"
    """Default targets from the model's roles: ``query_value`` (the LoRA paper's) or ``norms`` (every block's norms)."""
    identity_at_init: bool = True
    mergeable: bool = True
    conv1d: bool | str = False
    """Whether peft's layer handles GPT-2's ``Conv1D``; a version string: from that peft release on."""
    learning_rate: float = 5e-3


_SMALL = {"vector_length": 16}
BRIDGED: tuple[Tuner, ...] = (
    Tuner(
        "peft_dora",
        "LORA",
        "DoRA (Liu et al. 2024): LoRA on the direction, a learned magnitude per output.",
        preset={"use_dora": True},
        conv1d="0.21.0",
    ),  # before it, unmerging DoRA on Conv1D fails (weight not transposed)
    Tuner(
        "peft_rslora",
        "LORA",
        "rsLoRA (Kalajdzievski 2023): LoRA scaled by alpha/sqrt(r) instead of alpha/r.",
        preset={"use_rslora": True},
        conv1d=True,
    ),
    Tuner(
        "peft_pissa",
        "LORA",
        "PiSSA (Meng et al. 2024): LoRA initialised on the principal singular vectors; W keeps the rest.",
        preset={"init_lora_weights": "pissa"},
        conv1d=True,
    ),
    Tuner(
        "peft_olora",
        "LORA",
        "OLoRA (Büyükakyüz 2024): LoRA initialised from a QR decomposition of W.",
        preset={"init_lora_weights": "olora"},
    ),  # its QR initialisation does not transpose Conv1D's weight
    Tuner("peft_loha", "LOHA", "LoHa (Hyeon-Woo et al. 2022): a Hadamard product of two low-rank updates."),
    Tuner("peft_lokr", "LOKR", "LoKr (Yeh et al. 2024): a Kronecker product update."),
    Tuner("peft_oft", "OFT", "OFT (Qiu et al. 2023): a block-diagonal orthogonal rotation of W's input."),
    Tuner("peft_boft", "BOFT", "BOFT (Liu et al. 2024): orthogonal rotations in butterfly factorisation."),
    Tuner("peft_hra", "HRA", "HRA (Yuan et al. 2024): a chain of Householder reflections of W."),
    Tuner(
        "peft_vera",
        "VERA",
        "VeRA (Kopiczko et al. 2024): frozen shared random low-rank maps, trained scaling vectors.",
        conv1d=True,
    ),
    Tuner(
        "peft_fourierft",
        "FOURIERFT",
        "FourierFT (Gao et al. 2024): the update's spectrum on a few random frequencies.",
        identity_at_init=False,
        conv1d=True,
    ),
    Tuner(
        "peft_vblora",
        "VBLORA",
        "VB-LoRA (Li et al. 2024): low-rank factors mixed from one shared vector bank.",
        defaults=_SMALL,
        identity_at_init=False,
        conv1d=True,
    ),
    Tuner(
        "peft_shira",
        "SHIRA",
        "SHiRA (Bhardwaj et al. 2024): a sparse high-rank update on a fixed random mask.",
        defaults={"r": 4, "random_seed": 0},
    ),
    Tuner(
        "peft_ln_tuning",
        "LN_TUNING",
        "LN tuning (Zhao et al. 2023): train copies of the layer norms only.",
        placement="norms",
        conv1d=True,
    ),
    Tuner("peft_miss", "MISS", "MiSS (formerly Bone, arXiv:2409.15371): shards of W updated by one shared trainable block."),
    Tuner(
        "peft_randlora",
        "RANDLORA",
        "RandLoRA: full-rank updates from frozen shared random bases and trained scalings.",
        conv1d=True,
    ),
    Tuner("peft_road", "ROAD", "RoAd: learned 2D rotations of the output features of W.", defaults={"group_size": 16}),
    Tuner(
        "peft_c3a",
        "C3A",
        "C3A (arXiv:2407.19342): block-circulant updates computed by FFT.",
        defaults={"block_size": 16},
        identity_at_init=False,
    ),
    Tuner(
        "peft_waveft",
        "WAVEFT",
        "WaveFT: the update trained as a sparse set of wavelet coefficients.",
        defaults={"n_frequency": 256},
        conv1d=True,
    ),
    Tuner("peft_delora", "DELORA", "DeLoRA (arXiv:2503.18225): LoRA decoupling angle and strength, with a bounded-norm update."),
    Tuner(
        "peft_unilora",
        "UNILORA",
        "UniLoRA (arXiv:2506.00799): every LoRA factor drawn from one shared trainable vector.",
        identity_at_init=False,
        conv1d=True,
    ),
    Tuner(
        "peft_tinylora",
        "TINYLORA",
        "TinyLoRA (arXiv:2602.04118): a tiny trainable vector projected through fixed random tensors on W's SVD.",
        conv1d=True,
    ),
    Tuner("peft_gralora", "GRALORA", "GraLoRA: LoRA on a grid of sub-blocks of W.", conv1d=True),
    Tuner("peft_hira", "HIRA", "HiRA (openreview TwJrTz9cRS): a Hadamard product of W with a low-rank update.", conv1d=True),
    Tuner("peft_pvera", "PVERA", "PVeRA (arXiv:2512.07703): VeRA with probabilistic scaling vectors.", conv1d=True),
    Tuner(
        "peft_deft",
        "DEFT",
        "DEFT: a learned low-rank subspace of W projected out and replaced by a trained injection.",
        conv1d=True,
    ),
    Tuner(
        "peft_frod",
        "FROD",
        "FRoD: a joint decomposition of all targeted layers, sparse trained updates on shared factors.",
        defaults={"progressbar": False},
        conv1d=True,
    ),
    Tuner("peft_glora", "GLORA", "GLoRA: generalised LoRA, low-rank or vector scale, shift and prompt terms on W and its bias."),
    Tuner("peft_peanut", "PEANUT", "PEANuT: a small trained network of W's input producing the update."),
    Tuner("peft_psoft", "PSOFT", "PSOFT: orthogonal fine-tuning inside W's principal subspace.", defaults={"r": 8}),
    Tuner("peft_supertuning", "SUPERTUNING", "SuperTuning: a sparse update on W's entries selected before training."),
    Tuner("peft_beft", "BEFT", "BEFT: bias tuning, a trained bias added to each targeted projection.", mergeable=False),
    Tuner(
        "peft_osf",
        "OSF",
        "OSF: orthogonal subspace fine-tuning; W's low singular subspace trains, its gradient projected off the top one.",
        identity_at_init=False,
        mergeable=False,
    ),  # W rebuilt from its SVD: the base only up to rounding (1.1e-6 seen)
)
"""The bridged methods, one per peft tuner (LoRA: per variant)."""

UNBRIDGED: dict[str, str] = {
    "LORA": "zoo's own method `lora` (peft is its numerical oracle); the LoRA variants are bridged as peft_dora, "
    "peft_rslora, peft_pissa and peft_olora",
    "IA3": "zoo's own method `ia3`",
    "PROMPT_TUNING": "prompt learning, zoo's own method `prompt_tuning`",
    "P_TUNING": "prompt learning, zoo's own method `p_tuning`",
    "PREFIX_TUNING": "prompt learning, zoo's own method `prefix_tuning`",
    "ADAPTION_PROMPT": "zoo's own method `llama_adapter`",
    "MULTITASK_PROMPT_TUNING": "prompt learning across tasks: needs per-example task ids and a source-task prompt",
    "CPT": "context-aware prompt tuning: needs its token-type mask built from the task's examples, and its own loss",
    "CARTRIDGE": "a KV-cache prefix trained by self-study distillation from a corpus: a special trainer",
    "ADALORA": "its rank budget is reallocated by `update_and_allocate(step)` every training step: a trainer hook "
    "zoo's method-agnostic loop does not call (without it it is a fixed-rank SVD-parametrised LoRA)",
    "ADAMSS": "needs scikit-learn (not a zoo dependency) for its subspace clustering, and its adaptive subspace allocation "
    "runs from a transformers Trainer callback (asa_callback) that zoo's loop does not call",
    "POLY": "multi-task routing: every batch must carry task ids",
    "XLORA": "a mixture of already trained LoRA experts: needs their adapters to load",
    "TRAINABLE_TOKENS": "trains chosen rows of the embedding; needs the token ids to train, which are task data",
    "SHADOW": "fails in peft 0.21.2 on every tiny family ('ShadowCarrier' object has no attribute 'view')",
    "PACA": "PaCA (new in peft 0.22.0: r chosen input columns of each weight train) is not bridged yet: it takes "
    "nn.Linear layers only, so GPT-2's Conv1D families would need refusing, and it has not been through zoo's contract",
    "LILY": "peft 0.21.2's Lily gives other logits for a token decoded with the key/value cache than for the same token "
    "in a full forward pass (0.059 apart on tiny-llama), so its generate disagrees with its own forward",
}
"""Every other peft type and why it is not bridged."""
