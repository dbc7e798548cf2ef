"""peft's method-comparison results, both ways: a zoo run as one such JSON file, and such a file as a row of zoo-report.

peft's ``method_comparison`` benchmark writes one JSON object per experiment with three keys: ``run_info`` (when, how long,
the experiment's name, its training config and its peft config), ``train_info`` (memory, training time, adapter file size,
parameter counts, status, and ``metrics``: one entry per evaluation during training and a last one with the test scores) and
``meta_info`` (model, data sets, package versions, system). :func:`to_peft` fills that layout with a zoo record's values and
null where zoo has none; :func:`from_peft` reads one back as a run of zoo-report, marked as another source (its method
``<name> (peft)``, ``source: peft``). docs/peft-results-format.md lists every field and where its value comes from.

A file zoo wrote says so (``meta_info.package_info["zoo-peft-version"]``): :func:`read_peft_results`, which finds peft's
files in a sweep folder, skips those, whose runs are the folder's own records.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from zoo.registry import get_method, list_methods
from zoo.runtime.atomic import write_text
from zoo.task_kinds import get_task_kind, list_task_kinds

LAYOUT = ("run_info", "train_info", "meta_info")
ZOO_VERSION = "zoo-peft-version"
"""The key of ``meta_info.package_info`` that marks a file zoo wrote."""
SOURCE = "peft"
SPLITS = ("test", "valid")
"""The prefixes of a score's key in an entry of ``train_info.metrics`` (``test accuracy``), by the split it was measured on."""


def experiment_name(run: dict) -> str:
    """``<method>/<model>-<task>-seed<seed>[-sample<sample seed>]``: peft's ``<method>/<experiment>``."""
    sample = (run.get("task_config") or {}).get("sample_seed")
    return f"{run['method']}/{run['model']}-{run['task']}-seed{run['seed']}" + (f"-sample{sample}" if sample is not None else "")


def _peft_config(run: dict) -> dict | None:
    if run.get("method_config") is None:
        return None
    spec = get_method(run["method"]) if run["method"] in list_methods() else None
    return {"peft_type": spec.peft.peft_type if spec is not None and spec.peft is not None else None, **run["method_config"]}


def _metrics(run: dict, split: str) -> list[dict]:
    """Each evaluation of the run's ``history`` and a last entry with its scores, keyed as peft keys them."""
    order = [run["objective_metric"], *(m for m in run["scores"] if m != run["objective_metric"])]
    during = [
        {"step": h["step"], **{f"{split} {m}": h[m] for m in order if m in h}, "train loss": h.get("loss")}
        for h in run.get("history") or []
    ]
    return [
        *during,
        {
            "step": run["train_steps"],
            **{f"{split} {m}": run["scores"][m] for m in order},
            "train loss": run.get("final_loss"),
            "train samples": run.get("train_examples"),
            "train total tokens": run.get("train_tokens"),
        },
    ]


def _train_config(run: dict) -> dict:
    """peft's ``run_info.train_config`` of a run's record."""
    trainer = (run.get("run_config") or {}).get("trainer") or {}
    task = run.get("task_config") or {}
    precision = trainer.get("mixed_precision")
    return {
        "model_id": run["model"],
        "dtype": (run.get("model_config") or {}).get("dtype"),
        "max_seq_length": task.get("max_length"),
        "batch_size": trainer.get("batch_size"),
        "batch_size_eval": None,
        "max_steps": run["train_steps"],
        "eval_steps": trainer.get("eval_every") or None,
        "compile": None,
        "query_template": task.get("template"),
        "seed": run["seed"],
        "grad_norm_clip": trainer.get("max_grad_norm"),
        "optimizer_type": None,
        "optimizer_kwargs": {"lr": run.get("learning_rate"), "weight_decay": trainer.get("weight_decay")},
        "lr_scheduler": trainer.get("schedule"),
        "use_amp": None if precision is None else precision != "no",
        "autocast_adapter_dtype": None,
        "generation_kwargs": None,
        "attn_implementation": None,
    }


def to_peft(run: dict) -> dict:
    """A run's record (as metrics.json holds it) in peft's layout: zoo's values where it has them, None where not."""
    train_config = _train_config(run)
    split = "valid" if (run.get("task_config") or {}).get("eval_split") == "validation" else "test"
    return {
        "run_info": {
            "created_at": None,
            "total_time": None,
            "experiment_name": experiment_name(run),
            "peft_branch": None,
            "train_config": train_config,
            "peft_config": _peft_config(run),
            "error_msg": run.get("divergence") or "",
        },
        "train_info": {
            "accelerator_memory_reserved_avg": None,
            "accelerator_memory_max": run.get("peak_memory_bytes"),
            "accelerator_memory_reserved_99th": None,
            "train_time": run.get("train_seconds"),
            "file_size": run.get("adapter_bytes"),
            "num_trainable_params": run.get("trainable_params"),
            "num_total_params": run.get("total_params"),
            "status": "success",
            "metrics": _metrics(run, split),
        },
        "meta_info": {
            "model_info": {"sha": None, "created_at": None},
            "dataset_info": {run["task"]: {"sha": run.get("eval_fingerprint"), "created_at": None}},
            "package_info": {ZOO_VERSION: run.get("zoo_version")},
            "system_info": {
                "system": None,
                "release": None,
                "version": None,
                "machine": None,
                "processor": None,
                "accelerator": run.get("device_name") or run.get("device"),
            },
            "pytorch_info": None,
        },
    }


