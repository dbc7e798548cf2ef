"""A screenshot of an HTML report page (zoo-report --html, RESULTS.html) in headless Chromium, as the browser tests open it.

    python -m benchmarks.report_screenshot benchmarks/RESULTS.html docs/images/report.png --task movie_sentiment

The browser is the distribution's Chromium (``apt-get install chromium``; ``ZOO_CHROMIUM`` names another executable)
driven through playwright's Python API (``pip install -e ".[browser]"``): playwright's own browser download is never used.
The page is opened from its file, offline; the screenshot is its top, :data:`VIEWPORT` wide and high.
"""

from __future__ import annotations

import argparse
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

VIEWPORT = {"width": 1500, "height": 1100}
EXECUTABLES = ("chromium", "chromium-browser", "google-chrome")
"""The names a system Chromium is installed under, tried in order on the PATH."""


def chromium() -> str | None:
    """The Chromium executable to drive: ``ZOO_CHROMIUM`` if set (None where it names no executable), else the first of
    :data:`EXECUTABLES` on the PATH."""
    named = os.environ.get("ZOO_CHROMIUM")
    return shutil.which(named) if named else next(filter(None, map(shutil.which, EXECUTABLES)), None)


def missing() -> str | None:
    """Why a page cannot be opened here (no Chromium, no playwright), or None when it can."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return 'playwright is not installed (pip install -e ".[browser]")'
    if chromium() is None and os.environ.get("ZOO_CHROMIUM"):
        return f"ZOO_CHROMIUM={os.environ['ZOO_CHROMIUM']} is not an executable"
    if chromium() is None:
        return f"no Chromium on the PATH ({', '.join(EXECUTABLES)}; apt-get install chromium) and ZOO_CHROMIUM is unset"
    return None


@contextmanager
def browser() -> Iterator:
    """A headless Chromium (playwright's Browser); raises RuntimeError saying what is missing."""
    why = missing()
    if why is not None:
        raise RuntimeError(why)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        launched = driver.chromium.launch(
            executable_path=chromium()
        )  # playwright's default: no setuid helper, so root runs it too
        try:
            yield launched
        finally:
            launched.close()


def screenshot(page_file: Path, png: Path, task: str | None = None) -> None:
    """The top of ``page_file`` as a PNG at ``png`` (written beside it first, then moved: atomic); with ``task``, the top of
    that task's section instead.

    Raises:
        ValueError: the page has no section for ``task``, naming the ones it has.
    """
    with browser() as chromium_browser:
        page = chromium_browser.new_page(viewport=VIEWPORT)
        page.goto(Path(page_file).resolve().as_uri())
        page.wait_for_load_state("load")
        if task is not None:
            headings = page.locator("section.task > h2").all_inner_texts()
            if task not in headings:
                raise ValueError(f"{page_file} has no section for task {task!r}; it has {headings}")
            page.locator("section.task > h2").nth(headings.index(task)).evaluate("h => h.scrollIntoView({block: 'start'})")
        png.parent.mkdir(parents=True, exist_ok=True)
        tmp = png.with_name(f".{png.name}.tmp.png")
        page.screenshot(path=str(tmp))
        tmp.replace(png)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("page", type=Path, help="the HTML page (zoo-report --html, RESULTS.html)")
    parser.add_argument("png", type=Path, help="the screenshot to write")
    parser.add_argument("--task", help="start at this task's section (default: the top of the page)")
    args = parser.parse_args(argv)
    if not args.page.is_file():
        parser.error(f"{str(args.page)!r} is not a file; write it with zoo-report --html or python -m benchmarks.suite")
    try:
        screenshot(args.page, args.png, args.task)
    except ValueError as error:
        parser.error(str(error))
    print(f"wrote {args.png}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
