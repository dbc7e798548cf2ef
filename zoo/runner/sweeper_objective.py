"""What ``zoo`` returns to a Hydra sweeper, and the refusal that keeps an optimising sweeper off the test split.

Hydra's basic sweeper ignores what a job returns. A sweeper that optimises it
(hydra-optuna-sweeper: ``zoo -m hydra/sweeper=optuna 'trainer.learning_rate=tag(log, interval(1e-5, 1e-1))'``,
or any other than the basic one) chooses by the score ``zoo`` returns, the run's objective on its
evaluation split (``RunRecord.objective``). On the test split (every task's default) that search
would pick the values that did best on the test set, and the test score of the best trial would
be optimistic. So under such a sweeper a run must evaluate on ``task.eval_split=validation``:
:func:`check_sweeper_objective` refuses any other split before the run starts, naming the fix.
The values it chooses are then run once more on the test split for the figure to report.
"""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf

BASIC_SWEEPER = "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"
"""The one sweeper known to ignore what a job returns."""
OBJECTIVE_SPLIT = "validation"


def check_sweeper_objective(cfg: DictConfig, hydra_cfg: DictConfig) -> None:
    """Refuse a multirun under a sweeper other than the basic one whose runs would return a score on the test split.

    Raises:
        ValueError: naming the sweeper, the run's split and the override that fixes it.
    """
    sweeper = OmegaConf.select(hydra_cfg, "sweeper._target_")
    multirun = str(OmegaConf.select(hydra_cfg, "mode")) == "RunMode.MULTIRUN"
    split = OmegaConf.select(cfg, "task.eval_split")
    if multirun and sweeper not in (None, BASIC_SWEEPER) and split != OBJECTIVE_SPLIT:
        raise ValueError(
            f"the sweeper {sweeper} optimises what zoo returns, the run's score on its evaluation split, and this "
            f"run evaluates on {split!r}: a search must not choose on the test split. Add "
            f"task.eval_split={OBJECTIVE_SPLIT} to the sweep, then run the values it chooses once on the test split "
            f"(docs/learning-rate-search.md)"
        )
