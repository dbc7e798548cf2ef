"""RESULTS.md from a benchmark sweep: per-task tables and plots, how they were made, the other benchmarks' tables.

    python -m benchmarks.results_md          # benchmarks/RESULTS.md and its plots from benchmarks/records/full alone
    python -m benchmarks.results_md benchmarks/records/extended   # benchmarks/results/extended/RESULTS.md
    python -m benchmarks.results_md multirun/benchmark-full --out benchmarks/RESULTS.md     # from a sweep folder

Every figure comes from the committed record set (``benchmarks/records/<profile>``, :mod:`records`) or a
sweep's run folders (``metrics.json``), aggregated by ``zoo.report.table``, or
from the tables the other benchmark scripts wrote into ``benchmarks/results/`` (appended
verbatim): regenerate this page, never edit its numbers. ``suite.py`` calls
:func:`write_results` when a suite finishes; its ``suite.json`` gives the command, the
machine and the wall time.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
from pathlib import Path

from benchmarks.findings import section
from benchmarks.plans import COMMITTED_RESULTS, LATENCY, OWN_TABLES_ONLY, SEARCH, SHARED_RECORDS, TABLES
from benchmarks.records import RECORDS, load_records, load_suite
from benchmarks.task_section import REFERENCE, task_section
from benchmarks.task_section import TUNED as TUNED_SUFFIX
from benchmarks.tuned import DEFAULT_DIR
from zoo.report.html_page import write_html
from zoo.report.html_provenance import provenance
from zoo.report.table import load_runs, summarise
from zoo.runtime.atomic import write_text

ROOT = Path(__file__).resolve().parents[1]

LEGEND = (
    "*accuracy*: the mean over a row's runs and, in brackets, its 95% bootstrap confidence interval (two levels: "
    "the runs drawn with replacement, then the evaluation examples, drawn once for all the drawn runs, which share "
    "them; 10,000 resamples with a fixed generator seed, so the page regenerates to the same digits; ± std instead "
    "for runs that did not record their answers per example). *sd runs*: the standard deviation of accuracy over "
    "the row's runs (paired runs: run i at seed i and training sample i); - where a row has one run. A table whose rows "
    "also vary one seed alone adds *sd seed / sample*: over run seeds (initialisation and batch order) on the first "
    "training sample, and over training samples (`task.sample_seed`) at the first seed. *vs lora [95% CI]*: the row's accuracy "
    "minus the `lora` row's of the same task on the same evaluation examples, and in brackets the 95% interval of the "
    "difference by a paired bootstrap (each row's runs drawn with replacement, the examples drawn once for both). *≠* "
    "after it: the two rows differ at the 5% level by a test exact for the paired design, McNemar's exact test (the "
    "two-sided binomial test of the examples one row got right and the other wrong) where each row has one run, else a "
    "paired permutation test (sign flips of the per-example differences, each averaged over the pairs of runs of the "
    "same seed and training sample; every flip up to 16 non-zero differences, else 10,000 random ones with a fixed "
    "seed), its p-value adjusted by Holm's method over the task's rows tested against `lora`; no mark: not shown to "
    "differ at 5%; *?*: not tested, the two rows were evaluated on other examples or share no seed and training "
    "sample. *minimum detectable difference*, under each table: the smallest true difference in accuracy (ROUGE-L) that the "
    "task's paired comparisons find with 80% power at the 5% level (two-sided), by Connor's normal approximation for "
    "McNemar's test from the share of examples the compared rows answer differently, else by the paired-t "
    "approximation from the sd of the per-example differences; an unmarked row closer than that to `lora` is not "
    "shown to be alike. *macro-F1*: mean ± std "
    "over the runs (the value alone where a row has one run). *trainable*: parameters that train (method plus classification head), "
    "*%* of the base model's. *zero-shot*: the base model's accuracy on the same evaluation set. "
    "*fixed / broken*: evaluation answers the run got right / wrong that the base model got wrong / right "
    "(zero-shot; in context for the in-context row). *forgetting*: the change in next-token loss (nats per token) "
    "on held-out general text that no task trains on (zoo.evaluation.forgetting: New York Times editorial sentences for the real "
    "models, the tiny models' own language for them), after training minus before; above 0, the model got worse at plain "
    "text; '-' for baselines, which change no weight. *train s*: training wall time. *train k-tokens*: thousands of input "
    "tokens (not padding) the run trained on: every method gets the same steps and examples (trainer.budget=steps; "
    "budget=time compares at equal seconds instead). *peak MB*: peak memory "
    "while training (the allocator's peak on a GPU; on a CPU the process's resident memory, model included, "
    "and with it what earlier runs of the same sweep process left allocated). *adapter KB*: the saved "
    "adapter on disk. *latency x base*: the tuned model's median time per evaluation batch over the base model's, "
    "timed in the same run batch by batch in turn on the same batches (20 after 2 warm-up ones), in the full and extended profiles in a "
    "pass of its own after every training job, one job at a time (benchmarks/plans.py), shown on every row of the method; "
    "a baseline's "
    "against the base model on the bare prompt (zero-shot's); in brackets after merging the adapter into the weights, "
    "for methods that merge; *!* after it: a run of the row timed its merged model outside 1 ± 0.05 of the base, "
    "where a merged model runs the base model's own modules, as zoo.merge now puts them back (zoo/models/layout.py): "
    "above, timing noise or a module of the method left in the forward pass; below, no cost of the method but timing "
    "noise or a difference outside those modules. Records timed before that change (the smoke profile's, "
    "benchmarks/records/smoke) timed each wrapper module a merged model kept for unmerge too, a call that is costly "
    "beside small batches. *config*: what distinguishes a row beyond its method and seed. "
    "Generation tasks (BBC headlines) have a table of their own, whose first score is *ROUGE-L* (F of the longest common "
    "word subsequence, `rouge-score`) of the written responses, with its 95% interval, its difference from the `lora` "
    "row's and the *≠* mark as accuracy's (by the permutation test: a ROUGE-L F per example is no 0 or 1), then *exact "
    "match* (after normalisation; 0 for nearly every row of written text) and *chrF* (F of the character 1- to 6-grams, "
    "recall weighing twice as much as precision, `sacrebleu`'s sentence score on 0-1; it credits a word nearly right), "
    "each with its interval, and *log-lik / token*: the reference responses' mean log-probability per token under teacher "
    "forcing; "
    "*zero-shot*: the base model's ROUGE-L."
)
OTHER = "## Other benchmarks"
"""The heading of the copied tables."""
PAGE = "RESULTS.md"
"""The name of a profile's page: under the other tables' folder, linked rather than copied."""
TUNED = "tuned"
"""Folders of a sweep folder that hold no default rows: ``tune.py``'s trials (validation scores, never shown here) and
``suite.py --tuned``'s tuned rows (shown as ``<method> (tuned)``)."""


