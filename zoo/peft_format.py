"""A method's peft correspondence, declared where the method is registered (``zoo.register(..., peft=PeftFormat(...))``),
and the vocabulary its converters speak.

``zoo.io.peft_interchange`` exports a model with the format of its method's spec and imports a peft
folder with the importer declared for its ``peft_type``; the benchmarks build peft's config of the
same size from ``equivalent_config``. No table keyed by method name: a plugin declares its own.
In peft's folder, injected adapters (LoRA, IA3, adaption prompts) key their tensors by the module's
full name behind ``base_model.model.`` (:data:`PREFIX`) and without peft's adapter name;
prompt-learning methods store one tensor, ``prompt_embeddings`` (:data:`PROMPT`), the virtual
tokens (or prefix table) as peft uses them for inference. An importer applies peft's config as peft
does (:func:`peft_modules`: ``target_modules``, ``exclude_modules``, ``layers_to_transform``) and refuses
a numeric field of another type or not finite (:func:`check_numbers`). This module imports nothing of peft,
nor of zoo above it (the types of its annotations are imported for type checkers only).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from torch import Tensor

from zoo.runtime.typed_fields import describe, fits

if TYPE_CHECKING:
    from pathlib import Path

    import peft
    from torch import nn
    from transformers import PretrainedConfig

    from zoo.method import MethodConfig
    from zoo.wrapped import ZooModel

log = logging.getLogger(__name__)
_PEFT_TYPE = re.compile(r"^[A-Z][A-Z0-9_]*$")
PREFIX = "base_model.model."
PROMPT = "prompt_embeddings"


@dataclass
class PeftAdapter:
    """What a peft folder holds: its config entries and its tensors (keys as in the file)."""

    config: dict[str, Any]
    tensors: dict[str, Tensor]


@dataclass
class ImportPlan:
    """How a peft adapter becomes a zoo one: the method config to wrap with, and the adapter tensors
    for the wrapped model (keyed as :meth:`zoo.ZooModel.adapter_state_dict`), worked out from it."""

    method_config: MethodConfig
    weights: Callable[[ZooModel], dict[str, Tensor]]


class NotConvertible(ValueError):
    """An adapter whose formats do not agree between zoo and peft; the message says which option would make it fit."""


@dataclass(frozen=True)
class PeftFormat:
    """How a zoo method's adapter is a peft adapter of type ``peft_type``, and back.

    The converters exchange a :class:`~zoo.io.peft_interchange.format.PeftAdapter` (the config
    entries and tensors of peft's folder, less ``peft_type`` and ``task_type``, which the
    interchange writes) and refuse what does not convert with
    :class:`~zoo.io.peft_interchange.format.NotConvertible`, naming the option that would fit.
    """

    peft_type: str
    """peft's name of the method (``peft.PeftType``, e.g. ``"LORA"``), written to and read from ``adapter_config.json``."""
    export: Callable[[ZooModel], PeftAdapter]
    """A model wrapped with the method -> its adapter in peft's layout."""
    import_: Callable[[nn.Module, PeftAdapter, Path], ImportPlan] | None = None
    """(base model, peft adapter, its folder) -> the zoo config to wrap with and its weights; None: export only.
    The plan may name another method's config (peft's P-tuning imports as zoo's prompt tuning). One method
    per ``peft_type`` imports it."""
    equivalent_config: Callable[[MethodConfig, PretrainedConfig], peft.PeftConfig] | None = None
    """(zoo config, base model's transformers config) -> peft's config of the method with the same trainable
    size, for comparing the two implementations (``benchmarks/step_speed.py``); None: no such comparison."""
    zoo_overrides: Callable[[PretrainedConfig], dict] | None = None
    """Base model's transformers config -> the zoo config fields to set first so that zoo's method has
    ``equivalent_config``'s size where their defaults differ; None: none to set."""

    def __post_init__(self) -> None:
        if not isinstance(self.peft_type, str) or not _PEFT_TYPE.match(self.peft_type):
            raise ValueError(f"PeftFormat peft_type {self.peft_type!r} must be peft's upper-case name of the method, e.g. 'LORA'")
        if not callable(self.export):
            raise TypeError(
                f"PeftFormat export for {self.peft_type} must be a function of the wrapped model, got {self.export!r}"
            )
        for field in ("import_", "equivalent_config", "zoo_overrides"):
            value = getattr(self, field)
            if value is not None and not callable(value):
                raise TypeError(f"PeftFormat {field} for {self.peft_type} must be a function or None, got {value!r}")
        if self.zoo_overrides is not None and self.equivalent_config is None:
            raise ValueError(
                f"PeftFormat for {self.peft_type} gives zoo_overrides without equivalent_config: "
                "the overrides size zoo's method like peft's config, so declare that config too"
            )


def by_module(tensors: dict[str, Tensor], suffixes: tuple[str, ...], source: str) -> dict[str, dict[str, Tensor]]:
    """``{module name: {suffix: tensor}}`` of keys ``base_model.model.<module>.<suffix>``.

    Raises:
        NotConvertible: a key of another form (a tensor of an option zoo does not have).
    """
    modules: dict[str, dict[str, Tensor]] = {}
    for key, value in tensors.items():
        suffix = next((s for s in suffixes if key.startswith(PREFIX) and key.endswith("." + s)), None)
        if suffix is None:
            raise NotConvertible(
                f"{source}: tensor {key!r} is not one zoo can place; expected only {PREFIX}<module>.{{{', '.join(suffixes)}}}"
            )
        modules.setdefault(key[len(PREFIX) : -len(suffix) - 1], {})[suffix] = value
    return modules


