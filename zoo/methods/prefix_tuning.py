"""Prefix tuning (Li & Liang, 2021, "Prefix-Tuning: Optimizing Continuous Prompts for
Generation", arXiv:2101.00190).

Every layer's attention gets ``P`` trainable key/value pairs in front of the real tokens'
(one set per key/value head, so grouped-query models get ``kv_heads`` of them); the prefix is
never a query and the base model stays frozen::

    layer l, head h:  K = [Pk_lh ; W_k x]   V = [Pv_lh ; W_v x]   out = softmax(q Kᵀ/√d_h) V

    reparameterize=True (training, as in the paper):
        E (P, e) ──► Linear(e, m) ──► tanh ──► Linear(m, layers·2·kv_heads·d_h) ──► prefix (P, ...)
    reparameterize=False, or after fold_prefix(): the (P, layers·2·kv_heads·d_h) table itself

The paper finds optimising the table directly unstable, hence the MLP; ``fold_prefix`` runs
it once and keeps only its output, which gives the same outputs without E and the MLP.
What trains: E and the MLP (or the table). The prefix enters through transformers' cache:
a ``DynamicCache`` seeded with it per layer, the attention mask gets ``P`` leading ones,
and the real tokens of a causal LM take positions ``P, P+1, ...`` (transformers numbers
positions after the cache; peft does the same), so ``forward`` and ``generate`` agree. An
encoder keeps positions ``0 .. T-1``, which its absolute position embeddings were trained on
(peft shifts them by ``P``). Given ``position_ids`` of a causal LM are shifted by ``P``, as peft does.
A model whose ``forward`` takes no cache at all (DeBERTa-v2, ModernBERT) has nowhere to put the
prefix: the spec declares ``uses_cache``, and wrapping such a model is refused, saying so.
``generate`` seeds the cache once; the returned ids never hold virtual positions. Not
identity at init, not mergeable. Defaults: 10 virtual tokens and MLP width 512 (the paper's
code); lr 3e-3, the best of a sweep over 1e-3..5e-2 on the built-in synthetic task with a random
tiny-llama (about 0.56 there: a frozen random model leaves little to steer). On the default
(pretrained) tiny-llama, seeds 0-2: 0.852 ± 0.004 from 0.512 zero-shot
(``benchmarks/results/default_task/RESULTS.md``, ``python -m benchmarks.suite --profile default``).

peft's format (``PeftFormat("PREFIX_TUNING")``): the prefix table (P, layers·2·kv_heads·head_dim), laid out alike
by both. peft saves the table itself (its MLP's output where it reparameterises), so a zoo export writes its encoder's
output and an import is zoo's ``reparameterize=False`` table. Encoder prefixes do not convert: peft shifts the real
tokens' positions by P, zoo keeps 0 … T-1.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn
from transformers import DynamicCache

from zoo.delegate import Delegating
from zoo.method import MethodConfig
from zoo.models.arch import model_kind
from zoo.models.cache_kwarg import CACHE_KWARG, pop_cache
from zoo.peft_format import (
    PROMPT,
    ImportPlan,
    NotConvertible,
    PeftAdapter,
    PeftFormat,
    check_numbers,
    check_sizes,
    refuse_options,
)
from zoo.registry import register
from zoo.wrapped import ZooModel

if TYPE_CHECKING:
    import peft
    from transformers import PretrainedConfig


@dataclass
class PrefixTuningConfig(MethodConfig):
    num_virtual_tokens: int = 10
    """Number ``P`` of key/value pairs prepended at every layer."""
    reparameterize: bool = True
    """Produce the prefix through an embedding and a tanh MLP (the paper); False: train the table directly."""
    embedding_dim: int | None = None
    """Width ``e`` of the MLP's input embedding; None: the model's hidden size."""
    projection_hidden_size: int = 512
    """Width ``m`` of the MLP's hidden layer."""

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("num_virtual_tokens", "projection_hidden_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.embedding_dim is not None and (not isinstance(self.embedding_dim, int) or self.embedding_dim < 1):
            raise ValueError(
                f"embedding_dim must be a positive integer or None (the model's hidden size), got {self.embedding_dim!r}"
            )


class PrefixEncoder(nn.Module):
    """Produces the prefix table ``(P, layers·2·kv_heads·head_dim)``, laid out (layer, k/v, head, dim)."""

    def __init__(self, cfg: PrefixTuningConfig, width: int, hidden_size: int, dtype: torch.dtype, device: torch.device):
        super().__init__()
        self.num_virtual_tokens = cfg.num_virtual_tokens
        if cfg.reparameterize:
            embedding_dim = cfg.embedding_dim or hidden_size
            # N(0, 1) rows, as nn.Embedding initialises the paper's P'; the MLP keeps nn.Linear's init
            self.embedding = nn.Parameter(torch.randn(cfg.num_virtual_tokens, embedding_dim, dtype=dtype, device=device))
            self.mlp = nn.Sequential(
                nn.Linear(embedding_dim, cfg.projection_hidden_size, dtype=dtype, device=device),
                nn.Tanh(),
                nn.Linear(cfg.projection_hidden_size, width, dtype=dtype, device=device),
            )
        else:
            self.prefix = nn.Parameter(torch.randn(cfg.num_virtual_tokens, width, dtype=dtype, device=device))

    @property
    def reparameterized(self) -> bool:
        return hasattr(self, "mlp")

    def adapter_params(self) -> list[str]:
        return [name for name, _ in self.named_parameters()]

    def forward(self) -> Tensor:
        return self.mlp(self.embedding) if self.reparameterized else self.prefix  # (P, width)

    @torch.no_grad()
    def fold(self) -> None:
        """Replace the embedding and MLP by the table they produce (same outputs, no MLP)."""
        if not self.reparameterized:
            return
        table = self.forward().detach().clone()
        del self.embedding, self.mlp
        self.prefix = nn.Parameter(table)


class PrefixTuningModel(Delegating):
    """A base model whose every attention layer sees the prefix keys/values first.

    Keeps the base model's call conventions; attributes it lacks are the base model's.
    """

    delegate_to = "base"

    def __init__(self, base: nn.Module, cfg: PrefixTuningConfig):
        super().__init__()
        config = base.config
        heads = config.num_attention_heads
        self.num_layers: int = config.num_hidden_layers
        self.kv_heads: int = getattr(config, "num_key_value_heads", None) or heads
        self.head_dim: int = getattr(config, "head_dim", None) or config.hidden_size // heads
        self.num_virtual_tokens = cfg.num_virtual_tokens
        self.is_encoder = model_kind(base) == "encoder"
        weight = next(base.parameters())
        width = self.num_layers * 2 * self.kv_heads * self.head_dim
        self.base = base
        self.prefix_encoder = PrefixEncoder(cfg, width, config.hidden_size, weight.dtype, weight.device)

    def seed_cache(self, batch_size: int, cache: DynamicCache | None = None) -> DynamicCache:
        """``cache`` (or a new ``DynamicCache``) holding the prefix of every layer for ``batch_size`` rows."""
        p = self.num_virtual_tokens
        table = self.prefix_encoder().to(self.base.dtype)  # (P, layers·2·kv_heads·head_dim)
        kv = table.view(p, self.num_layers, 2, self.kv_heads, self.head_dim).permute(1, 2, 3, 0, 4)  # (L, 2, Hkv, P, hd)
        cache = cache if cache is not None else DynamicCache(config=self.base.config)
        for layer, (keys, values) in enumerate(kv):
            cache.update(keys.expand(batch_size, -1, -1, -1), values.expand(batch_size, -1, -1, -1), layer)  # (B, Hkv, P, hd)
        return cache

    def _lead_ones(self, mask: Tensor) -> Tensor:
        return torch.cat([mask.new_ones(mask.shape[0], self.num_virtual_tokens), mask], dim=1)  # (B, P+T)

    def forward(
        self,
        input_ids: Tensor | None = None,
        attention_mask: Tensor | None = None,
        inputs_embeds: Tensor | None = None,
        position_ids: Tensor | None = None,
        **kwargs,
    ):
        """The base forward with the prefix in the cache. A given non-empty cache (``cache``, or
        ``past_key_values`` as before transformers 5.24) is taken to hold the prefix already (it
        came from an earlier call); ``attention_mask`` always covers only the real tokens."""
        inputs = input_ids if input_ids is not None else inputs_embeds
        if inputs is None:
            raise ValueError("pass input_ids or inputs_embeds; both are None")
        cache = pop_cache(kwargs)
        if cache is None or cache.get_seq_length() == 0:
            cache = self.seed_cache(inputs.shape[0], cache)
        if attention_mask is not None:
            attention_mask = self._lead_ones(attention_mask)
        if self.is_encoder and position_ids is None:
            position_ids = torch.arange(inputs.shape[1], device=inputs.device).unsqueeze(0)  # (1, T)
        elif not self.is_encoder and position_ids is not None:
            position_ids = position_ids + self.num_virtual_tokens
        kwargs[CACHE_KWARG] = cache
        return self.base(
            input_ids=input_ids,
            attention_mask=attention_mask,
            inputs_embeds=inputs_embeds,
            position_ids=position_ids,
            **kwargs,
        )

    def generate(self, input_ids: Tensor | None = None, attention_mask: Tensor | None = None, **kwargs):
        """``base.generate`` from a cache seeded with the prefix.

        The mask passed on covers prefix + real tokens, which transformers reads as "the cache
        holds the first P positions"; ``max_length`` and the returned ids count real tokens only.
        Without ``attention_mask`` every input token is attended.

        Raises:
            ValueError: ``use_cache=False``, ``inputs_embeds``, or a cache of the caller's (the
                prefix lives in the cache ``generate`` seeds).
        """
        if kwargs.get("use_cache") is False:
            raise ValueError("prefix tuning generates through the key/value cache; use_cache=False is not supported")
        if input_ids is None or "inputs_embeds" in kwargs:
            raise ValueError("prefix tuning generate needs input_ids (inputs_embeds is not supported)")
        if given := [name for name in ("cache", "past_key_values") if name in kwargs]:
            raise ValueError(f"prefix tuning generate seeds its own cache; do not pass {given[0]}")
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        config = kwargs.get("generation_config") or self.base.generation_config
        beams = kwargs.get("num_beams") or config.num_beams or 1
        returns = kwargs.get("num_return_sequences") or config.num_return_sequences or 1
        # transformers repeats every row for beams / returned sequences but not a given cache
        rows = input_ids.shape[0] * (beams if beams > 1 else returns)
        kwargs[CACHE_KWARG] = self.seed_cache(rows)
        return self.base.generate(input_ids=input_ids, attention_mask=self._lead_ones(attention_mask), **kwargs)


def fold_prefix(model: nn.Module) -> nn.Module:
    """Fold the reparameterising MLP of a model wrapped with ``prefix_tuning`` into the prefix table.

    Outputs are unchanged; afterwards only the table is a parameter, and the wrapped model's
    config reads ``reparameterize=False``, so ``zoo.save_adapter`` stores just the table.

    Raises:
        TypeError: ``model`` was not wrapped with ``prefix_tuning``.
    """
    if not isinstance(model, ZooModel) or not isinstance(model.model, PrefixTuningModel):
        found = getattr(model, "method", type(model).__name__)
        raise TypeError(f"fold_prefix needs a model wrapped with 'prefix_tuning', got {found!r}")
    model.model.prefix_encoder.fold()
    model.method_config = dataclasses.replace(model.method_config, reparameterize=False)
    return model


PEFT_SUPPORTED = {"num_transformer_submodules": (1, None), "modules_to_save": (None, [])}
"""peft options zoo's prefix tuning has no equivalent of, and the values at which they change nothing."""
ENCODER_POSITIONS = (
    "prefix tuning on an encoder does not convert: peft shifts the real tokens' positions by the number of "
    "virtual tokens, zoo keeps 0..T-1 (the positions its embeddings were trained on)"
)


def export_prefix_tuning(model: ZooModel) -> PeftAdapter:
    if model.model_kind != "causal_lm":
        raise NotConvertible(ENCODER_POSITIONS)
    prefix = model.model  # the PrefixTuningModel
    with torch.no_grad():
        table = prefix.prefix_encoder().detach().clone()  # (P, layers·2·kv_heads·head_dim)
    config = {
        "num_virtual_tokens": prefix.num_virtual_tokens,
        "num_layers": prefix.num_layers,
        "num_attention_heads": prefix.kv_heads,
        "token_dim": prefix.kv_heads * prefix.head_dim,
        "encoder_hidden_size": model.method_config.projection_hidden_size,
        "prefix_projection": False,
        "num_transformer_submodules": 1,
    }
    return PeftAdapter(config, {PROMPT: table})


def import_prefix_tuning(base: nn.Module, adapter: PeftAdapter, folder: Path) -> ImportPlan:
    refuse_options(adapter.config, PEFT_SUPPORTED, str(folder))
    check_numbers(adapter.config, {"num_virtual_tokens": int, "encoder_hidden_size": int, "token_dim": int}, str(folder))
    if model_kind(base) != "causal_lm":
        raise NotConvertible(f"{folder}: {ENCODER_POSITIONS}")
    table = adapter.tensors.get(PROMPT)
    if set(adapter.tensors) != {PROMPT} or table.dim() != 2:
        raise NotConvertible(
            f"{folder}: expected one (P, layers·2·kv_heads·head_dim) tensor {PROMPT!r}, found "
            f"{ {k: tuple(v.shape) for k, v in adapter.tensors.items()} }"
        )
    check_sizes(adapter.config, {"num_virtual_tokens": table.shape[0]}, str(folder))
    cfg = PrefixTuningConfig(num_virtual_tokens=table.shape[0], reparameterize=False)
    return ImportPlan(cfg, lambda _: {"prefix_encoder.prefix": table})


def peft_equivalent(cfg: PrefixTuningConfig, config: PretrainedConfig) -> peft.PeftConfig:
    """peft's prefix tuning of ``cfg``'s size, with :func:`peft_width` set on zoo's side."""
    import peft  # only here: zoo itself never needs peft

    return peft.PrefixTuningConfig(
        num_virtual_tokens=cfg.num_virtual_tokens,
        prefix_projection=cfg.reparameterize,
        encoder_hidden_size=cfg.projection_hidden_size,
        task_type="CAUSAL_LM",
    )


def peft_width(config: PretrainedConfig) -> dict:
    """peft embeds the prefix at the key/value width (smaller than the hidden size under grouped-query attention)."""
    return {"embedding_dim": config.num_key_value_heads * (config.hidden_size // config.num_attention_heads)}


@register(
    "prefix_tuning",
    config=PrefixTuningConfig,
    identity_at_init=False,
    mergeable=False,
    uses_cache=True,
    learning_rate=3e-3,
    peft=PeftFormat(
        "PREFIX_TUNING",
        export=export_prefix_tuning,
        import_=import_prefix_tuning,
        equivalent_config=peft_equivalent,
        zoo_overrides=peft_width,
    ),
)
def wrap_prefix_tuning(model: nn.Module, cfg: PrefixTuningConfig) -> nn.Module:
    return PrefixTuningModel(model, cfg)
