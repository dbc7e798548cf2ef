"""The keyword under which transformers models take their key/value cache, on the installed version.

transformers 5.24 renamed ``past_key_values`` to ``cache`` in one go: in every model's
``forward``, in ``generate`` and ``prepare_inputs_for_generation``, and in the model outputs
(``out.cache``). The old name still works there but warns (a FutureWarning; removal is
announced for 5.40 in ``forward`` and 6.0 in ``generate``); before 5.24 only the old name
exists. zoo's wrappers build and continue caches themselves, so they hand the cache on under
the installed name, and take it from their own callers under either name.

The name is read from the signature of ``prepare_inputs_for_generation``, where ``generate``
hands the cache on to ``forward``, rather than from a version number.
"""

from __future__ import annotations

import inspect
from typing import Any

from transformers import GenerationMixin

_GENERATION_INPUTS = inspect.signature(GenerationMixin.prepare_inputs_for_generation).parameters
CACHE_KWARG: str = "cache" if "cache" in _GENERATION_INPUTS else "past_key_values"
"""``"cache"`` on transformers >= 5.24, ``"past_key_values"`` before; also the output attribute's name."""


def pop_cache(kwargs: dict[str, Any]) -> Any:
    """Remove the cache a caller passed, as ``cache`` or ``past_key_values``, from ``kwargs`` and return it.

    Returns None when neither name holds a cache.

    Raises:
        ValueError: both names hold a cache.
    """
    given = {name: kwargs.pop(name) for name in ("cache", "past_key_values") if name in kwargs}
    caches = [value for value in given.values() if value is not None]
    if len(caches) > 1:
        raise ValueError("got both cache and past_key_values: pass the key/value cache under one name")
    return caches[0] if caches else None