def write_peft_results(runs: list[dict], folder: Path) -> list[Path]:
    """One peft-layout JSON per run into ``folder``, named ``<method>--<experiment>.json`` as peft names its results.

    Raises:
        FileExistsError: a file of that name is there and zoo did not write it (it is never overwritten).
    """
    paths = []
    for run in runs:
        path = Path(folder) / (experiment_name(run).replace("/", "--", 1) + ".json")
        if path.exists() and not _written_by_zoo(path):
            raise FileExistsError(f"{path} exists and is not a file zoo wrote; give --peft-json another folder")
        write_text(path, json.dumps(to_peft(run), indent=2) + "\n")  # in peft's order: the first score is the objective
        paths.append(path)
    return paths


def _written_by_zoo(path: Path) -> bool:
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return is_peft_result(data) and ZOO_VERSION in ((data["meta_info"] or {}).get("package_info") or {})


def is_peft_result(data) -> bool:
    """Whether a JSON value is in peft's results layout: an object with exactly its three keys, each an object."""
    return isinstance(data, dict) and set(data) == set(LAYOUT) and all(isinstance(data[k], dict) for k in LAYOUT)


def _scores(entry: dict) -> dict:
    """A metrics entry's scores by metric name (``test accuracy`` -> ``accuracy``), in the entry's order."""
    return {
        key.split(" ", 1)[1]: value
        for key, value in entry.items()
        if key.split(" ", 1)[0] in SPLITS and " " in key and isinstance(value, (int, float)) and not isinstance(value, bool)
    }


def _kind(metric: str) -> str:
    """The first installed task kind that declares ``metric``; ``other`` where none does."""
    return next((k for k in list_task_kinds() if metric in [m.name for m in get_task_kind(k).metrics]), "other")


def _task(meta: dict) -> tuple[str, str | None]:
    """The task a peft file's runs belong to (its data sets' names joined by ``+``) and, with one data set, its digest."""
    datasets = meta.get("dataset_info") or {}
    if not datasets:
        return "unnamed dataset", None
    single = next(iter(datasets.values())) if len(datasets) == 1 else None
    return "+".join(datasets), (single or {}).get("sha")


def from_peft(data: dict) -> dict:
    """A peft-layout result as a run of zoo-report (the keys zoo.report.table.load_runs gives a record), from its last
    metrics entry with scores; what the file lacks is None (0 parameters and seconds where it names none).

    Raises:
        ValueError: not peft's layout, or no entry of ``train_info.metrics`` holds a score.
    """
    if not is_peft_result(data):
        raise ValueError(f"not peft's results layout: need exactly the keys {list(LAYOUT)}, each an object, got {sorted(data)}")
    run_info, train, meta = data["run_info"], data["train_info"], data["meta_info"]
    config = run_info.get("train_config") or {}
    entries = [e for e in train.get("metrics") or [] if isinstance(e, dict)]
    scored = [e for e in entries if _scores(e)]
    if not scored:
        raise ValueError(f"{run_info.get('experiment_name')!r} has no metrics entry with a score (keys like 'test accuracy')")
    final, scores = scored[-1], _scores(scored[-1])
    name, _, variant = (run_info.get("experiment_name") or "unnamed/").partition("/")
    task, fingerprint = _task(meta)
    trainable, total = train.get("num_trainable_params"), train.get("num_total_params")
    objective = next(iter(scores))
    return {
        "method": f"{name} ({SOURCE})",
        "source": SOURCE,
        "_overrides": variant,
        "_folder": None,
        "model": config.get("model_id") or "?",
        "task": task,
        "task_kind": _kind(objective),
        "objective_metric": objective,
        "scores": scores,
        "example_scores": {},
        "seed": config.get("seed") or 0,
        "task_config": {},
        "method_config": run_info.get("peft_config"),
        "learning_rate": (config.get("optimizer_kwargs") or {}).get("lr"),
        "run_config": {"trainer": {"batch_size": config.get("batch_size")}},
        "trainable_params": trainable or 0,
        "total_params": total,
        "trainable_percent": 100 * trainable / total if trainable and total else 0.0,
        "train_seconds": train.get("train_time") or 0.0,
        "train_steps": final.get("step"),
        "final_loss": final.get("train loss"),
        "train_examples": final.get("train samples"),
        "train_tokens": final.get("train total tokens"),
        "peak_memory_bytes": train.get("accelerator_memory_max", train.get("cuda_memory_max")),
        "adapter_bytes": train.get("file_size"),
        "history": [
            {"step": e.get("step"), "loss": e.get("train loss"), **_scores(e)} for e in entries if e is not final and _scores(e)
        ],
        "divergence": run_info.get("error_msg") or None,
        "eval_fingerprint": fingerprint,
        **_provenance(meta),
        **NOT_IN_PEFT,
    }


NOT_IN_PEFT = {
    "diverged": False,
    "baseline_scores": {},
    "base": None,
    "flips": None,
    "forgetting": None,
    "latency": None,
    "device": None,
}
"""A zoo-report run's keys that peft's layout has no field for."""


def _provenance(meta: dict) -> dict:
    system = meta.get("system_info") or {}
    return {
        "zoo_version": (meta.get("package_info") or {}).get(ZOO_VERSION),
        "device_name": system.get("accelerator") or system.get("gpu"),
    }


def read_peft_results(folder: Path) -> list[dict]:
    """The runs of every peft-layout JSON under ``folder`` (zoo.report.table.load_runs reads zoo's own records), files zoo
    wrote left out; a file in the layout that cannot be read as a run is skipped with a warning naming it."""
    runs = []
    for path in sorted(Path(folder).rglob("*.json")):
        try:
            data = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            continue
        if not is_peft_result(data) or ZOO_VERSION in ((data["meta_info"].get("package_info")) or {}):
            continue
        try:
            runs.append(from_peft(data))
        except ValueError as err:
            print(f"zoo-report: {path}: {err}; skipped", file=sys.stderr)
    return runs
