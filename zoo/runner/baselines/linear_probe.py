"""``linear_probe``: the head formulation with the base model frozen: only a linear head on its final hidden state trains."""

from zoo.runner.baselines.spec import BaselineSpec, register_baseline

LINEAR_PROBE = register_baseline(
    BaselineSpec(
        "linear_probe",
        formulation="head",
        trains_head=True,
        task_kinds=("classification",),
        summary="a linear head on the frozen base model",
    )
)
