"""Recognising a JSON file that a known tool wrote: an object that holds the key that tool always writes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def read_marked(path: Path, key: str) -> dict[str, Any] | None:
    """The JSON object in ``path`` if it holds ``key``; None where the file is missing, unreadable, not an object or lacks it."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and key in data else None
