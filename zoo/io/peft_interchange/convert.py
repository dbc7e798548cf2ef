"""Write a zoo adapter as a peft folder, and wrap a base model with a peft folder's adapter.

Each method declares its peft counterpart where it is registered (``MethodSpec.peft``, a
:class:`~zoo.peft_format.PeftFormat`): an export uses the exporter of the model's method, an
import the importer a registered method declares for the folder's ``peft_type``. Exports load
in ``peft.PeftModel.from_pretrained`` to the same outputs, imports give the same outputs as
peft's model; where the formats do not agree the converter refuses, saying which option would
make the adapter fit (:class:`~zoo.io.peft_interchange.format.NotConvertible`). zoo never imports
peft: both directions read and write the files.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import torch
from safetensors.torch import save_file
from torch import nn

from zoo.fingerprint import VERSION as FINGERPRINT_VERSION
from zoo.fingerprint import fingerprint
from zoo.io.adapter_checks import check_shapes
from zoo.io.export_dir import export_record, write_record
from zoo.io.peft_interchange.format import CONFIG, TASK_TYPES, WEIGHTS, read_peft_folder
from zoo.peft_format import ImportPlan
from zoo.registry import get_method, list_methods
from zoo.runtime.atomic import write_json
from zoo.runtime.written import replacing_dir
from zoo.wrapped import ZooModel, wrap

log = logging.getLogger(__name__)


def _exportable() -> list[str]:
    """Registered methods that declare a peft format, sorted."""
    return [name for name in list_methods() if get_method(name).peft is not None]


def _importers() -> dict[str, Callable[..., ImportPlan]]:
    """peft type -> the importer a registered method declares for it (one per type: the registry refuses a second)."""
    formats = (get_method(name).peft for name in list_methods())
    return {f.peft_type: f.import_ for f in formats if f is not None and f.import_ is not None}


def _fingerprint_version(record: dict) -> int:
    """The fingerprint scheme of a zoo export's record: 1 where it names none (exports made before scheme 2)."""
    version = record.get("fingerprint_version", 1)
    if version not in (1, FINGERPRINT_VERSION):
        raise ValueError(
            f"a zoo export with base-model fingerprint scheme {version!r}; this zoo knows schemes 1 and "
            f"{FINGERPRINT_VERSION}: load it with the zoo that exported it"
        )
    return version


def export_peft(model: ZooModel, path: str | Path) -> Path:
    """Write ``model``'s adapter to folder ``path`` in peft's format, atomically; return the folder.

    Raises:
        TypeError: ``model`` was not returned by :func:`zoo.wrap`.
        ValueError: the method has no peft equivalent, or this adapter does not convert (the
            message names the option that would make it), or the model is merged.
        FileExistsError: ``path`` is a file or holds what zoo did not write (zoo.runtime.written).
    """
    if not isinstance(model, ZooModel):
        raise TypeError(f"export_peft needs a model returned by zoo.wrap, got {type(model).__name__}")
    peft_format = get_method(model.method).peft
    if peft_format is None:
        raise ValueError(f"method {model.method!r} has no peft format; exportable methods: {_exportable()}")
    if model.merged:
        raise ValueError("unmerge the model before exporting: peft expects unmerged base weights")
    adapter = peft_format.export(model)
    target = Path(path)
    config = {
        "peft_type": peft_format.peft_type,
        "task_type": TASK_TYPES[model.model_kind],
        "inference_mode": True,
        "base_model_name_or_path": getattr(model.config, "_name_or_path", None) or None,
        **adapter.config,
    }
    tensors = {k: v.detach().cpu().clone().contiguous() for k, v in adapter.tensors.items()}
    with replacing_dir(target, "a peft adapter") as staging:
        save_file(tensors, str(staging / WEIGHTS))
        write_json(staging / CONFIG, config)
        write_record(
            staging,
            {
                "export": "peft",
                "method": model.method,
                "method_config": model.method_config.to_dict(),
                "base_fingerprint": model.base_fingerprint,
                "fingerprint_version": FINGERPRINT_VERSION,
            },
        )
    return target


def import_peft(base_model: nn.Module, path: str | Path) -> ZooModel:
    """Wrap ``base_model`` with the adapter of peft folder ``path``: the zoo method that reproduces it, its weights loaded.

    Returns the model in eval mode. ``zoo.load_adapter`` calls this for a peft folder.

    Raises:
        ValueError: a peft type or option zoo has no equivalent of (naming it), tensors that do
            not fit the base model, or a zoo export made from another base model.
        FileNotFoundError: no safetensors weights in the folder.
    """
    folder = Path(path)
    adapter = read_peft_folder(folder)
    peft_type, importers = adapter.config["peft_type"], _importers()
    if peft_type not in importers:
        raise ValueError(
            f"{str(folder)!r} holds a peft {peft_type!r} adapter, which zoo has no method for; "
            f"importable peft types: {sorted(importers)}"
        )
    task = adapter.config.get("task_type")
    if task is not None and task not in TASK_TYPES.values():
        raise ValueError(f"{str(folder)!r} is a peft adapter for task_type {task!r}; zoo imports {sorted(TASK_TYPES.values())}")
    record = export_record(folder)  # a zoo export knows its base model; peft's own folders do not
    if (
        record is not None
        and record.get("base_fingerprint") is not None
        and record["base_fingerprint"] != (found := fingerprint(base_model, version=_fingerprint_version(record)))
    ):
        raise ValueError(
            f"{str(folder)!r} was exported by zoo from another base model (fingerprint {record['base_fingerprint']}, "
            f"this model's is {found}); load it onto the model it was trained on"
        )
    try:
        plan = importers[peft_type](base_model, adapter, folder)
    except ValueError as err:  # a config value zoo's method refuses (lora_dropout=-1): say which folder's config holds it
        if str(folder) in str(err):
            raise
        raise ValueError(f"{folder / CONFIG}: {err}") from err
    model = wrap(base_model, plan.method_config)
    weights = plan.weights(model)
    expected = {name: tuple(p.shape) for name, p in model.adapter_state_dict().items()}
    check_shapes({name: tuple(t.shape) for name, t in weights.items()}, expected, folder / WEIGHTS, model.method)
    params = dict(model.model.named_parameters())
    with torch.no_grad():
        for name, value in weights.items():
            params[name].copy_(value)
    log.info("imported peft %s adapter from %s as zoo's %r", peft_type, folder, model.method)
    return model