def is_search(command: str) -> bool:
    """Whether a launch recorded in suite.json was the search (``python -m benchmarks.tune``; ``benchmarks/tune.py`` in older ones)."""
    return "benchmarks.tune" in command or "benchmarks/tune.py" in command


def _load(runs_dir: Path) -> list[dict]:
    """The runs of a record set (``benchmarks/records/<profile>``: ``*.jsonl``) or of a sweep folder, tuned rows named
    ``<method> (tuned)``, search trials left out, each row's latency the serial latency pass's where there was one."""
    if any(Path(runs_dir).glob("*.jsonl")):
        runs = load_records(runs_dir, skip=(SEARCH,))
        runs = [{**r, "method": f"{r['method']} (tuned)"} if r["_folder"].startswith(f"{TUNED}/") else r for r in runs]
        timed = [r for r in runs if r["_folder"].startswith(f"{LATENCY}/")]
        return _with_latency([r for r in runs if r not in timed], timed)
    timed = load_runs(Path(runs_dir) / LATENCY) if (Path(runs_dir) / LATENCY).is_dir() else []
    return _with_latency(load_runs(Path(runs_dir), skip=(SEARCH, TUNED, LATENCY)) + _tuned_runs(Path(runs_dir) / TUNED), timed)


def _with_latency(runs: list[dict], timed: list[dict]) -> list[dict]:
    """``runs`` with the latency measured for their method (or baseline) on their task: by the serial pass where it ran,
    else by the default row's runs that timed it (a tuned row changes no architecture: the same modules run)."""
    measured = {}
    for r in [r for r in runs if not r["method"].endswith(" (tuned)")] + timed:  # the pass's last: it wins
        if r.get("latency"):
            measured[(r["task"], r["method"])] = r["latency"]
    return [{**r, "latency": measured.get((r["task"], r["method"].removesuffix(" (tuned)")), r.get("latency"))} for r in runs]


