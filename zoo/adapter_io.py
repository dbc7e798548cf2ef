"""Save and load just a method's weights: ``adapter_model.safetensors`` + ``adapter_config.json``.

The JSON names the method, its config, the zoo version, the base model's fingerprint and
the checksum of the weights file; loading checks all of them before touching the model.
"""
from __future__ import annotations

import hashlib
import json
import tempfile
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from zoo.atomic import replace_dir, write_json
from zoo.fingerprint import fingerprint
from zoo.registry import get_method
from zoo.version import __version__
from zoo.wrapped import ZooModel, build_config, wrap

WEIGHTS = "adapter_model.safetensors"
CONFIG = "adapter_config.json"
FORMAT = 1


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def save_adapter(model: ZooModel, path: str | Path) -> Path:
    """Write the adapter of ``model`` to folder ``path`` atomically; return the folder."""
    if not isinstance(model, ZooModel):
        raise TypeError(f"save_adapter needs a model returned by zoo.wrap, got {type(model).__name__}")
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.staging."))
    tensors = {k: v.detach().cpu().clone().contiguous() for k, v in model.adapter_state_dict().items()}
    save_file(tensors, str(staging / WEIGHTS))
    write_json(staging / CONFIG, {
        "format": FORMAT,
        "method": model.method,
        "config": model.method_config.to_dict(),
        "zoo_version": __version__,
        "base_fingerprint": model.base_fingerprint,
        "model_kind": model.model_kind,
        "weights_sha256": _sha256(staging / WEIGHTS),
    })
    replace_dir(staging, target)
    return target


def read_adapter_config(path: str | Path) -> dict:
    """The parsed, checked ``adapter_config.json`` of an adapter folder."""
    folder = Path(path)
    missing = [name for name in (CONFIG, WEIGHTS) if not (folder / name).is_file()]
    if missing:
        raise FileNotFoundError(f"adapter folder {str(folder)!r} lacks {missing}; a saved adapter has {[CONFIG, WEIGHTS]}")
    try:
        meta = json.loads((folder / CONFIG).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{folder / CONFIG} is corrupt (not valid JSON: {err})") from err
    needed = {"format", "method", "config", "base_fingerprint", "weights_sha256"}
    if not isinstance(meta, dict) or needed - set(meta):
        raise ValueError(f"{folder / CONFIG} is corrupt: it lacks {sorted(needed - set(meta or {}))}")
    if meta["format"] != FORMAT:
        raise ValueError(f"{folder / CONFIG} has format {meta['format']!r}; this zoo reads format {FORMAT}")
    if _sha256(folder / WEIGHTS) != meta["weights_sha256"]:
        raise ValueError(f"{folder / WEIGHTS} is corrupt: its checksum differs from the one in {CONFIG}")
    return meta


def load_adapter(base_model: nn.Module, path: str | Path) -> ZooModel:
    """Wrap ``base_model`` with the adapter saved in ``path`` and load its weights.

    Raises:
        FileNotFoundError / ValueError: missing or corrupt files, an adapter saved for
            another base model, or weights that do not fit the wrapped model.
        KeyError: the adapter's method is not registered here.
    """
    folder = Path(path)
    meta = read_adapter_config(folder)
    get_method(meta["method"])
    found = fingerprint(base_model)
    if found != meta["base_fingerprint"]:
        raise ValueError(
            f"adapter in {str(folder)!r} was saved for another base model (fingerprint "
            f"{meta['base_fingerprint']}, this model's is {found}); load it onto the model it was trained on"
        )
    model = wrap(base_model, build_config(meta["method"], **meta["config"]))
    tensors = load_file(str(folder / WEIGHTS))
    own = model.adapter_state_dict()
    if set(tensors) != set(own):
        raise ValueError(
            f"{folder / WEIGHTS} does not fit method {meta['method']!r}: missing {sorted(set(own) - set(tensors))}, "
            f"unexpected {sorted(set(tensors) - set(own))}"
        )
    params = dict(model.model.named_parameters())
    with torch.no_grad():
        for name, value in tensors.items():
            if params[name].shape != value.shape:
                raise ValueError(f"{name} has shape {tuple(value.shape)} in {WEIGHTS}, the model expects {tuple(params[name].shape)}")
            params[name].copy_(value)
    return model
