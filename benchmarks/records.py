"""A sweep's run records in compact committed form: ``benchmarks/records/<profile>/``, from which RESULTS.md is regenerated.

    python -m benchmarks.records multirun/benchmark-full --profile full     # sweep folder -> benchmarks/records/full/

Every run of a sweep folder (default rows, tuned rows under ``tuned/``, the search's trials under
``search/``) becomes one line of ``<task>.jsonl``: its folder
relative to the sweep, its command-line overrides (what distinguishes its row) and its record
(``metrics.json``) with each per-example score list written compactly: a string of ``0`` and
``1`` for a metric that is 0 or 1 on every example, else numbers rounded to 6 decimals. Lines are
sorted by folder, so a record set is the same bytes whoever writes it; a run already in the set and
not in the sweep folder is kept (a launch on another machine adds to it). No adapter, head or
checkpoint travels. :func:`restore` writes the set's records back into a sweep folder, so that a
launch on a fresh machine resumes where the committed records stop. ``suite.json`` (the launches' commands, machine and wall times) is copied
beside, each command written as a reader types it from the repository root.

:func:`load_records` reads a record set back into the entries ``zoo.report.table`` aggregates,
as ``load_runs`` reads them from run folders; ``python -m benchmarks.results_md`` builds
RESULTS.md and its plots from these files alone. A suite writes its records before its report,
so the report of a sweep and the report of its committed records are the same page.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

from benchmarks.plans import SHARED_RECORDS, planned
from zoo.io.records import RunRecord, UnusableRecord
from zoo.report.table import _entry, _overrides
from zoo.runtime.atomic import write_text

RECORDS = Path(__file__).parent / "records"
"""``benchmarks/records/<profile>/``: one folder per profile."""
SUITE = "suite.json"
DIGITS = 6


def _compact(values: list) -> str | list:
    if all(v in (0, 1) and not isinstance(v, bool) for v in values):
        return "".join("1" if v else "0" for v in values)
    return [round(float(v), DIGITS) for v in values]


def _expand(values: str | list) -> list:
    return [int(c) for c in values] if isinstance(values, str) else list(values)


def compact_line(folder: str, overrides: str, record: RunRecord) -> str:
    """One run as a line of a record set."""
    data = record.__dict__ | {"example_scores": {m: _compact(v) for m, v in record.example_scores.items()}}
    return json.dumps({"folder": folder, "overrides": overrides, "record": data}, sort_keys=True, separators=(",", ":"))


def export(
    sweep: Path,
    dest: Path,
    skip: tuple[str, ...] = (),
    portable=lambda command: command,
    shared: Path | None = None,
    keep: Callable[[str, str], bool] = lambda task, folder: True,
) -> list[Path]:
    """Write the record set of ``sweep`` into ``dest`` (one ``<task>.jsonl`` each, and ``suite.json``), keeping the runs
    ``dest`` held that ``sweep`` lacks; return the files.

    ``portable`` rewrites each command of suite.json as a reader types it (``results_md.portable``). ``shared``: another
    record set the sweep was restored from as well (:func:`restore`); its runs, unchanged, stay out of ``dest``.
    ``keep(task, folder)``: whether a run belongs in the set; the others (a run the plan no longer has) are left out of
    it, each named.
    """
    by_task: dict[str, dict[str, str]] = {task: dict(lines) for task, lines in _committed(dest).items()}
    elsewhere = (
        {folder: json.loads(line)["record"] for lines in _committed(shared).values() for folder, line in lines} if shared else {}
    )
    for path in sorted(Path(sweep).rglob("metrics.json")):
        folder = path.parent.relative_to(sweep)
        if folder.parts[0] in skip:
            continue
        try:
            record = RunRecord.read(path)
        except UnusableRecord as err:
            raise SystemExit(f"records: {err}; run it again (resume=true) before exporting") from None
        if not (path.parent / ".hydra" / "overrides.yaml").is_file() and folder.as_posix() in by_task.get(record.task, {}):
            continue  # restored from the set and not launched again: the set's line has its overrides
        line = compact_line(folder.as_posix(), _overrides(path.parent), record)
        if json.loads(line)["record"] == elsewhere.get(folder.as_posix()):
            continue  # the shared set's run, restored (resume skipped it): that set holds it
        by_task.setdefault(record.task, {})[folder.as_posix()] = line
    for task, lines in by_task.items():
        for folder in [f for f in lines if not keep(task, f)]:
            print(f"records: {folder} left out of {dest}: its profile's plan no longer runs it", flush=True)
            del lines[folder]
    dest.mkdir(parents=True, exist_ok=True)
    written = []
    for task, lines in sorted(by_task.items()):
        if not lines:  # every run of the task left out: the set no longer has the task
            (dest / f"{task}.jsonl").unlink(missing_ok=True)
            continue
        written.append(dest / f"{task}.jsonl")
        write_text(written[-1], "\n".join(line for _, line in sorted(lines.items())) + "\n")
    if (Path(sweep) / SUITE).is_file():
        suite = json.loads((Path(sweep) / SUITE).read_text())
        suite["sessions"] = [{**s, "command": portable(s["command"])} for s in suite["sessions"]]
        if "command" in suite:
            suite["command"] = portable(suite["command"])
        written.append(dest / SUITE)
        write_text(written[-1], json.dumps(suite, indent=1, sort_keys=True) + "\n")
    return written


def _committed(dest: Path) -> dict[str, list[tuple[str, str]]]:
    """The lines a record set already holds, per task: ``(folder, line)``."""
    return {
        path.stem: [(json.loads(line)["folder"], line) for line in path.read_text().splitlines()]
        for path in sorted(Path(dest).glob("*.jsonl"))
    }


def restore(dest: Path, sweep: Path, launches: bool = True, keep: Callable[[str, str], bool] = lambda task, folder: True) -> int:
    """Write each committed run's ``metrics.json`` into ``sweep`` where its folder has none (nothing is overwritten), and
    ``suite.json`` where the sweep has none (``launches``: the set is the sweep's own, not another profile's it shares),
    so that a launch on a fresh machine skips what an earlier launch finished (``resume=true``) and counts its wall time;
    return how many runs were written. ``keep(task, folder)``: whether a run is restored (another profile's set: the runs
    of this profile's plan)."""
    restored = 0
    for task, lines in _committed(dest).items():
        for folder, line in lines:
            if not keep(task, folder):
                continue
            target = Path(sweep) / folder / "metrics.json"
            if not target.is_file():
                data = json.loads(line)["record"]
                data["example_scores"] = {m: _expand(v) for m, v in data["example_scores"].items()}
                target.parent.mkdir(parents=True, exist_ok=True)
                RunRecord(**data).write(target)
                restored += 1
    if launches and (Path(dest) / SUITE).is_file() and not (Path(sweep) / SUITE).is_file():
        write_text(Path(sweep) / SUITE, (Path(dest) / SUITE).read_text())  # the earlier launches' wall times add up
    return restored


def shared_set(profile: str | None) -> Path | None:
    """The committed record set that ``profile`` shares (:data:`benchmarks.plans.SHARED_RECORDS`); None: none."""
    return RECORDS / SHARED_RECORDS[profile] if profile in SHARED_RECORDS else None


def load_records(folder: Path, skip: tuple[str, ...] = ()) -> list[dict]:
    """Every run of the record set in ``folder`` as ``zoo.report.table`` aggregates it, with its ``_folder``; runs whose
    folder starts with one of ``skip`` are left out.

    A set whose profile shares another's (the extended profile's, from suite.json) also has that set's runs its own plan
    runs and it does not hold itself (the full profile's movie-review rows of zoo's own methods and baselines)."""
    runs = _read(folder, skip)
    suite = load_suite(folder)
    profile = suite.get("profile") if suite else None
    shared, keep = shared_set(profile), planned(profile)
    if shared is not None:
        own = {r["_folder"] for r in runs}
        runs += [r for r in _read(shared, skip) if r["_folder"] not in own and keep(r["task"], r["_folder"])]
    return runs


def _read(folder: Path, skip: tuple[str, ...]) -> list[dict]:
    runs = []
    for path in sorted(Path(folder).glob("*.jsonl")):
        for line in path.read_text().splitlines():
            item = json.loads(line)
            if item["folder"].split("/")[0] in skip:
                continue
            data = item["record"] | {"example_scores": {m: _expand(v) for m, v in item["record"]["example_scores"].items()}}
            runs.append({**_entry(RunRecord(**data), item["overrides"]), "_folder": item["folder"]})
    return runs


def load_suite(folder: Path) -> dict | None:
    path = Path(folder) / SUITE
    return json.loads(path.read_text()) if path.is_file() else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep", type=Path, help="the suite's sweep folder (multirun/benchmark-<profile>)")
    parser.add_argument("--profile", required=True, help="writes benchmarks/records/<profile>/ unless --dest is given")
    parser.add_argument("--dest", type=Path, help="where the record set goes")
    args = parser.parse_args(argv)
    from benchmarks.suite import save_records  # the suite's own export: shared runs stay in their set

    written = save_records(args.dest or RECORDS / args.profile, args.sweep, args.profile)
    print("records: wrote", *written, sep="\n  ")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
