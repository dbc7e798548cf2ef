"""A model's evaluation on a task's examples, as every task kind returns it (zoo.tasks.kinds)."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Evaluation:
    """A model scored on a task's evaluation examples."""

    scores: dict[str, float]
    """Every metric the kind declares, by name."""
    example_scores: dict[str, list[float]]
    """Per metric that is a mean over the examples (``MetricSpec.per_example``), each example's value, in order."""
    outputs: list
    """Each example's answer, in order: a class index, a written response."""
    details: dict = field(default_factory=dict)
    """What else the evaluation measured (a confusion matrix, the response tokens): kept in the record as it is."""

    def cached(self) -> tuple[dict, list]:
        """The ``(content, outputs)`` pair zoo.prediction_cache stores."""
        return {"scores": self.scores, "example_scores": self.example_scores, "details": self.details}, self.outputs

    @classmethod
    def from_cache(cls, content: dict, outputs: list) -> Evaluation:
        return cls(content["scores"], content["example_scores"], outputs, content["details"])
