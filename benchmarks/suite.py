"""The comparative benchmark in one command: every registered method and the baselines, then RESULTS.md.

    python -m benchmarks.suite --profile full      # SmolLM2-135M-Instruct: movie reviews (3 runs a row), tweets, BBC headlines
    python -m benchmarks.suite --profile quick     # same model, movie reviews, short runs
    python -m benchmarks.suite --profile smoke     # tiny Llama, synthetic task (seconds; CI)
    python -m benchmarks.suite --profile default   # what `zoo` runs with no arguments, 3 seeds: the README's figures
    python -m benchmarks.suite --profile quick --peft-bridge                 # and every bridged peft tuner (peft_*)
    python -m benchmarks.suite --profile quick --peft-bridge 'peft_dora,peft_vera'   # or those named (a Hydra sweep value)
    python -m benchmarks.suite --profile full trainer.device=cuda            # any Hydra override passes through
    python -m benchmarks.suite --profile full hydra/launcher=joblib hydra.launcher.n_jobs=2
    python -m benchmarks.suite --profile full --tuned    # and every method's tuned row (after benchmarks/tune.py)
    python -m benchmarks.suite --profile full --out multirun/benchmark-full-time budget=time trainer.max_seconds=30
                                                   # equal training time (zoo.training.budget) instead of equal steps: another --out

A profile is a Hydra config, ``conf/benchmark/<profile>.yaml`` (model, steps, data sizes,
learning rates, sweep folders), plus the tasks and seeds it covers (:data:`PLANS`: per task,
one or more seed sweeps, which a single Hydra sweep cannot say: on movie reviews the full profile
runs two run seeds on one training sample and another training sample, ``task.sample_seed``, at seed 0).
A task of another kind than classification (``bbc_headlines``, a generation task) gets the rows of
the methods and baselines that declare its kind (:mod:`task_kinds`).
For each task and seed sweep the suite launches three multiruns of the ``zoo`` app, one per kind of row
(:func:`rows_for`): every registered method (``+sweep=all_methods``, so a method registered later
is in the next run with no edit), the zero-shot and linear-probe baselines, and the
in-context baseline (which needs demonstrations in the prompt, and the methods do not get
them). Hydra launchers work unchanged: they are overrides like any other.

The peft bridge's methods (``peft_*``, :mod:`zoo.peft_bridge`) are not in ``+sweep=all_methods``:
34 more rows would multiply every profile's time. ``--peft-bridge`` adds them as a fourth
multirun per task (all of them, or the methods its value sweeps), into the same table.

Every run writes into ``<out>/<task>/<method or baseline>/seed<seed>`` (``seed<seed>-sample<sample seed>``
with a sample seed) and the profiles set
``resume=true``: after an interruption the same command skips what finished ("skipped
(done)") and runs the rest. Finally ``results_md.py`` writes RESULTS.md from the run folders
(``benchmarks/RESULTS.md`` for the full profile, ``<out>/RESULTS.md`` for the others).

``--tuned`` adds the tuned rows: every method of a task's tuned config (``benchmarks/tuned/<profile>/<task>.yaml``,
written by ``benchmarks/tune.py`` from a search on the validation split) run at its chosen values,
on the test split, at the task's first run (:func:`first_run`: one run a row, as the search's), into
``<out>/tuned/<task>/<method>/seed<seed>``: one
multirun per task and set of chosen values. A method whose chosen values are its defaults is not run a second time: its
tuned row is its default row's first run, copied (:func:`reuse_first_runs`). RESULTS.md shows the tuned rows beside the
default ones, as ``<method> (tuned)``.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import time
from datetime import datetime, timezone
from importlib.resources import files
from pathlib import Path

import yaml

import zoo
from benchmarks.plans import (
    BRIDGED_PROFILES,
    COMMITTED_RECORDS,
    COMMITTED_RESULTS,
    LATENCY,
    LATENCY_PASS,
    OWN_TABLES_ONLY,
    PLANS,
    TABLES,
    planned,
)
from benchmarks.records import RECORDS, export, load_suite, restore, shared_set
from benchmarks.results_md import TUNED, is_search, portable, write_results
from benchmarks.stopping import exit_status, stopping_on_signals
from benchmarks.task_kinds import methods_for, plain_baselines, task_kind
from benchmarks.tuned import DEFAULT_DIR, change, overrides, read_tuned, tuned_path
from zoo.runner.config import seed_folder
from zoo.runtime.atomic import write_json, write_text

IN_CONTEXT = ["baseline=in_context", "task.demonstrations=1", "task.max_length=512"]  # room for a demonstration per class
"""The in-context row's overrides: its baseline, and the demonstrations it shows."""
PACKAGES = ("torch", "transformers", "peft", "accelerate", "hydra-core", "zoo-peft")