def write_results(
    runs_dir: Path,
    path: Path,
    tables_dir: Path | None,
    suite: dict | None = None,
    reference: str | None = None,
    tuned_dir: Path | None = None,
) -> str:
    """Write RESULTS.md at ``path`` (atomically) and its plots beside it, from a record set or a sweep folder; return the
    markdown.

    Args:
        reference: the row every row of a main table is tested against (default: the tuned ``lora`` row, else ``lora``).
        tuned_dir: where the search's ``<task>.search.json`` are (its choices and runner-ups; default: none shown).
    """
    runs = _load(runs_dir)
    if not runs:
        raise FileNotFoundError(
            f"no metrics.json under {str(runs_dir)!r}: run the suite first (python -m benchmarks.suite --profile ...)"
        )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [
        "# Benchmark results",
        "",
        *section(runs),
        f"Written by `python -m benchmarks.results_md` from the record set of the command below; regenerate, never edit. {LEGEND}",
        "",
        *_provenance(runs, suite),
    ]
    for task in sorted({r["task"] for r in runs}):
        lines += task_section(task, [r for r in runs if r["task"] == task], path.parent, reference, _search(tuned_dir, task))
    lines += _other_tables(tables_dir, path.parent)
    text = "\n".join(lines).rstrip() + "\n"
    write_text(path, text)
    tuned = any(r["method"].endswith(TUNED_SUFFIX) for r in runs)
    write_html(
        path.with_suffix(".html"),
        summarise(runs, reference=reference or (REFERENCE + TUNED_SUFFIX if tuned else REFERENCE)),  # the main tables' one
        runs,
        title="Benchmark results",  # the same sweep as one interactive page
        provenance=provenance(
            runs,
            command=portable(suite["command"]) if suite and "command" in suite else None,
            suite=suite,
            constraints=ROOT / "constraints.txt",
        ),
    )
    return text


def _search(tuned_dir: Path | None, task: str) -> dict | None:
    path = Path(tuned_dir) / f"{task}.search.json" if tuned_dir else None
    return json.loads(path.read_text()) if path is not None and path.is_file() else None


def _tuned_runs(folder: Path) -> list[dict]:
    """The tuned rows' runs (``suite.py --tuned``), each method named ``<method> (tuned)`` so that it is a row of its own."""
    return [{**r, "method": f"{r['method']} (tuned)"} for r in load_runs(folder)] if folder.is_dir() else []


def portable(command: str, root: Path = ROOT) -> str:
    """The command as a reader types it from the repository root: an absolute path under the repository relative
    to it, any other absolute path a placeholder named by its option or key (``--out /scratch/b`` -> ``--out <out>``,
    ``predictions_cache=/scratch/p`` -> ``predictions_cache=<predictions_cache>``)."""
    words, before = [], ""
    for word in shlex.split(command):
        key, equals, value = word.partition("=") if "=" in word else ("", "", word)
        path = Path(value)
        if not path.is_absolute():
            words.append(shlex.quote(word))
        elif path.is_relative_to(root):
            words.append(key + equals + shlex.quote(path.relative_to(root).as_posix()))
        else:
            name = key or (before if before.startswith("-") else "path")
            words.append(f"{key}{equals}<{name.lstrip('-')}>")
        before = word
    return " ".join(words)


