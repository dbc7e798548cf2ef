"""zoo-report's HTML page in a real browser: headless Chromium (the distribution's, driven by playwright's Python API, as
benchmarks/report_screenshot.py drives it) opens the page of a fresh smoke sweep from its file.

No console errors; one table row per report row; a click on a header sorts by that column, a filter hides rows; every plot
has drawn its points; the flips view lists a run's fixed and broken examples; the screenshot is not blank. Where Chromium or
playwright is missing these tests skip, saying which (.ci/run installs both: the last test checks it). A page of 500 runs is
timed opening and sorting (in the slow tier, ``-m full``); the times are printed (``-s``), not asserted.
"""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

import pytest
from records_helpers import record_dict

from benchmarks.report_screenshot import VIEWPORT, browser, missing, screenshot
from zoo.report.table import load_runs, summarise
from zoo.report.table import main as report_main
from zoo.runtime.atomic import write_json, write_text

ROOT = Path(__file__).resolve().parents[1]
needs_browser = pytest.mark.skipif(missing() is not None, reason=f"no headless browser here: {missing()}")
SMOKE = ("trainer=smoke", "trainer.eval_every=2", "task.n_train=32", "task.n_eval=32", "latency=false")
RUNS = {
    "lora/seed0": ("method=lora", "seed=0"),
    "lora/seed1": ("method=lora", "seed=1"),
    "ia3/seed0": ("method=ia3",),
    "prompt_tuning/seed0": ("method=prompt_tuning",),
    "zero_shot/seed0": ("baseline=zero_shot",),
}


@pytest.fixture(scope="module")
def smoke_page(tmp_path_factory):
    """A fresh sweep of tiny-llama runs (two seeds of lora, ia3, prompt tuning, zero-shot) and its page, by zoo-report --html."""
    if missing() is not None:
        pytest.skip(f"no headless browser here: {missing()}")
    from app_config import app_config

    from zoo.runner.run import run

    folder = tmp_path_factory.mktemp("sweep")
    for name, overrides in RUNS.items():
        run(app_config(*SMOKE, *overrides), folder / name)
    assert report_main([str(folder), "--baseline-rows", "--html", str(folder / "report.html")]) == 0
    return folder, summarise(load_runs(folder), baseline_rows=True)


@pytest.fixture
def opened(smoke_page):
    """The smoke page open in Chromium, and the console errors it logged."""
    folder, rows = smoke_page
    errors = []
    with browser() as chromium:
        page = chromium.new_page(viewport=VIEWPORT)
        page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto((folder / "report.html").as_uri())
        page.wait_for_load_state("load")
        yield page, rows, errors


def _column(page, header: str) -> list[str]:
    index = page.locator("table.rows thead th").all_inner_texts().index(header)
    return page.eval_on_selector_all("table.rows tbody tr", f"rows => rows.map(r => r.cells[{index}].dataset.value)")


@needs_browser
def test_the_page_opens_without_console_errors_with_a_row_per_report_row(opened):
    page, rows, errors = opened
    assert errors == []
    assert page.locator("table.rows tbody tr").count() == len(rows) == 4  # lora, ia3, prompt tuning, zero-shot
    assert sorted(page.eval_on_selector_all("table.rows tbody tr", "rows => rows.map(r => r.dataset.method)")) == sorted(
        r["method"] for r in rows
    )
    assert page.locator(".filters .shown").inner_text() == "4 of 4 rows shown"


@needs_browser
def test_a_click_on_a_header_sorts_by_its_column_and_a_second_the_other_way(opened):
    page, rows, _ = opened
    before = _column(page, "method")
    page.locator("table.rows thead th", has_text=re.compile("^trainable$")).click()
    ascending = [float(v) for v in _column(page, "trainable")]
    assert ascending == sorted(r["trainable_params"] for r in rows) and _column(page, "method") != before
    page.locator("table.rows thead th", has_text=re.compile("^trainable")).click()
    assert [float(v) for v in _column(page, "trainable")] == sorted(ascending, reverse=True)


@needs_browser
def test_filters_hide_the_rows_they_leave_out(opened):
    page, _, _ = opened
    page.select_option(".filters select[data-attribute=family]", "mergeable")
    shown = page.eval_on_selector_all("table.rows tbody tr:not([hidden])", "rows => rows.map(r => r.dataset.method)")
    assert sorted(shown) == ["ia3", "lora"] and page.locator("table.rows tbody tr[hidden]").count() == 2
    page.select_option(".filters select[data-attribute=family]", "")
    page.fill(".filters .filter-method", "prompt")
    assert page.eval_on_selector_all("table.rows tbody tr:not([hidden])", "rows => rows.map(r => r.dataset.method)") == [
        "prompt_tuning"
    ]
    assert page.locator(".filters .shown").inner_text() == "1 of 4 rows shown"


DRAWN = """plots => plots.map(p => [p.id || p.parentElement.id, p.querySelectorAll('.scatterlayer .points path.point').length,
  p.data.filter(t => (t.mode || '').includes('markers')).reduce((n, t) => n + t.y.filter(v => v !== null).length, 0)])"""
"""Each plot's id, the points its SVG holds, and the points its data has (traces with markers, values that are not null)."""