def check_profiles() -> None:
    """Every profile in :data:`PLANS` has its config in ``conf/benchmark/`` and every config a plan."""
    configs = {
        p.name.removesuffix(".yaml") for p in files("zoo.conf").joinpath("benchmark").iterdir() if p.name.endswith(".yaml")
    }
    if configs != set(PLANS):
        raise SystemExit(f"suite: profiles in PLANS {sorted(PLANS)} and configs in conf/benchmark/ {sorted(configs)} differ")


def zoo_command() -> list[str]:
    """The ``zoo`` console script of this interpreter's environment."""
    script = Path(sys.executable).with_name("zoo")
    found = str(script) if script.is_file() else shutil.which("zoo")
    if found is None:
        raise SystemExit("suite: the `zoo` command is not installed in this environment; run `pip install -e .` first")
    return [found]


BRIDGED = "glob(peft_*)"
"""``--peft-bridge`` with no value: every bridged peft tuner."""


def sweeps(
    profile: str,
    out: Path,
    extra: list[str],
    peft_bridge: str | None = None,
    tuned: bool = False,
    only: list[str] | None = None,
) -> list[list[str]]:
    """The ``zoo -m`` command lines of one suite run, extra overrides last (they win).

    ``peft_bridge``: a Hydra sweep value of bridged methods (``glob(peft_*)``, ``peft_dora,peft_vera``)
    run as one more row kind; None: none. ``tuned``: the default rows of methods run the first run only (the tuned rows
    and the baselines, the main table, run every run: benchmarks.plans). ``only``: zoo's methods to run (``--methods``);
    None: every one.
    """
    commands = []
    for task, runs in PLANS[profile].items():
        for i, seeds in enumerate(runs):
            for name, kind in rows_for(task, peft_bridge, only).items():
                if not (tuned and i and name in DEFAULT_ROWS_FIRST_RUN_ONLY):
                    commands.append(
                        [
                            *zoo_command(),
                            "-m",
                            f"+benchmark={profile}",
                            *kind,
                            f"task={task}",
                            *unless_set(seeds.split(), kind),
                            f"hydra.sweep.dir={hydra_value(str(out))}",
                            *extra,
                        ]
                    )
    return commands


DEFAULT_ROWS_FIRST_RUN_ONLY = ("methods", "peft_bridge")
"""Row kinds that, beside tuned rows, run the first run only."""


def latency_sweeps(
    profile: str, out: Path, extra: list[str], peft_bridge: str | None, only: list[str] | None = None
) -> list[list[str]]:
    """The serial latency pass (:data:`benchmarks.plans.LATENCY_PASS`): every kind of row of the task once, one job at a
    time, into ``<out>/latency``; none for a profile that times inside its runs."""
    if profile not in LATENCY_PASS:
        return []
    task, settings = LATENCY_PASS[profile]
    return [
        [
            *zoo_command(),
            "-m",
            f"+benchmark={profile}",
            *kind,
            f"task={task}",
            *unless_set(settings, kind),
            f"hydra.sweep.dir={hydra_value(str(out / LATENCY))}",
            *extra,
        ]
        for kind in rows_for(task, peft_bridge, only).values()
    ]


def unless_set(overrides: list[str], kind: list[str]) -> list[str]:
    """The plan's overrides but those of a key the kind of row sets: the in-context row's ``task.max_length=512`` (room for
    its demonstrations) beats BBC headlines' 96, where a demonstration would not fit."""
    keys = {o.partition("=")[0] for o in kind}
    return [o for o in overrides if o.partition("=")[0] not in keys]


