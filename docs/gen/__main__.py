"""``python -m docs.gen``: write the generated pages; ``--check``: exit 1 naming those that are stale."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from docs.gen import headline, methods, pages, roles
from docs.gen.results import ROOT
from zoo.runtime.atomic import write_text

DOCS = ROOT / "docs"
README = ROOT / "README.md"


def into_readme(text: str, block: str, begin: str = pages.BEGIN, end: str = pages.END) -> str:
    """``text`` (README.md) with what lies between ``begin`` and ``end`` (the methods table's markers unless told)
    replaced by ``block``.

    Raises:
        ValueError: the markers are missing.
    """
    if begin not in text or end not in text:
        raise ValueError(f"README.md has no {begin} ... {end} markers; add them where the generated block belongs")
    head, rest = text.split(begin, 1)
    return head + block + rest.split(end, 1)[1]


def generated(readme: Path = README) -> dict[Path, str]:
    """Every generated file and the text it should hold."""
    files = {DOCS / "methods" / f"{name}.md": pages.method_page(name) for name in methods.builtin_methods()}
    files[DOCS / "methods" / "index.md"] = pages.methods_index()
    files[roles.PAGE] = roles.page()
    text = into_readme(readme.read_text(), pages.readme_block())
    files[readme] = into_readme(text, headline.headline(), headline.BEGIN, headline.END)
    return files


def stale(files: dict[Path, str]) -> list[str]:
    """The files of ``files`` whose committed text differs from the generated one (or that are missing)."""
    return [
        path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else str(path)
        for path, text in files.items()
        if not path.is_file() or path.read_text() != text
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Write the documentation pages generated from the code and the benchmark records."
    )
    parser.add_argument("--check", action="store_true", help="compare the committed pages with the generated ones; write nothing")
    args = parser.parse_args(argv)
    files = generated()
    if args.check:
        behind = stale(files)
        print("generated pages are up to date" if not behind else "stale, run python -m docs.gen: " + ", ".join(behind))
        return 1 if behind else 0
    for path, text in files.items():
        write_text(path, text)
    print(f"wrote {len(files)} files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
