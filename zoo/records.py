"""Reading a run's ``metrics.json`` where one bad file must not stop the rest.

zoo writes metrics.json atomically and last, yet a folder can still hold one that a reader
cannot use: a truncated copy, a hand edit, a record of an older zoo, another tool's file.
zoo-report over a sweep and a resumed sweep skip such a file with a warning naming it,
instead of failing on the first KeyError. Each reader names the keys it needs and their types.
"""
from __future__ import annotations

import json
from pathlib import Path

NUMBER = (int, float)
OPTIONAL_DICT = (dict, type(None))


class UnusableRecord(ValueError):
    """A metrics.json that is not a run's record with the keys a reader needs."""


def read_record(path: Path, needs: dict[str, type | tuple[type, ...]]) -> dict:
    """The record in ``path``, checked to hold every key of ``needs`` with a value of its type(s).

    Raises:
        UnusableRecord: naming the file and what is wrong with it.
    """
    try:
        record = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise UnusableRecord(f"{path} is unreadable ({err})") from err
    if not isinstance(record, dict):
        raise UnusableRecord(f"{path} holds a JSON {type(record).__name__}, not a run's record (an object)")
    missing = sorted(key for key in needs if key not in record)
    if missing:
        raise UnusableRecord(f"{path} lacks {', '.join(missing)}: not a finished run's record")
    wrong = sorted(key for key, kind in needs.items() if not isinstance(record[key], kind))
    if wrong:
        raise UnusableRecord(f"{path} has values of the wrong type for {', '.join(f'{k} ({record[k]!r})' for k in wrong)}")
    return record
