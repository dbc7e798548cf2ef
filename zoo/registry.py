"""The method registry: ``register``, ``get_method``, ``list_methods`` and entry-point loading.

Knows nothing of Hydra, data or training. Built-in methods are imported explicitly by
``zoo.methods``; third-party ones arrive through the entry-point group ``zoo.methods``,
whose each entry point is a module (or object) that calls :func:`register` when loaded.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib.metadata
import logging
import re
from collections.abc import Callable

from zoo.method import MODEL_KINDS, POSITIONAL_SCHEMES, MethodConfig, MethodSpec
from zoo.optimizer_recipe import OptimizerRecipe
from zoo.peft_format import PeftFormat
from zoo.runtime.plugins import distribution, load_one

ENTRY_POINT_GROUP = "zoo.methods"
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_CAPABILITIES = {f.name for f in dataclasses.fields(MethodSpec)} - {"name", "config", "wrap_fn", "source", "source_version"}

log = logging.getLogger(__name__)
_methods: dict[str, MethodSpec] = {}
_plugin_errors: dict[str, str] = {}
_plugins_loaded = False
_current_source = "zoo"
_current_version: str | None = None


def register(name: str, *, config: type[MethodConfig], **capabilities) -> Callable:
    """Decorator registering ``fn(model, cfg) -> nn.Module`` as method ``name``.

    Args:
        name: lower-case identifier (``[a-z][a-z0-9_]*``), used as ``method=<name>``.
        config: the method's config dataclass, a subclass of :class:`MethodConfig`.
        **capabilities: flags of :class:`MethodSpec` (``identity_at_init``, ``mergeable``,
            ``gradient_free``, ``model_kinds``, ``positional_schemes``, ``uses_cache``, ``needs_label_words``,
            ``task_kinds``, ``quantized_base``, ``positions``, ``learning_rate``, ``refuses``, ``refuses_merge``), ``peft``, the
            method's :class:`~zoo.peft_format.PeftFormat`, and ``optimizer``, its
            :class:`~zoo.optimizer_recipe.OptimizerRecipe` (its parameter groups, its optimiser; omitted: AdamW over all
            its parameters at one rate).

    Raises:
        ValueError: bad name, duplicate name or config class, unknown capability, a peft type another
            method already imports, ``refuses_merge`` on a method that is not mergeable, an optimizer declared by a
            gradient-free method.
        TypeError: ``config`` is not a MethodConfig dataclass, ``peft`` is not a PeftFormat, ``refuses_merge`` is not a
            function, ``optimizer`` is not an OptimizerRecipe.
    """
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(f"method name {name!r} is invalid: use lower-case letters, digits and '_', starting with a letter")
    if name in _methods:
        raise ValueError(f"method {name!r} is already registered (by {_methods[name].source}); choose another name")
    if not (isinstance(config, type) and issubclass(config, MethodConfig) and dataclasses.is_dataclass(config)):
        raise TypeError(f"config for {name!r} must be a dataclass subclassing zoo.MethodConfig, got {config!r}")
    for spec in _methods.values():
        if spec.config is config:
            raise ValueError(
                f"config class {config.__name__} is already registered for method {spec.name!r}; each method needs its own config class"
            )
    unknown = set(capabilities) - _CAPABILITIES
    if unknown:
        raise ValueError(f"unknown capabilities {sorted(unknown)} for {name!r}; valid: {sorted(_CAPABILITIES)}")
    kinds = tuple(capabilities.get("model_kinds", MODEL_KINDS))
    if not kinds or set(kinds) - set(MODEL_KINDS):
        raise ValueError(f"model_kinds {kinds!r} for {name!r} must be a non-empty subset of {MODEL_KINDS}")
    capabilities["model_kinds"] = kinds
    schemes = tuple(capabilities.get("positional_schemes", POSITIONAL_SCHEMES))
    if not schemes or set(schemes) - set(POSITIONAL_SCHEMES):
        raise ValueError(f"positional_schemes {schemes!r} for {name!r} must be a non-empty subset of {POSITIONAL_SCHEMES}")
    capabilities["positional_schemes"] = schemes
    if capabilities.get("task_kinds") is not None:
        capabilities["task_kinds"] = kind_names(capabilities["task_kinds"], f"method {name!r}")
    _check_peft(name, capabilities.get("peft"))
    _check_refuses_merge(name, capabilities)
    _check_optimizer(name, capabilities.get("optimizer"), capabilities.get("gradient_free", False))
    if capabilities.get("needs_label_words") and config.bind is MethodConfig.bind:
        raise TypeError(
            f"method {name!r} declares needs_label_words but {config.__name__} does not override bind(task) "
            f"to take the label token ids from the task"
        )

    def decorator(fn: Callable) -> Callable:
        _methods[name] = MethodSpec(
            name=name, config=config, wrap_fn=fn, source=_current_source, source_version=_current_version, **capabilities
        )
        return fn

    return decorator


def kind_names(kinds, owner: str) -> tuple[str, ...]:
    """``kinds`` (task kinds a method or baseline declares) as a tuple of names; checked against the registered kinds when a
    run is planned, as a plug-in's kind may register later.

    Raises:
        ValueError: not a non-empty collection of lower-case names.
    """
    names = (kinds,) if isinstance(kinds, str) else tuple(kinds)
    if not names or not all(isinstance(k, str) and _NAME.match(k) for k in names):
        raise ValueError(f"{owner}: task_kinds {kinds!r} must be a non-empty tuple of task kind names (or None: every kind)")
    return names


def _check_refuses_merge(name: str, capabilities: dict) -> None:
    """Refuse a ``refuses_merge`` that is not a function, or that narrows a method that does not merge at all."""
    refuses_merge = capabilities.get("refuses_merge")
    if refuses_merge is None:
        return
    if not callable(refuses_merge):
        raise TypeError(
            f"refuses_merge of method {name!r} must be a function (cfg, model) -> reason or None, got {refuses_merge!r}"
        )
    if not capabilities.get("mergeable"):
        raise ValueError(
            f"method {name!r} declares refuses_merge without mergeable=True: refuses_merge says which configs of a "
            "mergeable method cannot merge"
        )


def _check_peft(name: str, peft: object) -> None:
    """Refuse a ``peft=`` that is not a PeftFormat, or that imports a peft type another method already imports."""
    if peft is None:
        return
    if not isinstance(peft, PeftFormat):
        raise TypeError(
            f"peft for method {name!r} must be a zoo.PeftFormat (peft_type, export, and optionally import_, "
            f"equivalent_config, zoo_overrides) or None, got {peft!r}"
        )
    if peft.import_ is None:
        return
    for spec in _methods.values():
        if spec.peft is not None and spec.peft.import_ is not None and spec.peft.peft_type == peft.peft_type:
            raise ValueError(
                f"method {name!r} declares an importer for peft type {peft.peft_type!r}, which method "
                f"{spec.name!r} already imports; declare import_=None to export only"
            )


def _check_optimizer(name: str, optimizer: object, gradient_free: bool) -> None:
    """Refuse an ``optimizer=`` that is not an OptimizerRecipe, or one declared by a method that no optimiser steps."""
    if optimizer is None:
        return
    if not isinstance(optimizer, OptimizerRecipe):
        raise TypeError(
            f"optimizer for method {name!r} must be a zoo.OptimizerRecipe (groups, optimizer) or None, got {optimizer!r}"
        )
    if gradient_free:
        raise ValueError(f"method {name!r} is gradient_free (solved by fit, never stepped): it cannot declare an optimizer")


def unregister(name: str) -> None:
    """Remove a method (for tests and interactive sessions)."""
    get_method(name)
    del _methods[name]


def load_plugins() -> dict[str, str]:
    """Load every ``zoo.methods`` entry point once; return ``{distribution: error}`` of failures.

    A plugin whose import fails is logged with its distribution's name and its error, the methods it
    registered before failing are removed again, and the others load.
    """
    global _plugins_loaded, _current_source, _current_version
    if _plugins_loaded:
        return dict(_plugin_errors)
    _plugins_loaded = True
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        _current_source, _current_version = distribution(ep), ep.dist.version if ep.dist is not None else None
        try:
            error = load_one(ep, (_methods,))
        finally:
            _current_source, _current_version = "zoo", None
        if error is not None:
            _plugin_errors[distribution(ep)] = error
            log.warning(
                "zoo plugin %r from distribution %r failed to load, and registers no method: %s", ep.name, distribution(ep), error
            )
    return dict(_plugin_errors)


def list_methods() -> list[str]:
    """Names of all registered methods, built-in and plugin, sorted."""
    load_plugins()
    return sorted(_methods)


def get_method(name: str) -> MethodSpec:
    """The spec of method ``name``; raises ``KeyError`` naming the closest registered names and the plugins that failed to load."""
    load_plugins()
    if name in _methods:
        return _methods[name]
    close = difflib.get_close_matches(str(name), list(_methods), n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    failed = "".join(f"; plugin {dist} failed to load: {error}" for dist, error in _plugin_errors.items())
    raise KeyError(f"unknown method {name!r}.{hint} Registered: {', '.join(sorted(_methods))}{failed}")


def spec_for_config(cfg: MethodConfig) -> MethodSpec:
    """The spec whose config class is exactly ``type(cfg)``."""
    load_plugins()
    for spec in _methods.values():
        if type(cfg) is spec.config:
            return spec
    raise TypeError(f"{type(cfg).__name__} is not the config of any registered method; registered: {', '.join(sorted(_methods))}")
