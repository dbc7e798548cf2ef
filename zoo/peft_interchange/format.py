"""peft's adapter folder, as far as zoo reads and writes it: the files, the key prefix, the shared checks.

A peft folder holds ``adapter_config.json`` (with ``peft_type``) and ``adapter_model.safetensors``.
Injected adapters (LoRA, IA3, adaption prompts) key their tensors by the module's full name behind
``base_model.model.`` and without peft's adapter name; prompt-learning methods store one tensor,
``prompt_embeddings``, the virtual tokens (or prefix table) as peft uses them for inference.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from safetensors.torch import load_file
from torch import Tensor

from zoo.json_marker import read_marked
from zoo.method import MethodConfig
from zoo.wrapped import ZooModel

CONFIG = "adapter_config.json"
WEIGHTS = "adapter_model.safetensors"
PREFIX = "base_model.model."
PROMPT = "prompt_embeddings"
TASK_TYPES = {"causal_lm": "CAUSAL_LM", "encoder": "FEATURE_EXTRACTION"}
"""peft's task type for each kind of model zoo wraps."""


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


def read_peft_config(folder: Path) -> dict[str, Any] | None:
    """``folder``'s adapter config if peft wrote it (it names a ``peft_type``), else None."""
    return read_marked(folder / CONFIG, "peft_type")


def read_peft_folder(folder: Path) -> PeftAdapter:
    """The config and tensors of peft folder ``folder``.

    Raises:
        FileNotFoundError: no ``adapter_model.safetensors`` (peft's older pickle format is not read).
    """
    config = read_peft_config(folder)
    if config is None:
        raise ValueError(f"{str(folder)!r} is not a peft adapter folder: its {CONFIG} is missing or names no peft_type")
    if not (folder / WEIGHTS).is_file():
        found = sorted(p.name for p in folder.iterdir())
        raise FileNotFoundError(f"peft adapter folder {str(folder)!r} has no {WEIGHTS} (it holds {found}); zoo reads peft's "
                                "safetensors format only: save it again with save_pretrained(..., safe_serialization=True)")
    return PeftAdapter(config, load_file(str(folder / WEIGHTS)))


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