@needs_browser
def test_every_plot_has_drawn_its_points(opened):
    page, rows, _ = opened
    drawn = page.eval_on_selector_all(".js-plotly-plot", DRAWN)
    assert len(drawn) == 4  # three Pareto plots and the learning curve
    for name, in_svg, in_data in drawn:
        assert in_svg == in_data > 0, name
    pareto = {name: in_svg for name, in_svg, _ in drawn}
    assert pareto["task-0-pareto-trainable_params"] == len(rows)  # 0 to 3,584 parameters: a linear axis, zero-shot at 0
    assert pareto["task-0-pareto-forgetting"] == len(rows) - 1  # zero-shot measured no forgetting: a dashed level instead


@needs_browser
def test_the_flips_view_lists_a_runs_fixed_and_broken_examples_with_their_text(opened, smoke_page):
    page, _, _ = opened
    folder, _ = smoke_page
    import json

    record = json.loads((folder / "prompt_tuning" / "seed0" / "metrics.json").read_text())
    option = page.locator("select.run[data-view=flips] option", has_text="prompt_tuning").get_attribute("value")
    page.select_option("select.run[data-view=flips]", option)
    captions = page.locator("#task-0-flips caption").all_inner_texts()
    assert captions == [f"fixed: {record['flips']['corrections']} examples", f"broken: {record['flips']['regressions']} examples"]
    assert all(text.strip() for text in page.locator("#task-0-flips tbody td:nth-child(2)").all_inner_texts())


@needs_browser
def test_the_screenshot_is_not_blank(smoke_page, tmp_path):
    from PIL import Image

    folder, _ = smoke_page
    screenshot(folder / "report.html", tmp_path / "page.png")
    image = Image.open(tmp_path / "page.png").convert("RGB")
    assert image.size == (VIEWPORT["width"], VIEWPORT["height"])
    colours = image.resize((300, 220)).getcolors(maxcolors=300 * 220)
    assert len(colours) > 50 and max(count for count, _ in colours) < 0.9 * 300 * 220  # text, tables and plots, not one colour


@needs_browser
def test_a_screenshot_of_one_task_starts_at_its_section_and_an_unknown_task_is_named(smoke_page, tmp_path):
    from PIL import Image

    folder, _ = smoke_page
    screenshot(folder / "report.html", tmp_path / "top.png")
    screenshot(folder / "report.html", tmp_path / "task.png", task="synthetic_sentiment")
    top, task = (Image.open(tmp_path / name).convert("RGB") for name in ("top.png", "task.png"))
    assert top.size == task.size and top.tobytes() != task.tobytes()  # scrolled past the title and legend
    with pytest.raises(ValueError, match=r"has no section for task 'nope'; it has \['synthetic_sentiment'\]"):
        screenshot(folder / "report.html", tmp_path / "nope.png", task="nope")
    assert not (tmp_path / "nope.png").exists()


def _many_runs(folder: Path, n: int) -> None:
    """``n`` synthetic runs, each a row of its own (its overrides), with per-example scores, a history and forgetting."""
    methods = ["lora", "ia3", "adapter", "prompt_tuning", "gift"]
    for i in range(n):
        method, answers = methods[i % len(methods)], [(i * 7 + k) % 3 != 0 for k in range(40)]
        accuracy = sum(answers) / len(answers)
        run = folder / method / f"r{i}"
        write_json(
            run / "metrics.json",
            record_dict(
                method=method,
                trainable_params=100 + 37 * i,
                train_seconds=1.0 + i % 17,
                eval_fingerprint="e",
                train_steps=10,
                scores={"accuracy": accuracy, "macro_f1": accuracy},
                example_scores={"accuracy": [int(a) for a in answers]},
                history=[{"step": s, "loss": 1 / s, "accuracy": accuracy} for s in (2, 4, 6, 8)],
                forgetting={"delta": (i % 11) / 100},
            ),
        )
        write_text(run / ".hydra" / "overrides.yaml", f"- method={method}\n- method.rank={i}\n")


@pytest.mark.full  # a minute and more of bootstrap intervals and page writing: the slow tier
@needs_browser
def test_a_page_of_500_runs_opens_and_sorts_in_the_headless_browser(tmp_path):
    _many_runs(tmp_path, 500)
    start = time.perf_counter()
    assert report_main([str(tmp_path), "--html", str(tmp_path / "report.html")]) == 0
    written = time.perf_counter() - start
    with browser() as chromium:
        page = chromium.new_page(viewport=VIEWPORT)
        start = time.perf_counter()
        page.goto((tmp_path / "report.html").as_uri())
        page.wait_for_load_state("load")
        opened = time.perf_counter() - start
        assert page.locator("table.rows tbody tr").count() == 500
        sorted_in = page.evaluate("""() => { const th = Array.from(document.querySelectorAll('table.rows th'))
            .find(h => h.textContent.startsWith('accuracy')); const t0 = performance.now(); th.click(); return performance.now() - t0; }""")
    print(
        f"\n500 runs: page written in {written:.1f} s ({(tmp_path / 'report.html').stat().st_size / 2**20:.1f} MiB), "
        f"opened in {opened:.2f} s, sorted by accuracy in {sorted_in / 1000:.3f} s",
        file=sys.stderr,
    )


def test_ci_installs_the_browser_and_playwright():
    """.ci/run installs the distribution's Chromium with apt-get (where it can) and playwright through the browser extra."""
    script = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"apt-get install -y[^\n]*\bchromium\b", script)
    assert re.search(r"extras=test,browser\b", script)
    assert re.search(r"browser = \[\"playwright>=", (ROOT / "pyproject.toml").read_text())
