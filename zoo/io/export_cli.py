"""``zoo-export``: a run's adapter for use outside zoo.

    zoo-export outputs/2026-12-01/10-00-00-ab12 --merged deploy/model     # a plain transformers folder
    zoo-export outputs/2026-12-01/10-00-00-ab12 --peft deploy/adapter     # for peft.PeftModel.from_pretrained

``--merged`` folds the adapter of a mergeable method into the base weights and saves the model and
its tokenizer (:mod:`zoo.io.merged_export`); ``--peft`` writes the adapter in peft's format
(:mod:`zoo.io.peft_interchange`). Neither replaces a folder zoo did not create.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from zoo.io.merged_export import export_merged, load_run, read_run
from zoo.io.peft_interchange import export_peft
from zoo.runtime.errors import run_command


def main(argv: list[str] | None = None) -> int:
    """Exit status 0, or 2 where a user error stopped it (zoo.runtime.errors: one line, its traceback with ``--debug``)."""
    parser = argparse.ArgumentParser(prog="zoo-export", description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a run's output folder (it holds metrics.json and adapter/)")
    parser.add_argument("--merged", type=Path, metavar="OUT", help="write the base model with the adapter merged in")
    parser.add_argument("--peft", type=Path, metavar="OUT", help="write the adapter as a peft adapter folder")
    parser.add_argument("--debug", action="store_true", help="show the traceback of every error")
    args = parser.parse_args(argv)
    if args.merged is None and args.peft is None:
        parser.error("give --merged OUT, --peft OUT, or both")
    return run_command("zoo-export", lambda: _export(args), args.debug)


def _export(args: argparse.Namespace) -> int:
    if args.peft is not None:
        model, _ = load_run(args.run, read_run(args.run))
        print(f"wrote the {model.method} adapter in peft's format to {export_peft(model, args.peft)}")
    if args.merged is not None:
        print(f"wrote the merged model to {export_merged(args.run, args.merged)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
