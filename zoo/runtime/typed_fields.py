"""Checking a config's values against its dataclass annotations: right type, finite numbers.

Configs arrive from YAML, the command line, JSON files and Python calls; ``"16"``, ``True``
for an int and ``nan`` all parse somewhere. :func:`check_fields` refuses such a value naming
the field, before a config's own range checks compare it with anything (``nan < 1`` is False,
``"16" < 1`` raises a TypeError that names nothing).
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from typing import Any


def fits(value: Any, annotation: Any) -> bool:
    """Whether ``value`` is of type ``annotation``.

    Knows the forms configs use: ``int``, ``float`` (finite; an int is a float),
    ``bool``, ``str``, ``None``, ``list[X]`` (a list or tuple), ``dict[K, V]`` and unions of them.
    Any other annotation is left to the config's own ``__post_init__``.
    """
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(fits(value, option) for option in typing.get_args(annotation))
    if origin is list:
        (item,) = typing.get_args(annotation) or (Any,)
        return isinstance(value, list | tuple) and all(fits(v, item) for v in value)
    if origin is dict:
        key, item = typing.get_args(annotation) or (Any, Any)
        return isinstance(value, dict) and all(fits(k, key) and fits(v, item) for k, v in value.items())
    if annotation in (None, type(None)):
        return value is None
    if annotation is bool:
        return isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if annotation is float:
        return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if annotation is str:
        return isinstance(value, str)
    return True


def describe(annotation: Any) -> str:
    """``annotation`` as a reader would write it: ``float``, ``int | None``, ``list[str]``."""
    return annotation.__name__ if isinstance(annotation, type) else str(annotation).replace("typing.", "")


def _article(annotation: Any) -> str:
    """``annotation`` for a sentence: ``a finite float``, ``an int or None``."""
    words = {int: "an int", float: "a finite float", bool: "true or false", str: "a string", type(None): "None"}
    options = typing.get_args(annotation) if typing.get_origin(annotation) in (typing.Union, types.UnionType) else (annotation,)
    return " or ".join(words.get(option, f"a {describe(option)}") for option in options)


def non_finite(value: Any) -> bool:
    """Whether ``value`` is, or a list of it holds, a NaN or infinite float."""
    if isinstance(value, float):
        return not math.isfinite(value)
    return isinstance(value, list | tuple) and any(map(non_finite, value))


def field_hints(cls: type) -> dict[str, Any]:
    """The resolved annotations of dataclass ``cls``; {} where a name is imported for type checkers only."""
    try:
        return typing.get_type_hints(cls)
    except NameError:  # a plugin annotating with a name it imports only under TYPE_CHECKING: left to __post_init__
        return {}


def check_fields(config: Any) -> None:
    """Refuse a field of dataclass instance ``config`` whose value is not of its annotated type.

    Raises:
        ValueError: naming the field, its value and the type expected (NaN and infinity are no numbers).
    """
    hints = field_hints(type(config))
    for field in dataclasses.fields(config):
        value, hint = getattr(config, field.name), hints.get(field.name, Any)
        if not fits(value, hint):
            note = " (NaN and infinity are not valid numbers)" if non_finite(value) else ""
            raise ValueError(f"{field.name} must be {_article(hint)}, got {value!r}{note}")


SEEDS = range(-(2**63), 2**64)
"""The seeds ``torch.Generator.manual_seed`` takes."""


def check_seed(seed: int) -> None:
    """Refuse a seed torch cannot take, naming it."""
    if seed not in SEEDS:
        raise ValueError(f"seed must be an integer in [-2**63, 2**64) (what torch.manual_seed takes), got {seed!r}")
