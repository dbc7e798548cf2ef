"""What each benchmark profile runs: per task its paired runs, the serial latency pass, and which record set it keeps.

**Paired runs.** Run *i* of every row of a task uses run seed *i* (initialisation, batch order)
and training sample *i* (``task.sample_seed``; run 0 the data seed's own sample), on one evaluation
set drawn with the data seed: rows are compared run by run and example by example
(zoo.report.uncertainty pairs them). Each run is a seed sweep of its own (:func:`paired_runs`):
Hydra's basic sweeper takes the product of swept values, and run *i* is seed *i* *with* sample *i*.

**Which rows run every run.** With ``--tuned`` the main table is the tuned rows and the
baselines: they run every run; the default rows (each method at its registered rate) run the
first only, a second table. Without ``--tuned`` every row runs every run.

**Latency.** Timed in a pass of its own after every training job (:data:`LATENCY_PASS`), one job
at a time (the launcher at one job), never beside another job: each row's method or baseline on
the task named, one training step (the modules a method runs do not depend on how far it
trained), 20 batches after 2 warm-up ones, base and method in turn (zoo.evaluation.latency).
The report shows that pass's ratios on every row of the method on that task.

The sizes (runs, test examples, steps) and their arithmetic: conf/benchmark/full.yaml.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from zoo.runner.config import seed_folder


def paired_runs(count: int, *settings: str) -> tuple[str, ...]:
    """``count`` runs as seed sweeps, run i at seed i and training sample i (run 0: the data seed's sample), with ``settings``.

    ``paired_runs(2, "task.n_eval=24")`` -> ``("seed=0 task.n_eval=24", "seed=1 task.sample_seed=1 task.n_eval=24")``.
    """
    return tuple(" ".join([f"seed={i}", *([f"task.sample_seed={i}"] if i else []), *settings]) for i in range(count))


MOVIES = paired_runs(3, "task.shots_per_class=60")
"""Movie reviews in the full profile: 3 paired runs on its 300 test examples (conf/benchmark/full.yaml: the power), 60
training examples per class: the 120 that 15 steps at batch 8 see once, so the closed-form head, which fits on every
training example, sees what the others train on."""
TWEETS = paired_runs(3, "task.shots_per_class=40")
"""Tweets: 3 paired runs on 300 test examples, 40 training examples per class: 120, as the movies'."""
HEADLINES = paired_runs(1, "task.n_eval=100", "task.max_length=96", "trainer.batch_size=4", "trainer.max_steps=10")
"""BBC headlines: 100 test articles cut to 96 tokens of prompt and headline (the lede), 10 steps at batch 4, one run:
decoding makes a run of this task several times a classification run on 2 CPU cores."""
PLANS = {
    "full": {"movie_sentiment": MOVIES, "tweet_sentiment": TWEETS, "bbc_headlines": HEADLINES},
    "extended": {"movie_sentiment": MOVIES},
    "quick": {"movie_sentiment": ("seed=0",)},
    "smoke": {"synthetic_sentiment": ("seed=0",)},
    "default": {"synthetic_sentiment": ("seed=0", "seed=1", "seed=2")},  # seeds alone, one training sample: the README's figures
}
"""Per profile: each task and its runs, each the overrides of one multirun per kind of row (Hydra sweep values). The search
runs a task's first run only (on validation); the tuned rows every run."""
SEARCH_SETTINGS = {
    "movie_sentiment": ("task.n_eval=150",),
    "tweet_sentiment": ("task.n_eval=150",),
    "bbc_headlines": ("task.n_eval=48",),
}
"""Overrides the search adds to a task's first run: the classification trials read 150 validation examples, not the
test's 300 (the choice needs less than the comparison; conf/benchmark/full.yaml's arithmetic), and BBC headlines'
trials write 48 headlines, not the test's 100 (writing is most of a generation trial's time)."""
LATENCY_PASS = {
    profile: (
        "movie_sentiment",
        [
            "seed=0",
            "latency=true",
            "trainer.max_steps=1",
            "trainer.batch_size=2",
            "task.n_eval=16",
            "forgetting.text=none",
            "save_adapter=false",
            "cpu_threads=2",
            "hydra.launcher.n_jobs=1",
        ],
    )
    for profile in ("full", "extended")
}
"""Profiles timed in a serial pass after their training jobs: the task and the overrides of the pass (batches of 2: the
ratio of medians does not need large batches, and 88 timed batches a row stay under a minute on 2 cores). The other
profiles time inside each run (their configs' ``latency``)."""
LATENCY = "latency"
"""The sweep folder's subfolder of the latency pass."""
SEARCH = "search"
"""The sweep folder's subfolder of the search's trials."""


def in_plan(profile: str, task: str, folder: str) -> bool:
    """Whether the run in ``folder`` (relative to the sweep) is one the profile's plan runs: of one of its tasks, a search
    trial or a run of one of the task's paired runs (``.../seed1-sample1``). A plan cut from 4 runs to 3 leaves the fourth out of the record
    set and the report; a changed config is run again in its folder (resume), so needs no such check."""
    if task not in PLANS[profile]:
        return False
    if folder.split("/")[0] == SEARCH:
        return True
    return folder.rsplit("/", 1)[-1] in {_seeds(run) for run in PLANS[profile][task]}


def planned(profile: str | None) -> Callable[[str, str], bool]:
    """:func:`in_plan` of ``profile`` as a ``keep(task, folder)`` predicate; every run for a profile with no plan."""
    return (lambda task, folder: in_plan(profile, task, folder)) if profile in PLANS else (lambda task, folder: True)


def _seeds(run: str) -> str:
    values = dict(override.partition("=")[::2] for override in run.split())
    return seed_folder(int(values["seed"]), values.get("task.sample_seed"))


BRIDGED_PROFILES = {"extended": "glob(peft_*)"}
"""Profiles whose rows (and search) include the peft bridge's tuners, as ``--peft-bridge`` adds them."""
COMMITTED_RECORDS = {"full", "extended"}
"""Profiles whose record sets are committed (``benchmarks/records/<profile>``); the others write ``<out>/records``."""
SHARED_RECORDS = {"extended": "full"}
"""A profile that restores another's record set first: the extended profile's rows of zoo's own methods are the full
profile's movie-review runs (the same configs: its config differs only in its folders), so they are not run again; its
report reads them from that set."""
COMMITTED_RESULTS = {
    "full": Path(__file__).parent / "RESULTS.md",
    "extended": Path(__file__).parent / "results" / "extended" / "RESULTS.md",
    "default": Path(__file__).parent / "results" / "default_task" / "RESULTS.md",
}
"""Where a profile's RESULTS.md goes by default; profiles not listed write ``<out>/RESULTS.md``."""
TABLES = Path(__file__).parent / "results"
"""The other benchmark scripts' tables, appended to a profile's RESULTS.md (copied, or linked where a page of its own)."""
OWN_TABLES_ONLY = {"default", "extended"}
"""Profiles whose RESULTS.md holds their own runs only, without the other benchmarks' tables from :data:`TABLES`."""
