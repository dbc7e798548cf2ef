"""A method's peft correspondence, declared where the method is registered (``zoo.register(..., peft=PeftFormat(...))``),
and the vocabulary its converters speak.

``zoo.io.peft_interchange`` exports a model with the format of its method's spec and imports a peft
folder with the importer declared for its ``peft_type``; the benchmarks build peft's config of the
same size from ``equivalent_config``. No table keyed by method name: a plugin declares its own.
In peft's folder, injected adapters (LoRA, IA3, adaption prompts) key their tensors by the module's
full name behind ``base_model.model.`` (:data:`PREFIX`) and without peft's adapter name;
prompt-learning methods store one tensor, ``prompt_embeddings`` (:data:`PROMPT`), the virtual
tokens (or prefix table) as peft uses them for inference. This module imports nothing of peft,
nor of zoo above it (the types of its annotations are imported for type checkers only).
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from torch import Tensor

if TYPE_CHECKING:
    from pathlib import Path

    import peft
    from torch import nn
    from transformers import PretrainedConfig

    from zoo.method import MethodConfig
    from zoo.wrapped import ZooModel

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
            raise TypeError(f"PeftFormat export for {self.peft_type} must be a function of the wrapped model, "
                            f"got {self.export!r}")
        for field in ("import_", "equivalent_config", "zoo_overrides"):
            value = getattr(self, field)
            if value is not None and not callable(value):
                raise TypeError(f"PeftFormat {field} for {self.peft_type} must be a function or None, got {value!r}")
        if self.zoo_overrides is not None and self.equivalent_config is None:
            raise ValueError(f"PeftFormat for {self.peft_type} gives zoo_overrides without equivalent_config: "
                             "the overrides size zoo's method like peft's config, so declare that config too")


def by_module(tensors: dict[str, Tensor], suffixes: tuple[str, ...], source: str) -> dict[str, dict[str, Tensor]]:
    """``{module name: {suffix: tensor}}`` of keys ``base_model.model.<module>.<suffix>``.

    Raises:
        NotConvertible: a key of another form (a tensor of an option zoo does not have).
    """
    modules: dict[str, dict[str, Tensor]] = {}
    for key, value in tensors.items():
        suffix = next((s for s in suffixes if key.startswith(PREFIX) and key.endswith("." + s)), None)
        if suffix is None:
            raise NotConvertible(f"{source}: tensor {key!r} is not one zoo can place; expected only "
                                 f"{PREFIX}<module>.{{{', '.join(suffixes)}}}")
        modules.setdefault(key[len(PREFIX):-len(suffix) - 1], {})[suffix] = value
    return modules


def refuse_options(config: dict[str, Any], supported: dict[str, tuple], source: str) -> None:
    """Refuse a peft config that sets an option to a value zoo has no equivalent of.

    ``supported`` maps an option to the values zoo can reproduce; an option absent from the
    config is taken to be at peft's default, which is always among them.
    """
    for option, values in supported.items():
        if option in config and config[option] not in values:
            raise NotConvertible(f"{source}: peft option {option}={config[option]!r} has no equivalent in zoo; "
                                 f"only {' or '.join(map(repr, values))} can be imported")


def peft_matches(name: str, targets: list[str] | str | None) -> bool:
    """Whether peft's ``target_modules``-style entry selects module ``name`` (a list of names or suffixes, or a regex)."""
    if targets is None:
        return False
    if isinstance(targets, str):
        return re.fullmatch(targets, name) is not None
    return any(name == t or name.endswith("." + t) for t in targets)