def rows_for(task: str, peft_bridge: str | None, only: list[str] | None = None) -> dict[str, list[str]]:
    """One multirun per kind of row, the overrides it adds to the profile: the methods and the baselines that declare the
    task's kind (``task_kinds``; ``+sweep=all_methods`` where that is every method, so a method registered later joins), the
    in-context baseline, and the bridged peft tuners where asked. ``only``: of zoo's methods, these (none of them declaring
    the task's kind: no methods row)."""
    kind = task_kind(task)
    own = [m for m in zoo.list_methods() if not m.startswith("peft_")]
    methods = [m for m in methods_for(kind) if not m.startswith("peft_") and selected(m, only)]
    rows = {
        **({"methods": ["+sweep=all_methods"] if methods == own else [f"method={','.join(methods)}"]} if methods else {}),
        "baselines": [f"baseline={','.join(plain_baselines(kind))}"],
        "in_context": IN_CONTEXT,
    }
    return {**rows, **({"peft_bridge": [f"method={peft_bridge}"]} if peft_bridge else {})}


def method_selection(text: str | None) -> list[str] | None:
    """``--methods``: a comma-separated list of zoo's registered methods (not the bridged ``peft_*``, which
    ``--peft-bridge`` selects); None: every one.

    Raises:
        SystemExit: naming each unknown name and the valid ones.
    """
    if text is None:
        return None
    names = [n.strip() for n in text.split(",") if n.strip()]
    own = [m for m in zoo.list_methods() if not m.startswith("peft_")]
    unknown = [n for n in names if n not in own]
    if unknown or not names:
        raise SystemExit(f"--methods {text!r}: {unknown or 'no method'} not among zoo's methods; valid: {','.join(own)}")
    return names


def selected(method: str, only: list[str] | None) -> bool:
    """Whether ``--methods`` (``only``, from :func:`method_selection`; None: every method) selects ``method``."""
    return only is None or method in only


def tuned_sweeps(profile: str, out: Path, extra: list[str], tuned_dir: Path, only: list[str] | None = None) -> list[list[str]]:
    """The ``zoo -m`` command lines of the tuned rows: per task and run, one per set of chosen overrides (its methods
    swept), untimed (``latency=false``: the latency pass times each method once); extra overrides last. A method whose
    chosen values are its defaults skips the first run, its default row's (:func:`reuse_first_runs`). ``only``: these
    methods' tuned rows (``--methods``); None: every chosen one."""
    commands = []
    for task, runs in PLANS[profile].items():
        chosen = _chosen(tuned_dir, task, only)
        for i, seeds in enumerate(runs):
            groups: dict[tuple, list[str]] = {}
            for method, values in chosen.items():
                if i or change(method, values) > 0:
                    groups.setdefault(tuple(overrides(values)), []).append(method)
            commands += [
                [
                    *zoo_command(),
                    "-m",
                    f"+benchmark={profile}",
                    f"method={','.join(methods)}",
                    *values,
                    f"task={task}",
                    *(o for o in seeds.split() if not o.startswith("latency=")),
                    "latency=false",
                    f"hydra.sweep.dir={hydra_value(str(out / TUNED))}",
                    *extra,
                ]
                for values, methods in groups.items()
            ]
    return commands


def _chosen(tuned_dir: Path, task: str, only: list[str] | None) -> dict[str, dict]:
    """The values the search chose for ``task``, per method; of the ``only`` methods where given."""
    return {m: v for m, v in read_tuned(tuned_path(tuned_dir, task)).items() if selected(m, only)}


def reuse_first_runs(profile: str, out: Path, tuned_dir: Path, only: list[str] | None = None) -> list[str]:
    """The tuned rows whose chosen values are the method's defaults (:func:`tuned.change` 0): the same configuration as
    the default row's first run, so that run is their record, copied rather than run twice. Into the tuned row's folder go
    its ``metrics.json``, its ``.hydra/overrides.yaml`` with the chosen values added (the tuned row's *config*) and
    ``same_run_as``, naming the run copied; a copy whose default run has since run again (its config changed) is copied
    again. Returns what could not be copied: a default first run that is missing."""
    missing = []
    for task, seed_sweeps in PLANS[profile].items():
        folder = seed_folder(dict(o.split("=", 1) for o in first_run(seed_sweeps))["seed"], None)
        for method, values in _chosen(tuned_dir, task, only).items():
            source, target = out / task / method / folder, out / TUNED / task / method / folder
            if change(method, values) > 0 or _up_to_date(source, target):
                continue
            if not (source / "metrics.json").is_file() or not (source / ".hydra" / "overrides.yaml").is_file():
                missing.append(
                    f"{task} {method} (tuned): its chosen values are the defaults, but no default first run at {source}"
                )
                continue
            runs_with = yaml.safe_load((source / ".hydra" / "overrides.yaml").read_text()) + overrides(values)
            (target / ".hydra").mkdir(parents=True, exist_ok=True)
            write_text(target / ".hydra" / "overrides.yaml", yaml.safe_dump(runs_with))
            write_text(target / "same_run_as", f"{source.relative_to(out)}\n")
            write_text(
                target / "metrics.json", (source / "metrics.json").read_text()
            )  # last: what resume and the report look for
    return missing