def refuse_options(config: dict[str, Any], supported: dict[str, tuple], source: str) -> None:
    """Refuse a peft config that sets an option to a value zoo has no equivalent of.

    ``supported`` maps an option to the values zoo can reproduce; an option absent from the
    config is taken to be at peft's default, which is always among them.
    """
    for option, values in supported.items():
        if option in config and config[option] not in values:
            raise NotConvertible(
                f"{source}: peft option {option}={config[option]!r} has no equivalent in zoo; "
                f"only {' or '.join(map(repr, values))} can be imported"
            )


def check_numbers(config: dict[str, Any], fields: dict[str, type], source: str) -> None:
    """Refuse a peft config whose numeric ``fields`` (name -> ``int`` or ``float``) hold another type or a non-finite value.

    peft reads ``lora_alpha: "16"`` and then fails inside torch, and ``lora_alpha: NaN`` gives NaN outputs: neither loads.
    A field absent from the config is at peft's default.
    """
    for name, kind in fields.items():
        if name in config and not fits(config[name], kind):
            what = "an integer" if kind is int else "a finite number"
            raise NotConvertible(f"{source}: peft config field {name}={config[name]!r} must be {what}")


def check_sizes(config: dict[str, Any], found: dict[str, int | None], source: str) -> None:
    """Refuse a peft config whose size fields disagree with the tensors' shapes (``found``: field -> the size the
    tensors have, None where they disagree among themselves); peft would fail to load such a folder."""
    for name, size in found.items():
        if name in config and config[name] != size:
            held = "tensors of differing sizes" if size is None else f"tensors of size {size}"
            raise NotConvertible(
                f"{source}: peft config field {name}={config[name]!r} does not match the file, which holds {held}"
            )


def _layer_allowed(config: dict[str, Any], name: str) -> bool:
    """peft's ``layers_to_transform`` / ``layers_pattern``: whether module ``name``'s layer index is among those to adapt."""
    indexes, patterns = config.get("layers_to_transform"), config.get("layers_pattern")
    if indexes is None or indexes == []:
        return True
    patterns = [patterns] if isinstance(patterns, str) else patterns
    if not patterns:  # the first numbered segment after a named one is the layer index, as peft reads it
        found = re.match(r".*?\.[^.]*\.(?P<idx>\d+)\.", name)
    else:
        found = next((m for p in patterns if (m := re.match(rf"(?:^|.*?\.){p}\.(?P<idx>\d+)\.", name))), None)
    if found is None:
        return False
    index = int(found["idx"])
    return index == indexes if isinstance(indexes, int) else index in indexes


def peft_selects(config: dict[str, Any], name: str) -> bool:
    """Whether peft applies an adapter of ``config`` (``target_modules``, ``exclude_modules``, ``layers_to_transform``)
    to the module named ``name``, as ``peft.tuners.tuners_utils.check_target_module_exists`` decides."""
    excluded = config.get("exclude_modules")
    if excluded and peft_matches(name, excluded):
        return False
    targets = config.get("target_modules")
    if isinstance(targets, str):
        return re.fullmatch(targets, name) is not None
    return peft_matches(name, targets) and _layer_allowed(config, name)


def peft_modules(base: nn.Module, config: dict[str, Any], held: dict[str, Any], source: str) -> dict[str, Any]:
    """The entries of ``held`` (module name -> its tensors in the file) for the modules peft adapts on ``base``.

    peft adapts the modules its ``target_modules`` selects and loads their tensors; tensors of other
    modules it leaves unused (so does zoo, with a warning naming them).

    Raises:
        NotConvertible: ``target_modules`` is neither a list of names nor a regex, selects no module of
            ``base`` (peft refuses it too), or selects a module whose tensors the file does not hold.
    """
    targets = config.get("target_modules")
    for field, kind in (
        ("target_modules", str | list[str]),
        ("exclude_modules", str | list[str] | None),
        ("layers_to_transform", int | list[int] | None),
        ("layers_pattern", str | list[str] | None),
    ):
        if not fits(config.get(field), kind):
            raise NotConvertible(f"{source}: peft config field {field}={config.get(field)!r} must be {describe(kind)}")
    try:
        selected = sorted(name for name, _ in base.named_modules() if name and peft_selects(config, name))
    except re.error as err:
        raise NotConvertible(f"{source}: peft config field target_modules={targets!r} is not a valid regex ({err})") from err
    if not selected:
        raise NotConvertible(
            f"{source}: target_modules={targets!r} selects no module of the base model, so peft refuses this "
            f"adapter; the file holds tensors for {sorted(held)}"
        )
    missing = [name for name in selected if name not in held]
    if missing:
        raise NotConvertible(
            f"{source}: target_modules={targets!r} selects {missing}, whose tensors the file does not hold; "
            f"it holds tensors for {sorted(held)}"
        )
    unused = sorted(set(held) - set(selected))
    if unused:
        log.warning(
            "%s: the file holds tensors for %s, which target_modules=%r does not select; peft does not load them, "
            "and neither does zoo",
            source,
            unused,
            targets,
        )
    return {name: held[name] for name in selected}


def peft_matches(name: str, targets: list[str] | str | None) -> bool:
    """Whether peft's ``target_modules``-style entry selects module ``name`` (a list of names or suffixes, or a regex)."""
    if targets is None:
        return False
    if isinstance(targets, str):
        return re.fullmatch(targets, name) is not None
    return any(name == t or name.endswith("." + t) for t in targets)
