"""``wrap`` and the module it returns; parameter counting; merge and unmerge."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

import torch
from torch import Tensor, nn

from zoo.delegate import Delegating
from zoo.dry_run import check_fits_in_memory, naming_size_fields
from zoo.fingerprint import fingerprint
from zoo.inject import adapter_modules, adapter_parameters, freeze, quantized
from zoo.method import GradientFree, MethodConfig, MethodSpec, Reduce
from zoo.models.arch import check_supported, model_kind
from zoo.models.layout import BaseLayout, TakenOut
from zoo.registry import get_method, list_methods, spec_for_config


class ZooModel(Delegating):
    """A model wrapped by one zoo method: same ``forward`` and ``generate`` as the base.

    ``model`` is what the method's wrap function returned (the base with adapters injected,
    or a method module holding the base). Attributes it lacks are looked up on it, so
    ``config``, ``get_input_embeddings`` and the like work as on the base model.
    """

    def __init__(
        self, model: nn.Module, spec: MethodSpec, config: MethodConfig, base_fingerprint: str, kind: str, base: BaseLayout
    ):
        super().__init__()
        self.model = model
        self.spec = spec
        self.method_config = config
        self.base_fingerprint = base_fingerprint
        self.model_kind = kind
        self.merged = False
        self.base_layout = base
        self.taken_out: TakenOut | None = None  # while merged: the method's modules, out of the forward pass
        self._merged_adapter: dict[str, Tensor] = {}

    @property
    def method(self) -> str:
        return self.spec.name

    def adapter_state_dict(self) -> dict[str, Tensor]:
        """Only the method's tensors, keyed relative to ``self.model`` (merged too: as they were when merged)."""
        if self.merged:
            return dict(self._merged_adapter)
        return {name: p.detach() for name, p in adapter_parameters(self.model).items()}

    def fit(self, batches: Iterable[dict[str, Tensor]], reduce: Reduce | None = None) -> dict[str, float]:
        """Solve a gradient-free method in closed form (see :class:`zoo.method.GradientFree`)."""
        if not self.spec.gradient_free or not isinstance(self.model, GradientFree):
            raise TypeError(f"method {self.method!r} is trained by gradient steps and has no fit()")
        return self.model.fit(batches, reduce=reduce)


def build_config(method: str, **overrides) -> MethodConfig:
    """Method ``method``'s config with keyword overrides; unknown fields name the valid ones."""
    spec = get_method(method)
    valid = [f.name for f in dataclasses.fields(spec.config)]
    unknown = sorted(set(overrides) - set(valid))
    if unknown:
        raise TypeError(f"unknown config field(s) {unknown} for method {method!r}; valid fields: {valid}")
    return spec.config(**overrides)


def wrap(model: nn.Module, cfg: MethodConfig | str, **overrides) -> ZooModel:
    """Wrap ``model`` with a method; after it exactly the method's parameters require grad.

    The wrapped model is returned in eval mode, ready for inference (new modules such as
    LoRA's dropout would otherwise start in train mode); :func:`zoo.training.loop.train` and the
    like call ``.train()`` themselves.

    Args:
        model: a transformers model (causal LM or encoder). It is modified in place.
        cfg: a method config instance, or a registered method name.
        **overrides: config fields to set (``zoo.wrap(model, "lora", r=8)``).

    Raises:
        KeyError: unknown method name. TypeError: unknown config field.
        ValueError: the model is already wrapped, or is of a kind the method does not support.
    """
    if isinstance(model, ZooModel):
        raise ValueError(f"model is already wrapped with {model.method!r}; wrap the base model instead")
    if isinstance(cfg, str):
        cfg = build_config(cfg, **overrides)
    elif isinstance(cfg, MethodConfig):
        if overrides:
            cfg = build_config(spec_for_config(cfg).name, **{**cfg.to_dict(), **overrides})
    else:
        raise TypeError(f"cfg must be a method name or a MethodConfig, got {type(cfg).__name__}; methods: {list_methods()}")
    spec = spec_for_config(cfg)
    check_supported(spec, model)
    check_fits_in_memory(model, spec, cfg)
    kind = model_kind(model)
    base_fingerprint = fingerprint(model)
    layout = BaseLayout(model)
    freeze(model)
    with naming_size_fields(spec, cfg):
        wrapped = spec.wrap_fn(model, cfg)
    params = adapter_parameters(wrapped)
    if not params:
        raise RuntimeError(f"method {spec.name!r} injected no adapter parameters (no module implements adapter_params())")
    for p in params.values():
        p.requires_grad_(True)
    return ZooModel(wrapped, spec, cfg, base_fingerprint, kind, layout).eval()


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """``(trainable, total)`` parameter counts, each tensor counted once."""
    seen, trainable, total = set(), 0, 0
    for p in model.parameters():
        if id(p) in seen:
            continue
        seen.add(id(p))
        total += p.numel()
        trainable += p.numel() if p.requires_grad else 0
    return trainable, total


def merge_refusal(model: ZooModel) -> str | None:
    """Why the method of ``model`` cannot fold this adapter into the base weights (its ``refuses_merge``), None where it can."""
    refuses = model.spec.refuses_merge
    return None if refuses is None else refuses(model.method_config, model.model)


def can_merge(model: ZooModel) -> bool:
    """Whether :func:`merge` can fold ``model``'s adapter into its base: a mergeable method, a config it can merge, and
    full-precision base weights."""
    return model.spec.mergeable and not quantized(model.model) and merge_refusal(model) is None


def _mergeable(model: nn.Module, action: str) -> ZooModel:
    if not isinstance(model, ZooModel):
        raise TypeError(f"{action} needs a model returned by zoo.wrap, got {type(model).__name__}")
    if not model.spec.mergeable:
        can = [m for m in list_methods() if get_method(m).mergeable]
        raise ValueError(f"method {model.method!r} cannot be merged into the base weights; mergeable methods: {can}")
    if quantized(model.model):
        raise ValueError(
            f"{action}: the base model's weights are quantized (packed integers, bitsandbytes' 4-/8-bit), so the "
            f"adapter cannot be folded into them; save it, load it onto the base in full precision "
            f"(model.quantization=null) and {action} there"
        )
    return model


@torch.no_grad()
def merge(model: ZooModel) -> ZooModel:
    """Fold the adapter into the base weights (outputs unchanged, no adapter overhead).

    The method's modules then leave the forward pass (zoo.models.layout): the merged model runs the base model's own modules,
    at the base model's speed. :meth:`ZooModel.adapter_state_dict` still gives the adapter (saving works); move the model
    to another device while unmerged, since the modules taken out stay where they were.

    Raises:
        ValueError: the method is not mergeable, declares it cannot merge this config (``refuses_merge``, with its
            reason), or the base weights are quantized.
    """
    _mergeable(model, "merge")
    if not model.merged and (reason := merge_refusal(model)) is not None:
        raise ValueError(f"method {model.method!r} cannot merge this adapter into the base weights: {reason}")
    if not model.merged:
        model._merged_adapter = model.adapter_state_dict()
        for _, module in adapter_modules(model.model):
            module.merge()
        model.taken_out = model.base_layout.put_back(model.model)
        model.merged = True
    return model


@torch.no_grad()
def unmerge(model: ZooModel) -> ZooModel:
    """Undo :func:`merge`."""
    _mergeable(model, "unmerge")
    if model.merged:
        if model.taken_out is not None:  # None after an unmerge that raised half way (IA3's zeroed weight)
            model.taken_out.put_back()
            model.taken_out, model._merged_adapter = None, {}
        for _, module in adapter_modules(model.model):
            module.unmerge()
        model.merged = False
    return model
