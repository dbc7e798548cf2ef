"""What the code says about one registered method: its docstring, paper, config fields, flags and what trains."""

from __future__ import annotations

import ast
import dataclasses
import functools
import inspect
import re
import sys
from pathlib import Path

import zoo
from zoo.method import MethodSpec
from zoo.testing.helpers import wrap_for_test
from zoo.testing.models import make_model

PAPER = re.compile(r'(?:\(|;\s*)([^;()]+?),\s*(\d{4}),(?:\s*"[^"]*",)?\s*arXiv:(\d{4}\.\d{4,5})')
"""A citation of a module docstring's first paragraph: ``(Hu et al., 2021, arXiv:2106.09685)``; several split by ``;``."""
WHERE = "tiny-llama"
"""The model on which ``trains`` wraps each method (the default run's)."""
NOT_FLAGS = {"name", "config", "wrap_fn", "source", "source_version"}


def builtin_methods() -> list[str]:
    """The methods of ``zoo.methods`` (plugins, the peft bridge included, are left out), sorted.

    Told by where the wrap function lives, not by ``source``: importing the bridge directly registers it as zoo's.
    """
    return [name for name in zoo.list_methods() if zoo.get_method(name).wrap_fn.__module__.startswith("zoo.methods.")]


def docstring(spec: MethodSpec) -> str:
    """The docstring of the module that defines the method's wrap function."""
    return inspect.getdoc(sys.modules[spec.wrap_fn.__module__]) or ""


def source_path(spec: MethodSpec) -> str:
    """The method's file, relative to the repository (``zoo/methods/lora.py``)."""
    return Path(inspect.getfile(spec.wrap_fn)).resolve().relative_to(Path(zoo.__file__).resolve().parents[1]).as_posix()


def papers(spec: MethodSpec) -> list[tuple[str, str, str]]:
    """(authors, year, arXiv id) of each paper the docstring's first paragraph cites; empty for zoo's own methods."""
    first = " ".join(docstring(spec).split("\n\n")[0].split())
    return PAPER.findall(first)


def _field_docs(config: type) -> dict[str, str]:
    """Each field's attribute docstring (the string literal under it), through the config's dataclass bases."""
    docs: dict[str, str] = {}
    for cls in reversed(config.__mro__):
        if not dataclasses.is_dataclass(cls) or cls.__module__ == "builtins":
            continue
        body = ast.parse(inspect.getsource(cls).lstrip()).body[0].body
        for node, after in zip(body, body[1:]):
            if (
                isinstance(node, ast.AnnAssign)
                and isinstance(node.target, ast.Name)
                and isinstance(after, ast.Expr)
                and isinstance(after.value, ast.Constant)
                and isinstance(after.value.value, str)
            ):
                docs[node.target.id] = " ".join(after.value.value.split())
    return docs


def fields(spec: MethodSpec) -> list[tuple[str, str, object, str]]:
    """(name, type, default, description) of each field of the method's config."""
    docs = _field_docs(spec.config)
    rows = []
    for f in dataclasses.fields(spec.config):
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        rows.append((f.name, str(f.type), default, docs.get(f.name, "")))
    return rows


def flags(spec: MethodSpec) -> list[tuple[str, object]]:
    """(flag, value) of each capability flag of :class:`zoo.MethodSpec`, as the method registered it."""
    return [(f.name, getattr(spec, f.name)) for f in dataclasses.fields(MethodSpec) if f.name not in NOT_FLAGS]


@functools.cache
def trains(name: str) -> tuple[int, list[tuple[str, list[str]]]]:
    """What trains when the method wraps the tiny Llama with its defaults: the trainable parameter count, and
    (module, its adapter parameters) for each distinct module that carries some, block indices folded
    (``layers.*.self_attn.q_proj``)."""
    wrapped = wrap_for_test(name, make_model(WHERE))
    found: dict[str, list[str]] = {}
    for path, module in wrapped.named_modules():
        if module is not wrapped and isinstance(module, zoo.Adapter):
            where = re.sub(r"^(model\.)+", "", re.sub(r"\.\d+(?=\.|$)", ".*", path)).replace(".parametrizations.weight.*", "")
            found.setdefault(where, sorted({param.split(".")[0] for param in module.adapter_params()}))
    return zoo.count_parameters(wrapped)[0], list(found.items())
