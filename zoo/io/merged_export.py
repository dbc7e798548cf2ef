"""A run's adapter folded into its base model, as a plain transformers folder for deployment.

A run folder records the base model it wrapped (``metrics.json``: ``model_config``) and holds its
adapter (``adapter/``). The base is rebuilt from that record, the adapter loaded (its fingerprint
check proves it is the same base) and merged, which takes every module the method injected out again and removes
every parametrisation it registered, keeping the merged values (:mod:`zoo.models.layout`); :mod:`zoo.io.base_structure`
checks that what is left is the base model's own tensors, so what is saved is its architecture with the update in its weights:
``AutoModelForCausalLM.from_pretrained(out)`` needs no zoo.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from zoo.io.adapter_io import load_adapter
from zoo.io.base_structure import BaseStructure
from zoo.io.export_dir import write_record
from zoo.io.records import RunRecord
from zoo.models.load import ModelConfig, load_model
from zoo.registry import get_method, list_methods
from zoo.runtime.written import claim, replacing_dir
from zoo.tasks.formulation import trains_head
from zoo.wrapped import ZooModel, merge

METRICS = "metrics.json"
ADAPTER = "adapter"


def read_run(run_dir: Path) -> RunRecord:
    """The record of a finished method run in ``run_dir``, checked to have an adapter to export.

    Raises:
        FileNotFoundError: no ``metrics.json`` or no ``adapter/`` folder in ``run_dir``.
        ValueError: a baseline run, or one that trained a classification head beside the adapter.
    """
    if not (run_dir / METRICS).is_file():
        raise FileNotFoundError(
            f"{str(run_dir)!r} is not a finished zoo run: it has no {METRICS} (a run folder holds {METRICS} and {ADAPTER}/)"
        )
    record = RunRecord.read(run_dir / METRICS)
    if record.baseline:
        raise ValueError(f"{str(run_dir)!r} is a run of baseline {record.baseline!r}: it trained no adapter to export")
    if trains_head(record.formulation):
        raise ValueError(
            f"the run in {str(run_dir)!r} trained a classification head (head.safetensors) beside its adapter; "
            "an exported transformers model would lack it: export runs of the prompt formulation"
        )
    if not (run_dir / ADAPTER).is_dir():
        raise FileNotFoundError(f"run {str(run_dir)!r} saved no {ADAPTER}/ folder (was it run with save_adapter=false?)")
    return record


def load_run(run_dir: Path, record: RunRecord) -> tuple[ZooModel, Any]:
    """The run's base model with its adapter loaded, and the base model's tokenizer."""
    base, tokenizer = load_model(ModelConfig(**record.model_config))
    return load_adapter(base, run_dir / ADAPTER), tokenizer


def merged_model(run_dir: Path) -> tuple[nn.Module, Any, RunRecord]:
    """The base model of the run in ``run_dir`` with its adapter merged in, its tokenizer, and the run's record.

    Raises:
        ValueError: the run's method is not mergeable (naming the ones that are), refuses to merge its config, or its merge
            does not leave the base model's tensors (:class:`~zoo.io.base_structure.MergedTensorsError`); see also :func:`read_run`.
    """
    record = read_run(run_dir)
    spec = get_method(record.method)
    if not spec.mergeable:
        mergeable = [m for m in list_methods() if get_method(m).mergeable]
        raise ValueError(
            f"method {spec.name!r} of the run in {str(run_dir)!r} cannot be merged into the base weights; "
            f"mergeable methods: {mergeable} (export it with --peft where peft has it)"
        )
    base, tokenizer = load_model(ModelConfig(**record.model_config))
    structure = BaseStructure(base)
    merge(load_adapter(base, run_dir / ADAPTER))
    structure.check(base, spec.name)
    return base, tokenizer, record


def export_merged(run_dir: str | Path, out: str | Path) -> Path:
    """Write the run's merged model and its tokenizer to folder ``out`` (``save_pretrained``), atomically.

    Raises:
        FileExistsError: ``out`` is a file or holds what zoo did not write (zoo.runtime.written: never replaced).
        ValueError / FileNotFoundError: see :func:`merged_model`.
    """
    run_dir, target = Path(run_dir), Path(out)
    claim(target, "a merged model")  # before the work of merging; replacing_dir checks again
    model, tokenizer, record = merged_model(run_dir)
    with replacing_dir(target, "a merged model") as staging:
        model.save_pretrained(staging)
        # zoo pads on the left (the answer is the last token); an attribute set after init is not saved unless named here
        tokenizer.init_kwargs["padding_side"] = tokenizer.padding_side
        tokenizer.save_pretrained(staging)
        write_record(
            staging,
            {
                "export": "merged",
                "method": record.method,
                "method_config": record.method_config,
                "model_config": record.model_config,
                "run": str(run_dir.resolve()),
            },
        )
    return target
