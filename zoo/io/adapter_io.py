"""Save and load just a method's weights: ``adapter_model.safetensors`` + ``adapter_config.json``.

The JSON names the method, its config, the zoo version (and for a plugin's method the plugin's distribution and
version: loading under another version warns), the base model's fingerprint and
the checksum of the weights file, and ``config_sha256``, a checksum of all those entries: a
hand-edited ``alpha`` is refused, not silently used. Loading checks every one of them, and
the tensor shapes the config implies, before it allocates the adapter (:mod:`zoo.io.adapter_checks`).
Saving replaces the target folder whole, so it refuses a folder holding anything zoo did not write (zoo.runtime.written).
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from zoo.dry_run import implied_shapes
from zoo.fingerprint import fingerprint, sampled_weights_fingerprint
from zoo.io.adapter_checks import check_shapes, file_shapes, method_config
from zoo.io.peft_interchange import import_peft, read_peft_config
from zoo.method import MethodSpec
from zoo.registry import get_method
from zoo.runtime.atomic import write_json
from zoo.runtime.written import replacing_dir
from zoo.version import __version__
from zoo.wrapped import ZooModel, wrap

log = logging.getLogger(__name__)
WEIGHTS = "adapter_model.safetensors"
CONFIG = "adapter_config.json"
FORMAT = 3
"""Format 2 added ``config_sha256`` and a base fingerprint that covers the model's config; format 3 a base
fingerprint over every byte of the weights (:data:`zoo.fingerprint.VERSION` 2). Older folders still load,
with the checks they can have and a warning: format 2 with the sampled fingerprint, format 1 with no config checksum
and a fingerprint of the sampled weights alone."""
_ENTRIES = {
    1: {"format", "method", "config", "base_fingerprint", "weights_sha256"},
    2: {"format", "method", "config", "base_fingerprint", "weights_sha256", "config_sha256"},
    3: {"format", "method", "config", "base_fingerprint", "weights_sha256", "config_sha256"},
}
_WEAKER = {
    1: "its config has no checksum and only the base model's weights are compared, by 16 values and the sum of each tensor",
    2: "the base model is compared by 16 values and the sum of each tensor (swapped rows pass)",
}
"""What an old format's folder is not checked for."""


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def config_checksum(meta: dict) -> str:
    """SHA-256 of the canonical JSON of every entry of ``meta`` but ``config_sha256`` itself."""
    entries = {k: v for k, v in meta.items() if k != "config_sha256"}
    return hashlib.sha256(json.dumps(entries, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _written_by_zoo(config: Path) -> bool:
    try:
        meta = json.loads(config.read_text())
    except (OSError, ValueError):  # missing, unreadable, or not JSON: not one zoo wrote
        return False
    return isinstance(meta, dict) and {"format", "method", "zoo_version", "weights_sha256"} <= set(meta)


def written_adapter(folder: Path) -> bool:
    """Whether ``folder`` is an adapter folder a zoo older than the manifests (zoo.runtime.written) saved: its two files alone."""
    names = {p.name for p in folder.iterdir()} if folder.is_dir() else set()
    return names == {CONFIG, WEIGHTS} and _written_by_zoo(folder / CONFIG)


def save_adapter(model: ZooModel, path: str | Path) -> Path:
    """Write the adapter of ``model`` to folder ``path`` atomically; return the folder.

    Raises:
        TypeError: ``model`` was not returned by :func:`zoo.wrap`.
        FileExistsError: ``path`` is a file, or a folder holding what zoo did not write (zoo.runtime.written).
    """
    if not isinstance(model, ZooModel):
        raise TypeError(f"save_adapter needs a model returned by zoo.wrap, got {type(model).__name__}")
    target = Path(path)
    with replacing_dir(target, "an adapter", ours=written_adapter) as staging:
        _write_adapter(model, staging)
    return target


def _write_adapter(model: ZooModel, folder: Path) -> None:
    tensors = {k: v.detach().cpu().clone().contiguous() for k, v in model.adapter_state_dict().items()}
    save_file(tensors, str(folder / WEIGHTS))
    meta = {
        "format": FORMAT,
        "method": model.method,
        "config": model.method_config.to_dict(),
        "zoo_version": __version__,
        "plugin": plugin_of(model.spec),
        "base_fingerprint": model.base_fingerprint,
        "model_kind": model.model_kind,
        "weights_sha256": _sha256(folder / WEIGHTS),
    }
    meta = json.loads(json.dumps(meta, default=str))  # exactly what the file will hold (tuples become lists), to checksum
    write_json(folder / CONFIG, {**meta, "config_sha256": config_checksum(meta)})


def plugin_of(spec: MethodSpec) -> dict[str, str | None] | None:
    """The distribution that registered a plugin's method and its version, as ``adapter_config.json`` records them
    (None for zoo's own methods: ``zoo_version`` says which)."""
    return None if spec.source == "zoo" else {"distribution": spec.source, "version": spec.source_version}


def warn_other_plugin(meta: dict, spec: MethodSpec, config: Path) -> None:
    """Warn when the adapter in ``config`` was saved under another distribution or version of its method's plugin."""
    saved, here = meta.get("plugin"), plugin_of(spec)
    if saved is not None and saved != here:
        now = "zoo itself" if here is None else f"{here['distribution']} {here['version']}"
        log.warning(
            "%s was saved with method %r of plugin %s %s, and %s provides it here: a plugin may change what its "
            "tensors mean between versions; install %s==%s if the adapter does not behave as it did",
            config,
            spec.name,
            saved.get("distribution"),
            saved.get("version"),
            now,
            saved.get("distribution"),
            saved.get("version"),
        )


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
    if not isinstance(meta, dict):
        raise ValueError(f"{folder / CONFIG} is corrupt: it holds a JSON {type(meta).__name__}, not an object")
    if "format" not in meta and "method" not in meta:
        raise ValueError(
            f"{str(folder)!r} is not an adapter folder zoo or peft wrote: its {CONFIG} names neither a zoo "
            "'format' and 'method' nor a peft 'peft_type'; expected a folder from zoo.save_adapter, zoo.export_peft "
            "or peft's save_pretrained"
        )
    version = meta.get("format")
    if not isinstance(version, int) or version not in _ENTRIES:
        raise ValueError(
            f"{folder / CONFIG} has format {version!r} (written by zoo {meta.get('zoo_version')!r}); "
            f"zoo {__version__} reads formats {sorted(_ENTRIES)}: load it with the zoo that wrote it"
        )
    if _ENTRIES[version] - set(meta):
        raise ValueError(f"{folder / CONFIG} is corrupt: it lacks {sorted(_ENTRIES[version] - set(meta))}")
    if version >= 2 and config_checksum(meta) != meta["config_sha256"]:
        raise ValueError(
            f"{folder / CONFIG} was modified or is corrupt: its entries do not match the checksum saved with them "
            "(config_sha256); an adapter's config belongs to its weights: save the trained model again instead"
        )
    if version != FORMAT:
        log.warning(
            "%s has the old format %s: %s; save the adapter again to upgrade it", folder / CONFIG, version, _WEAKER[version]
        )
    if _sha256(folder / WEIGHTS) != meta["weights_sha256"]:
        raise ValueError(f"{folder / WEIGHTS} is corrupt: its checksum differs from the one in {CONFIG}")
    return meta


def load_adapter(base_model: nn.Module, path: str | Path) -> ZooModel:
    """Wrap ``base_model`` with the adapter saved in ``path`` and load its weights.

    ``path`` is a folder :func:`save_adapter` wrote, or a peft adapter folder (its config names a
    ``peft_type``), which is converted to the zoo method that reproduces it (:func:`zoo.io.peft_interchange.import_peft`).
    Returns the model in eval mode, ready for inference (``.train()`` to train it further).

    Raises:
        FileNotFoundError / ValueError: missing, corrupt or edited files, a config its method
            refuses, an adapter saved for another base model, or weights that do not fit the
            config (refused before the adapter is allocated).
        KeyError: the adapter's method is not registered here.
    """
    folder = Path(path)
    if read_peft_config(folder) is not None:
        return import_peft(base_model, folder)
    meta = read_adapter_config(folder)
    spec = get_method(meta["method"])
    warn_other_plugin(meta, spec, folder / CONFIG)
    cfg = method_config(spec, meta["config"], folder / CONFIG)
    found = {1: sampled_weights_fingerprint, 2: lambda m: fingerprint(m, version=1), 3: fingerprint}[meta["format"]](base_model)
    if found != meta["base_fingerprint"]:
        raise ValueError(
            f"adapter in {str(folder)!r} was saved for another base model (fingerprint "
            f"{meta['base_fingerprint']}, this model's is {found}); load it onto the model it was trained on"
        )
    weights = folder / WEIGHTS
    shapes = file_shapes(weights)
    implied = implied_shapes(base_model, spec, cfg)
    if implied is not None:
        check_shapes(shapes, implied, weights, spec.name)
    model = wrap(base_model, cfg)
    # what the real wrap created: the same as implied (then this is cheap), or the only check where the dry run failed
    check_shapes(shapes, {name: tuple(p.shape) for name, p in model.adapter_state_dict().items()}, weights, spec.name)
    params = dict(model.model.named_parameters())
    with torch.no_grad():
        for name, value in load_file(str(weights)).items():
            params[name].copy_(value)
    return model