def _up_to_date(source: Path, target: Path) -> bool:
    """Whether ``target`` holds a record that needs no copy of ``source``'s: a run of its own, or a copy of this one."""
    if not (target / "metrics.json").is_file():
        return False
    if not (target / "same_run_as").is_file() or not (source / "metrics.json").is_file():
        return True
    return (target / "metrics.json").read_bytes() == (source / "metrics.json").read_bytes()


def first_run(seed_sweeps: tuple[str, ...]) -> list[str]:
    """The overrides of a task's first run: its first seed sweep with each swept value cut to its first, no sample seed
    and no ``latency=`` (the search and the tuned rows set their own).

    ``("seed=0,1", "seed=0 task.sample_seed=1")`` -> ``["seed=0"]``; ``("seed=0 task.n_eval=24 latency=false",)`` ->
    ``["seed=0", "task.n_eval=24"]``: what the tuned protocol's search (on validation) and its tuned rows (on test) run with.
    """
    keys = [o.partition("=")[0] for o in seed_sweeps[0].split()]
    if "seed" not in keys:
        raise ValueError(f"the plan's first seed sweep {seed_sweeps[0]!r} sets no seed=")
    if any("," in o.partition("=")[2] for o in seed_sweeps[0].split()):
        raise ValueError(
            f"the plan's first seed sweep {seed_sweeps[0]!r} sweeps several values; the first run must be one run "
            f"(benchmarks.plans.paired_runs)"
        )
    return [
        f"{key}={value.split(',')[0]}"
        for key, _, value in (o.partition("=") for o in seed_sweeps[0].split())
        if key not in ("task.sample_seed", "latency")
    ]


def hydra_value(text: str) -> str:
    """``text`` as a Hydra override value: quoted where Hydra's grammar would read more into it (a comma sweeps)."""
    return text if re.fullmatch(r"[\w/.:~+@-]+", text) else "'" + text.replace("'", "\\'") + "'"


def machine() -> dict:
    """What the numbers were measured on: CPU count, platform and library versions."""
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "versions": versions,
    }


def record_session(out: Path, command: str, profile: str, seconds: float) -> dict:
    """Append this launch's wall time to ``<out>/suite.json`` (one entry per launch of suite.py or tune.py: they add up)."""
    path = out / "suite.json"
    suite = json.loads(path.read_text()) if path.is_file() else {"profile": profile, "sessions": []}
    suite["machine"] = machine()
    if not is_search(command):
        suite["command"] = command  # the suite's own, which RESULTS.md names
    suite["sessions"].append(
        {"command": command, "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"), "wall_seconds": seconds}
    )
    write_json(path, suite)
    return suite


def records_dir(profile: str, out: Path, given: Path | None) -> Path:
    """Where a launch keeps its record set: ``--records``, else ``benchmarks/records/<profile>`` for a committed profile,
    else ``<out>/records``."""
    return given or (RECORDS / profile if profile in COMMITTED_RECORDS else out / "records")


def resume_from(records: Path, out: Path, profile: str | None = None) -> None:
    """Restore the record set's runs into the sweep folder (a fresh machine resumes where the committed records stop), after
    those of the record set the profile shares (:data:`benchmarks.plans.SHARED_RECORDS`) that its plan runs."""
    shared = shared_set(profile)
    restored = restore(shared, out, launches=False, keep=planned(profile)) if shared else 0
    restored += restore(records, out)
    if restored:
        print(f"resumed {restored} finished runs from {records}", flush=True)


def save_records(records: Path, out: Path, profile: str | None = None) -> list[Path]:
    """The sweep folder's runs into the record set (after every launch, finished or interrupted), but those restored
    from the record set the profile shares (:data:`benchmarks.plans.SHARED_RECORDS`), which stay in that set alone, and
    those its plan no longer runs; return the files written."""
    return export(out, records, portable=portable, shared=shared_set(profile), keep=planned(profile))


