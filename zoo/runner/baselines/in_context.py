"""``in_context``: the base model with ``task.demonstrations`` examples per class before the query (LM-BFF's
demonstrations), untrained. Runs with demonstrations record it (``in_context`` in metrics.json)."""

from zoo.runner.baselines.spec import BaselineSpec, register_baseline

IN_CONTEXT = register_baseline(
    BaselineSpec(
        "in_context",
        formulation="prompt",
        demonstrations=True,
        model_kinds=("causal_lm",),
        summary="the base model with demonstrations in the prompt",
    )
)
