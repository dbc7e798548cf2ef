"""The data a classification task hands to the runner."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Example:
    text: str
    label: int


@dataclass(frozen=True)
class ClassificationData:
    """Train and evaluation examples plus the class names; labels index ``label_names``."""

    train: list[Example]
    eval: list[Example]
    label_names: list[str]

    def __post_init__(self) -> None:
        k = len(self.label_names)
        for split, examples in (("train", self.train), ("eval", self.eval)):
            if not examples:
                raise ValueError(f"the {split} split is empty")
            bad = sorted({e.label for e in examples if not 0 <= e.label < k})
            if bad:
                raise ValueError(f"{split} labels {bad} are outside 0..{k - 1} (classes {self.label_names})")
        missing = sorted(set(range(k)) - {e.label for e in self.train})
        if missing:
            raise ValueError(f"classes {[self.label_names[i] for i in missing]} have no training example")
