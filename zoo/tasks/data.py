"""The data a classification task hands to the runner."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Example:
    text: str
    label: int


def examples_fingerprint(examples: list) -> str:
    """A hex digest of ``examples``' fields in order (an :class:`Example`'s text and label, a generation pair's text and
    response): equal digests, the same examples in the same order."""
    return hashlib.sha256(json.dumps([list(dataclasses.astuple(e)) for e in examples]).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Splits:
    """A source's named splits (``train`` and ``validation`` and/or ``test``) before sampling: labelled examples, or
    (text, response) pairs (zoo.tasks.pairs)."""

    splits: dict[str, list]
    source: str
    """Where the data came from, for error messages."""
    label_names: list[str] = field(default_factory=list)
    """A labelled source's class names, in class order; empty for pairs."""
    read: list[str] = field(default_factory=list, compare=False, repr=False)
    """The splits :meth:`split` handed out, in order (a run records them: a search on validation can show it never read test)."""

    def split(self, name: str) -> list:
        if name not in self.splits:
            raise ValueError(f"{self.source} has no {name!r} split; it has {sorted(self.splits)} (set task.eval_split)")
        self.read.append(name)
        return self.splits[name]


@dataclass(frozen=True)
class ClassificationData:
    """Train and evaluation examples plus the class names; labels index ``label_names``."""

    train: list[Example]
    eval: list[Example]
    label_names: list[str]
    splits_read: tuple[str, ...] = field(default=(), compare=False)
    """The source's splits these examples were drawn from (zoo.tasks.config.build_task), each once."""

    def __post_init__(self) -> None:
        k = len(self.label_names)
        if k < 2:
            raise ValueError(f"a classification task needs at least two classes, got {self.label_names}")
        for split, examples in (("train", self.train), ("eval", self.eval)):
            if not examples:
                raise ValueError(f"the {split} split is empty")
            bad = sorted({e.label for e in examples if not 0 <= e.label < k})
            if bad:
                raise ValueError(f"{split} labels {bad} are outside 0..{k - 1} (classes {self.label_names})")
        for split, what in ((self.train, "training"), (self.eval, "evaluation")):
            missing = sorted(set(range(k)) - {e.label for e in split})
            if missing:
                raise ValueError(
                    f"classes {[self.label_names[i] for i in missing]} have no {what} example (after filtering and sampling)"
                )
