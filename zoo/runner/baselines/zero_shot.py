"""``zero_shot``: the base model scoring the label words after the template, untrained.

Every run on a causal LM records it (``zero_shot`` in metrics.json): the level a method has to beat, which reports
show beside every row (``report_column``).
"""

from zoo.runner.baselines.spec import BaselineSpec, register_baseline

ZERO_SHOT = register_baseline(
    BaselineSpec(
        "zero_shot",
        formulation="prompt",
        model_kinds=("causal_lm",),
        report_column=True,
        summary="the base model on the bare template",
    )
)
