"""Baselines as registered strategies (:mod:`zoo.runner.baselines.spec`); the built-in ones register on import.

Full fine-tuning, the upper baseline, is a method (``method=full_finetune``), so it trains and
is saved like any other.
"""

from zoo.runner.baselines import in_context, linear_probe, zero_shot  # noqa: F401  (each registers itself)
from zoo.runner.baselines.spec import (
    ENTRY_POINT_GROUP,
    BaselineConfig,
    BaselineSpec,
    get_baseline,
    list_baselines,
    register_baseline,
    report_column,
    untrained_baselines,
)

__all__ = [
    "ENTRY_POINT_GROUP",
    "BaselineConfig",
    "BaselineSpec",
    "get_baseline",
    "list_baselines",
    "register_baseline",
    "report_column",
    "untrained_baselines",
]
