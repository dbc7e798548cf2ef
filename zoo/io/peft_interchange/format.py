"""peft's adapter folder, as far as zoo reads and writes it: ``adapter_config.json`` (with ``peft_type``) and
``adapter_model.safetensors``; the tensors' keys are the methods' converters' business (zoo.peft_format)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from safetensors import SafetensorError
from safetensors.torch import load_file

from zoo.io.json_marker import read_marked
from zoo.peft_format import PeftAdapter

CONFIG = "adapter_config.json"
WEIGHTS = "adapter_model.safetensors"
TASK_TYPES = {"causal_lm": "CAUSAL_LM", "encoder": "FEATURE_EXTRACTION"}
"""peft's task type for each kind of model zoo wraps."""


def read_peft_config(folder: Path) -> dict[str, Any] | None:
    """``folder``'s adapter config if peft wrote it (it names a ``peft_type``), else None."""
    return read_marked(folder / CONFIG, "peft_type")


def read_peft_folder(folder: Path) -> PeftAdapter:
    """The config and tensors of peft folder ``folder``.

    Raises:
        FileNotFoundError: no ``adapter_model.safetensors`` (peft's older pickle format is not read).
        ValueError: a config that names no ``peft_type``, a weights file that does not parse, or one holding a NaN or
            an infinity (peft's files carry no checksum: a damaged byte shows only as such a value, or as a changed one).
    """
    config = read_peft_config(folder)
    if config is None:
        raise ValueError(f"{str(folder)!r} is not a peft adapter folder: its {CONFIG} is missing or names no peft_type")
    if not isinstance(config["peft_type"], str) or not isinstance(config.get("task_type"), str | None):
        raise ValueError(
            f"{folder / CONFIG}: peft_type={config['peft_type']!r} and task_type={config.get('task_type')!r} must be "
            "peft's names (strings such as 'LORA' and 'CAUSAL_LM')"
        )
    if not (folder / WEIGHTS).is_file():
        found = sorted(p.name for p in folder.iterdir())
        raise FileNotFoundError(
            f"peft adapter folder {str(folder)!r} has no {WEIGHTS} (it holds {found}); zoo reads peft's "
            "safetensors format only: save it again with save_pretrained(..., safe_serialization=True)"
        )
    try:
        tensors = load_file(str(folder / WEIGHTS))
    except SafetensorError as err:
        raise ValueError(
            f"{folder / WEIGHTS} is not a readable safetensors file ({err}); it is damaged or was not written "
            "by save_pretrained: save the adapter again"
        ) from err
    broken = sorted(name for name, value in tensors.items() if value.is_floating_point() and not value.isfinite().all())
    if broken:
        raise ValueError(
            f"{folder / WEIGHTS}: tensor(s) {broken} hold NaN or infinite values; the file is damaged or the adapter "
            "diverged while it trained: save a good adapter again"
        )
    return PeftAdapter(config, tensors)
