"""Entry-point groups that third-party packages register plug-ins through: methods, task kinds and baselines.

Each entry point of a group is a module (or object) that registers what it brings when it is
imported. A group loads once per process, on the first lookup that needs it; a plug-in whose
import fails is logged with its distribution's name and its error, the others load, and what it
registered before failing is removed again (:func:`load_one`): a half-imported plug-in leaves no
method behind that would later be reported as already registered.
"""

from __future__ import annotations

import importlib.metadata
import logging
from collections.abc import MutableMapping, Sequence
from typing import Any

log = logging.getLogger(__name__)
_loaded: dict[str, dict[str, str]] = {}
Registry = MutableMapping[str, Any]


def distribution(ep: importlib.metadata.EntryPoint) -> str:
    """The name of the distribution that declares ``ep`` (its value where none is known)."""
    return ep.dist.name if ep.dist is not None else ep.value


def load_one(ep: importlib.metadata.EntryPoint, registries: Sequence[Registry] = ()) -> str | None:
    """Import ``ep``; None on success, else its error, after taking out what it added to ``registries`` before failing."""
    before = [dict(registry) for registry in registries]
    try:
        ep.load()
    except Exception as err:  # a broken plug-in must not take the others down
        for registry, kept in zip(registries, before):
            for key in set(registry) - set(kept):
                del registry[key]
        return f"{type(err).__name__}: {err}"
    return None


def load_entry_points(group: str, registries: Sequence[Registry] = ()) -> dict[str, str]:
    """Import every entry point of ``group`` (once); return ``{distribution: error}`` of those that failed.

    ``registries``: the dicts a plug-in of the group registers into; a failed one's additions are removed.
    """
    if group in _loaded:
        return dict(_loaded[group])
    errors = _loaded[group] = {}
    for ep in importlib.metadata.entry_points(group=group):
        if (error := load_one(ep, registries)) is not None:
            errors[distribution(ep)] = error
            log.warning(
                "zoo plug-in %r of group %r from distribution %r failed to load and registers nothing: %s",
                ep.name,
                group,
                distribution(ep),
                error,
            )
    return dict(errors)
