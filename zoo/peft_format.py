"""A method's peft correspondence, declared where the method is registered (``zoo.register(..., peft=PeftFormat(...))``).

``zoo.peft_interchange`` exports a model with the format of its method's spec and imports a peft
folder with the importer declared for its ``peft_type``; the benchmarks build peft's config of the
same size from ``equivalent_config``. No table keyed by method name: a plugin declares its own.
This module imports nothing of peft, nor of the interchange (the types below are annotations only).
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

    import peft
    from torch import nn
    from transformers import PretrainedConfig

    from zoo.method import MethodConfig
    from zoo.peft_interchange.format import ImportPlan, PeftAdapter
    from zoo.wrapped import ZooModel

_PEFT_TYPE = re.compile(r"^[A-Z][A-Z0-9_]*$")


@dataclass(frozen=True)
class PeftFormat:
    """How a zoo method's adapter is a peft adapter of type ``peft_type``, and back.

    The converters exchange a :class:`~zoo.peft_interchange.format.PeftAdapter` (the config
    entries and tensors of peft's folder, less ``peft_type`` and ``task_type``, which the
    interchange writes) and refuse what does not convert with
    :class:`~zoo.peft_interchange.format.NotConvertible`, naming the option that would fit.
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