def _provenance(runs: list[dict], suite: dict | None) -> list[str]:
    """The command, machine, library versions, wall time and the note on quantised weights."""
    lines = []
    if suite:
        m, sessions = suite["machine"], suite["sessions"]
        versions = ", ".join(f"{name} {version}" for name, version in m["versions"].items())
        total = sum(s["wall_seconds"] for s in sessions)
        searched = sum(s["wall_seconds"] for s in sessions if is_search(s.get("command", "")))
        lines += [
            f"- Command: `{portable(suite['command']) if 'command' in suite else '-'}`",
            f"- Machine: {m['cpus']} CPU cores ({m['platform']}), Python {m['python']}; {versions}.",
            "- `constraints.txt`, at the top of the repository, pins the versions of the published figures "
            '(benchmarks/RESULTS.md) and the libraries beside them: `pip install -c constraints.txt -e ".[test]"`.',
            f"- Suite wall time: {total / 60:.1f} min"
            + (f" over {len(sessions)} launches (resumed; finished runs skipped)" if len(sessions) > 1 else "")
            + (f", of which the search (`python -m benchmarks.tune`) {searched / 60:.1f} min" if searched else "")
            + ".",
        ]
        if suite.get("profile") in SHARED_RECORDS:
            other = SHARED_RECORDS[suite["profile"]]
            lines.append(
                f"- Shared runs: the rows of zoo's own methods and the baselines are the `{other}` profile's runs of these "
                f"tasks, read from `benchmarks/records/{other}` (*config* `+benchmark={other}`): the same configuration, "
                "restored for this profile's launches rather than run again."
            )
    else:
        lines.append("- Command and machine: not recorded (no suite.json in the run folder).")
    devices = sorted({r.get("device_name") or r.get("device", "?") for r in runs})
    lines.append(f"- Device: {', '.join(devices)}.")
    for model in {
        json.dumps(r["model_config"], sort_keys=True): r["model_config"] for r in runs if r.get("model_config")
    }.values():
        if model.get("gguf_file"):
            where = f" from the pip package `{model['gguf_package']}`" if model.get("gguf_package") else ""
            lines.append(
                f"- Weights: {model['name']} is the GGUF file `{model['gguf_file']}`{where}, dequantised to "
                f"{model['dtype']}. Its quantisation noise stays in the weights, so absolute scores may differ "
                f"from the original unquantised (bf16) checkpoint's."
            )
    return [*lines, ""]


def _other_tables(folder: Path | None, page_dir: Path) -> list[str]:
    """Every ``*.md`` the other benchmark scripts wrote under ``folder``, verbatim, each under a heading naming it.

    Where a folder holds a ``summary.md``, that summary is copied and the reports below it
    (one per fine-tune, hundreds of rows each) are linked instead, relative to ``page_dir``; so is another profile's
    ``RESULTS.md`` (a page of its own, whose plots its relative links name).
    """
    tables = sorted(Path(folder).rglob("*.md")) if folder and Path(folder).is_dir() else []
    if not tables:
        return []
    summarised = {t.parent for t in tables if t.name == "summary.md"}
    pages = [t for t in tables if t.name == PAGE and not summarised & set(t.parents)]

    def name(table: Path) -> str:
        return table.relative_to(Path(folder).parent).as_posix()

    def link(table: Path) -> str:
        return f"[{name(table)}]({Path(os.path.relpath(table, page_dir)).as_posix()})"

    lines = [
        OTHER,
        "",
        "Verbatim copies of the tables the other scripts in `benchmarks/` wrote (see benchmarks/README.md).",
        "",
    ]
    if pages:
        lines += ["Other profiles' pages, each with its own tables and plots: " + ", ".join(map(link, pages)) + ".", ""]
    for table in tables:
        if table in pages or (table.name != "summary.md" and summarised & set(table.parents)):
            continue  # linked
        lines += [f"### `{name(table)}`", "", table.read_text().rstrip(), ""]
        if table.name == "summary.md":
            reports = [t for t in tables if t != table and table.parent in t.parents]
            if reports:
                lines += ["Full reports: " + ", ".join(map(link, reports)), ""]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "runs",
        type=Path,
        nargs="?",
        default=RECORDS / "full",
        help="a record set (default: benchmarks/records/full, the committed one) or a suite's sweep folder",
    )
    parser.add_argument(
        "--out",
        type=Path,
        help="the page to write (default: the profile's published one, benchmarks/RESULTS.md for full and "
        "benchmarks/results/<folder>/RESULTS.md for the others that publish one, else RESULTS.md in the runs' folder)",
    )
    parser.add_argument(
        "--tables",
        type=Path,
        help=f"the other benchmarks' tables to append (default: benchmarks/results; none for {sorted(OWN_TABLES_ONLY)})",
    )
    parser.add_argument(
        "--reference",
        metavar="ROW",
        help="the row each row of a main table is tested against (default: `lora (tuned)`, else `lora`)",
    )
    parser.add_argument(
        "--tuned-dir", type=Path, help="the search's choices (default: benchmarks/tuned/<the record set's profile>)"
    )
    args = parser.parse_args(argv)
    suite = load_suite(args.runs)
    profile = suite["profile"] if suite else None
    tuned_dir = args.tuned_dir or (DEFAULT_DIR / profile if suite else None)
    out = args.out or COMMITTED_RESULTS.get(profile, args.runs / "RESULTS.md")
    tables = args.tables or (None if profile in OWN_TABLES_ONLY else TABLES)
    write_results(args.runs, out, tables, suite, args.reference, tuned_dir)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
