"""The data a generation task hands to the runner: (text, response) pairs.

A pair's ``text`` fills the template's ``{text}`` (with demonstrations and chat markup, the
prompt) and its ``response`` is what the model is to write after it, in place of ``{answer}``.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Pair:
    text: str
    response: str


@dataclass(frozen=True)
class GenerationData:
    """Train and evaluation pairs of a generation task."""

    train: list[Pair]
    eval: list[Pair]
    splits_read: tuple[str, ...] = field(default=(), compare=False)
    """The source's splits these pairs were drawn from (a search on validation never reads test)."""

    def __post_init__(self) -> None:
        for split, pairs in (("train", self.train), ("eval", self.eval)):
            if not pairs:
                raise ValueError(f"the {split} split is empty")
            empty = [i for i, p in enumerate(pairs) if not p.response.strip()]
            if empty:
                raise ValueError(f"{split} pairs {empty[:10]} have an empty response: nothing to learn or score")
