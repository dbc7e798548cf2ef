"""zoo: parameter-efficient fine-tuning methods side by side, behind one ``wrap`` contract."""

from zoo import methods as _builtin_methods  # noqa: F401  (registers the built-in methods)
from zoo import task_kinds as _builtin_task_kinds  # noqa: F401  (registers the built-in task kinds)
from zoo.io.adapter_io import load_adapter, save_adapter
from zoo.io.peft_interchange import export_peft
from zoo.method import Adapter, MethodConfig, MethodSpec, TaskContext
from zoo.optimizer_recipe import OptimizerRecipe
from zoo.peft_format import PeftFormat
from zoo.registry import get_method, list_methods, register
from zoo.runtime import third_party_logs as _third_party_logs  # noqa: F401  (quiets bitsandbytes' CPU kernel notice)
from zoo.version import __version__
from zoo.wrapped import ZooModel, count_parameters, merge, unmerge, wrap

__all__ = [
    "Adapter",
    "MethodConfig",
    "MethodSpec",
    "PeftFormat",
    "ZooModel",
    "__version__",
    "count_parameters",
    "export_peft",
    "get_method",
    "list_methods",
    "load_adapter",
    "merge",
    "register",
    "save_adapter",
    "TaskContext",
    "unmerge",
    "wrap",
    "OptimizerRecipe",
]