def parse_arguments(parser: argparse.ArgumentParser, argv: list[str] | None) -> tuple[argparse.Namespace, list[str], Path]:
    """``(options, Hydra overrides, the sweep folder)`` of a benchmark script taking ``--profile`` and ``--out``."""
    args, extra = parser.parse_known_args(argv)
    check_profiles()
    unknown = [a for a in extra if a.startswith("--")]
    if unknown:
        parser.error(f"unrecognised option(s) {unknown}; Hydra overrides look like key=value")
    return args, extra, (args.out or Path(f"multirun/benchmark-{args.profile}")).resolve()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], epilog="Other arguments are Hydra overrides, passed to every run."
    )
    parser.add_argument(
        "--profile", required=True, choices=sorted(PLANS), help="conf/benchmark/<profile>.yaml and PLANS[profile]"
    )
    parser.add_argument("--out", type=Path, help="the sweep folder (default: multirun/benchmark-<profile>)")
    parser.add_argument(
        "--results", type=Path, help="RESULTS.md to write (default: benchmarks/RESULTS.md for full, else <out>/RESULTS.md)"
    )
    parser.add_argument(
        "--tables",
        type=Path,
        help="folder of the other benchmarks' tables appended to RESULTS.md (default: benchmarks/results, "
        f"none for {sorted(OWN_TABLES_ONLY)})",
    )
    parser.add_argument(
        "--peft-bridge",
        nargs="?",
        const=BRIDGED,
        metavar="METHODS",
        help=f"also run the peft bridge's methods: all ({BRIDGED}) or a Hydra sweep value of them (peft_dora,peft_vera)",
    )
    parser.add_argument("--tuned", action="store_true", help="also run every method at the values benchmarks/tune.py chose")
    parser.add_argument("--tuned-dir", type=Path, help="folder of the chosen values (default: benchmarks/tuned/<profile>)")
    parser.add_argument(
        "--methods", metavar="M1,M2", help="run only these of zoo's methods (default: every registered one); baselines still run"
    )
    parser.add_argument(
        "--records",
        type=Path,
        help=f"the record set (default: benchmarks/records/<profile> for {sorted(COMMITTED_RECORDS)}, else <out>/records)",
    )
    args, extra, out = parse_arguments(parser, argv)
    only = method_selection(args.methods)
    records = records_dir(args.profile, out, args.records)
    resume_from(records, out, args.profile)
    peft_bridge = args.peft_bridge or BRIDGED_PROFILES.get(args.profile)
    results = args.results or COMMITTED_RESULTS.get(args.profile, out / "RESULTS.md")
    command = shlex.join(["python", "-m", "benchmarks.suite", *(argv if argv is not None else sys.argv[1:])])

    start = time.perf_counter()
    failed = []
    tuned_dir = args.tuned_dir or DEFAULT_DIR / args.profile
    with stopping_on_signals():  # SIGTERM too runs the finally block: what finished is kept
        try:
            commands = sweeps(args.profile, out, extra, peft_bridge, args.tuned, only) + (
                tuned_sweeps(args.profile, out, extra, tuned_dir, only) if args.tuned else []
            )
            for cmd in commands + latency_sweeps(args.profile, out, extra, peft_bridge, only):  # the latency pass last, alone
                print("suite:", shlex.join(cmd), flush=True)
                if subprocess.run(cmd).returncode != 0:
                    failed.append(shlex.join(cmd))
            if args.tuned:
                failed += reuse_first_runs(args.profile, out, tuned_dir, only)
        finally:  # an interrupted launch's time counts too, and its finished runs are kept
            record_session(out, command, args.profile, time.perf_counter() - start)
            save_records(records, out, args.profile)
    if failed:
        print(
            "suite: these sweeps failed (the runs that finished are kept; fix and run the same command again):",
            *failed,
            sep="\n  ",
            file=sys.stderr,
        )
        return 1
    tables = args.tables or (None if args.profile in OWN_TABLES_ONLY else TABLES)
    write_results(records, results, tables, load_suite(records), tuned_dir=tuned_dir)
    print(f"suite: wrote {results} from {records}")
    return 0


if __name__ == "__main__":
    raise SystemExit(exit_status(main, "suite"))
