"""Entry-point groups that third-party packages register plug-ins through: task kinds and baselines (methods load
through zoo.registry, which also records each method's distribution).

Each entry point of a group is a module (or object) that registers what it brings when it is
imported. A group loads once per process, on the first lookup that needs it; a plug-in whose
import fails is logged with its distribution's name and the others load.
"""
from __future__ import annotations

import importlib.metadata
import logging

log = logging.getLogger(__name__)
_loaded: dict[str, dict[str, str]] = {}


def load_entry_points(group: str) -> dict[str, str]:
    """Import every entry point of ``group`` (once); return ``{distribution: error}`` of those that failed."""
    if group in _loaded:
        return dict(_loaded[group])
    errors = _loaded[group] = {}
    for ep in importlib.metadata.entry_points(group=group):
        dist = ep.dist.name if ep.dist is not None else ep.value
        try:
            ep.load()
        except Exception as err:  # a broken plug-in must not take the others down
            errors[dist] = f"{type(err).__name__}: {err}"
            log.warning("zoo plug-in %r of group %r from distribution %r failed to load: %s", ep.name, group, dist, errors[dist])
    return dict(errors)
