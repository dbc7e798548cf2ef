"""``trainer.learning_rate=auto``: a small successive-halving search of the method's rate on the validation split, then the run.

    zoo method=lora task=movie_sentiment trainer.learning_rate=auto

A method's registered rate was chosen on the tiny models, and a rate a decade off can leave a real
checkpoint at chance. ``auto`` runs, in the run's own process and on its own model and task, the
search the benchmark runs (benchmarks/tune.py, zoo.training.halving) at a smaller budget: the
method's rate times each of :data:`~zoo.training.halving.RATE_SCALES` (6 values, 2 decades) trains
for a sixth of the run's steps and is scored on the task's validation split; the best two train
again for half of them; the best of those is the rate the run then trains at, scored on the
run's own evaluation split as any run is. Ties go to the scale nearer 1, then the lower rate; a
trial that diverged ranks below every one that did not.

Cost: 6 x 1/6 + 2 x 1/2 = 2 runs' worth of training steps and 8 evaluations of the validation
split (``task.n_eval`` examples each) before the run itself: about 3 times a plain run's training.
Each trial is a run of its own, recorded in ``<run folder>/learning_rate_search/rung<k>/scale=<s>/``
(no adapter saved, no latency or forgetting passes); the run's record lists them
(``learning_rate_search``). A trial that read the test split stops the search. With ``resume=true``
finished trials are not run again.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from pathlib import Path

from omegaconf import DictConfig, OmegaConf, open_dict

from zoo.io.records import RunRecord
from zoo.runner.pipeline import run
from zoo.runner.resume import finished_run, refuse_another_run
from zoo.runtime.distributed import launch_rank
from zoo.training.halving import RATE_SCALES, Halving, survivors
from zoo.training.learning_rate import AUTO

SEARCH = Halving(eta=3, fractions=(1 / 6, 1 / 2))
"""The schedule of ``auto``: 6 rates at a sixth of the run's steps, the best 2 at half of them."""
FOLDER = "learning_rate_search"
"""Where the trials go, under the run's folder."""
SPLIT = "validation"


def wants_search(cfg: DictConfig) -> bool:
    return OmegaConf.select(cfg, "trainer.learning_rate") == AUTO


def _trial_config(cfg: DictConfig, scale: float, steps: int) -> DictConfig:
    trial = copy.deepcopy(cfg)
    with open_dict(trial):
        trial.trainer.learning_rate = None
        trial.trainer.learning_rate_scale = scale * cfg.trainer.learning_rate_scale
        trial.trainer.max_steps = steps
        trial.task.eval_split = SPLIT
        trial.save_adapter, trial.latency, trial.forgetting.text = False, False, "none"
    return trial


def _check(cfg: DictConfig) -> None:
    """Refuse ``auto`` where there is no method rate to search, or no steps to share out."""
    import zoo

    if cfg.get("baseline") or zoo.registry.spec_for_config(OmegaConf.to_object(cfg.method)).gradient_free:
        what = f"baseline {cfg.baseline.name}" if cfg.get("baseline") else "this method, which is gradient-free,"
        raise ValueError(
            f"trainer.learning_rate=auto searches a method's learning rate, and {what} trains none; "
            "set trainer.learning_rate to a number or leave it null"
        )
    if cfg.trainer.budget != "steps":
        raise ValueError(
            f"trainer.learning_rate=auto shares out the run's steps (trainer.budget=steps), got budget="
            f"{cfg.trainer.budget}; search at budget=steps, then train at the chosen rate"
        )


def _trial(cfg: DictConfig, out_dir: Path, rung: int, scale: float, steps: int) -> RunRecord:
    folder = out_dir / FOLDER / f"rung{rung}" / f"scale={scale:g}"
    trial = _trial_config(cfg, scale, steps)
    record = (finished_run(folder, trial) if cfg.resume else None) or run(trial, folder)
    if "test" in record.splits_read:
        raise RuntimeError(
            f"the learning-rate search's trial in {folder} read the test split ({record.splits_read}); "
            "a search must see the validation split only"
        )
    return record


def _rank(trial: tuple[float, RunRecord]) -> tuple:
    """A trial's place (smaller is better): one that diverged after every one that did not, whatever it scored; then the
    best validation score; ties: the scale nearer the default, then the lower."""
    scale, record = trial
    return (record.diverged, -record.objective, abs(math.log(scale)), scale)


def _trial_entry(rung: int, steps: int, scale: float, record: RunRecord) -> dict:
    entry = {"rung": rung, "steps": steps, "scale": scale, "learning_rate": record.learning_rate, "score": record.objective}
    return {**entry, "diverged": True} if record.diverged else entry


def search_rate(cfg: DictConfig, out_dir: Path) -> tuple[float, dict]:
    """The rate ``auto`` chooses for the run ``cfg`` describes, and the search's summary for its record."""
    _check(cfg)
    scales, trials, scored = list(RATE_SCALES), [], []
    for rung, (keep, steps) in enumerate(zip(SEARCH.sizes(len(scales)), SEARCH.steps(cfg.trainer.max_steps))):
        scored = [(scale, _trial(cfg, out_dir, rung, scale, steps)) for scale in scales[:keep]]
        trials += [_trial_entry(rung, steps, s, r) for s, r in scored]
        scales = [s for s, _ in survivors(scored, len(scored), _rank)]
    chosen = next(r for s, r in scored if s == scales[0])
    return chosen.learning_rate, {
        "split": SPLIT,
        "objective": chosen.objective_metric,
        "halving": {"eta": SEARCH.eta, "fractions": list(SEARCH.fractions)},
        "trials": trials,
        "chosen": chosen.learning_rate,
    }


def run_with_rate_search(cfg: DictConfig, out_dir: Path) -> RunRecord:
    """Search the rate (:func:`search_rate`), then run ``cfg`` at it; the record keeps the search's trials."""
    rate, summary = search_rate(cfg, out_dir)
    final = copy.deepcopy(cfg)
    with open_dict(final):
        final.trainer.learning_rate, final.trainer.learning_rate_scale = rate, 1.0
    if not cfg.resume:
        refuse_another_run(out_dir, final)
    record = (finished_run(out_dir, final) if cfg.resume else None) or run(final, out_dir)
    if record.learning_rate_search != summary:
        record = dataclasses.replace(record, learning_rate_search=summary)
        if launch_rank() == 0:
            record.write(out_dir / "metrics.json")
    return record
