"""P-tuning (Liu et al., 2021, "GPT Understands, Too", arXiv:2103.10385).

The virtual tokens are not trained directly: trainable input embeddings ``E`` pass through
a prompt encoder whose output is prepended to the input embeddings::

    E (P, d) ──► biLSTM ──► (P, 2h) ──► Linear·ReLU·Linear ──► V (P, d) ──┐    encoder "lstm"
    E (P, d) ──► Linear·ReLU·Linear·ReLU·Linear ─────────────► V (P, d) ──┤    encoder "mlp"
                                                                         concat ──► frozen model
    E[x] (T, d) frozen ─────────────────────────────────────────────────┘

``E`` and the encoder train; the base model stays frozen. The encoder makes the virtual tokens
depend on each other (the paper's answer to their "discreteness" and "association" problems)
and holds most of the trainable parameters; after training only its ``(P, d)`` output matters. The layouts are those of the paper and of peft's
``PromptEncoder`` (the "mlp" variant has three linear layers, as peft's). In eval mode under
``torch.no_grad`` the encoder's output is cached until a parameter changes in place (tracked
by the tensors' version counters: write through ``.data`` and the cache goes stale).

The paper keeps the anchor tokens of a template discrete and puts virtual tokens around
them. zoo's tasks render the template text themselves, so here the virtual tokens are all
prepended before the templated input and the template's words stay real tokens.
Prepending, masks, labels, positions, generation and output shapes are shared with prompt
tuning and documented in :mod:`zoo.methods._virtual_tokens`.

Defaults follow the paper and peft's examples rather than a tuning run: a 2-layer biLSTM of
the model's width (peft defaults to the MLP), 10 tokens with inputs sampled from the
vocabulary, lr 3e-3 (peft's examples use 1e-3). On a random tiny model no setting got above
0.55 (both encoders, lr 1e-3 to 1e-2); on the default (pretrained) tiny-llama, seeds 0-2 reach
0.672 ± 0.150 from 0.512 zero-shot (``benchmarks/results/default_task/RESULTS.md``, ``python -m benchmarks.suite --profile default``): 0.738 and 0.777, but seed 1 collapses
to one class (0.500), an instability of the LSTM encoder at this learning rate that is not yet resolved.

peft's format (``PeftFormat("P_TUNING")``): peft saves one tensor, ``prompt_embeddings``, the prompt encoder's
*output* (its folders hold no encoder weights; it loads them for inference only). So an export writes the encoder's
output, and a peft P-tuning adapter imports as zoo's ``prompt_tuning`` with those embeddings: the same outputs, and a
soft prompt to train further. The encoder settings an export writes only describe how it was trained.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from zoo.method import MethodConfig
from zoo.methods._virtual_tokens import VirtualTokenModel
from zoo.methods.prompt_tuning import import_virtual_tokens, peft_prompt_config, virtual_tokens
from zoo.peft_format import PROMPT, PeftAdapter, PeftFormat
from zoo.registry import register
from zoo.runtime.typed_fields import check_seed

if TYPE_CHECKING:
    import peft
    from transformers import PretrainedConfig

    from zoo.wrapped import ZooModel

ENCODERS = ("lstm", "mlp")
INITS = ("random", "vocab")


MAX_LSTM_LAYERS = 32
"""The deepest prompt-encoder LSTM accepted: far past any P-tuning setting, and a building time in seconds."""


@dataclass
class PTuningConfig(MethodConfig):
    num_virtual_tokens: int = 10
    """Number ``P`` of virtual tokens."""
    encoder_type: str = "lstm"
    """``lstm`` (bidirectional LSTM + 2-layer MLP, the paper's) or ``mlp`` (3-layer MLP only)."""
    encoder_hidden_size: int | None = None
    """Hidden width ``h`` of the prompt encoder; None: the model's hidden size."""
    encoder_num_layers: int = 2
    """Layers of the LSTM (``lstm`` only; the ``mlp`` encoder has a fixed depth)."""
    encoder_dropout: float = 0.0
    """Dropout between LSTM layers."""
    init: str = "vocab"
    """Input embeddings ``E``: ``random`` (normal, std of the embedding table) or ``vocab`` (sampled rows)."""
    seed: int = 0
    """Seed of ``E`` and of the encoder's initial weights."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.num_virtual_tokens, int) or self.num_virtual_tokens < 1:
            raise ValueError(f"num_virtual_tokens must be a positive integer, got {self.num_virtual_tokens!r}")
        if self.encoder_type not in ENCODERS:
            raise ValueError(f"encoder_type must be one of {list(ENCODERS)}, got {self.encoder_type!r}")
        hidden = self.encoder_hidden_size
        if hidden is not None and (not isinstance(hidden, int) or hidden < 1):
            raise ValueError(f"encoder_hidden_size must be a positive integer or None, got {self.encoder_hidden_size!r}")
        if not 1 <= self.encoder_num_layers <= MAX_LSTM_LAYERS:
            raise ValueError(
                f"encoder_num_layers must be an integer from 1 to {MAX_LSTM_LAYERS} (the paper's LSTM has 2), "
                f"got {self.encoder_num_layers!r}"
            )
        check_seed(self.seed)
        if self.encoder_type == "mlp" and self.encoder_num_layers != 2:
            raise ValueError(
                f"encoder_num_layers={self.encoder_num_layers!r} applies to encoder_type='lstm' only; "
                "the 'mlp' encoder has a fixed depth (leave it at 2)"
            )
        if not 0.0 <= self.encoder_dropout < 1.0:
            raise ValueError(f"encoder_dropout must be in [0, 1), got {self.encoder_dropout!r}")
        if self.init not in INITS:
            raise ValueError(f"init must be one of {list(INITS)}, got {self.init!r}")


class PromptEncoder(nn.Module):
    """Trainable input embeddings and the network that turns them into virtual tokens."""

    def __init__(self, table: Tensor, cfg: PTuningConfig):
        super().__init__()
        p, (vocab_size, dim) = cfg.num_virtual_tokens, table.shape
        h = cfg.encoder_hidden_size or dim
        g = torch.Generator().manual_seed(cfg.seed)
        if cfg.init == "random":
            init = (
                torch.randn(p, dim, generator=g).to(table.device) * table.float().std()
            )  # no .item(): load_adapter wraps meta tensors first
        else:
            init = table.detach()[torch.randint(0, vocab_size, (p,), generator=g).to(table.device)].float()
        self.num_virtual_tokens = p
        self.embedding = nn.Parameter(init)  # (P, d)
        with torch.random.fork_rng(devices=[]):  # seeded encoder weights without touching the global stream
            torch.manual_seed(cfg.seed)
            if cfg.encoder_type == "lstm":
                self.lstm = nn.LSTM(
                    dim,
                    h,
                    num_layers=cfg.encoder_num_layers,
                    dropout=cfg.encoder_dropout,
                    bidirectional=True,
                    batch_first=True,
                )
                self.mlp = nn.Sequential(nn.Linear(2 * h, 2 * h), nn.ReLU(), nn.Linear(2 * h, dim))
            else:
                self.lstm = None
                self.mlp = nn.Sequential(nn.Linear(dim, h), nn.ReLU(), nn.Linear(h, h), nn.ReLU(), nn.Linear(h, dim))
        self.to(device=table.device, dtype=table.dtype)
        self._cache: tuple[tuple, Tensor] | None = None

    def adapter_params(self) -> list[str]:
        return [name for name, _ in self.named_parameters()]

    def encode(self) -> Tensor:
        x = self.embedding.unsqueeze(0)  # (1, P, d): every row of a batch shares the prompt
        if self.lstm is not None:
            x = self.lstm(x)[0]  # (1, P, 2h)
        return self.mlp(x)[0]  # (P, d)

    def forward(self) -> Tensor:
        if self.training or torch.is_grad_enabled():
            self._cache = None
            return self.encode()
        # a moved, cast or updated parameter changes its data pointer or version counter
        key = tuple((t.data_ptr(), t._version) for t in self.parameters())
        if self._cache is None or self._cache[0] != key:
            self._cache = (key, self.encode())
        return self._cache[1]


def export_p_tuning(model: ZooModel) -> PeftAdapter:
    cfg: PTuningConfig = model.method_config
    tokens = virtual_tokens(model)
    config = {
        **peft_prompt_config(tokens),
        "encoder_reparameterization_type": cfg.encoder_type.upper(),
        "encoder_hidden_size": cfg.encoder_hidden_size or tokens.shape[1],
        "encoder_num_layers": cfg.encoder_num_layers,
        "encoder_dropout": cfg.encoder_dropout,
    }
    return PeftAdapter(config, {PROMPT: tokens})


def peft_equivalent(cfg: PTuningConfig, config: PretrainedConfig) -> peft.PeftConfig:
    """peft's prompt encoder of ``cfg``'s length, encoder and widths."""
    import peft  # only here: zoo itself never needs peft

    return peft.PromptEncoderConfig(
        num_virtual_tokens=cfg.num_virtual_tokens,
        encoder_hidden_size=cfg.encoder_hidden_size,
        encoder_reparameterization_type=cfg.encoder_type.upper(),
        encoder_num_layers=cfg.encoder_num_layers,
        task_type="CAUSAL_LM",
    )


@register(
    "p_tuning",
    config=PTuningConfig,
    identity_at_init=False,
    mergeable=False,
    learning_rate=3e-3,
    peft=PeftFormat("P_TUNING", export=export_p_tuning, import_=import_virtual_tokens, equivalent_config=peft_equivalent),
)
def wrap_p_tuning(model: nn.Module, cfg: PTuningConfig) -> nn.Module:
    return VirtualTokenModel(model, PromptEncoder(model.get_input_embeddings().weight, cfg))
