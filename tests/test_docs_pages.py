"""The documentation pages generated from the code (docs/methods/, README.md's methods table) are current, and their
generator (docs/gen) reads the code and the benchmark records correctly."""

from __future__ import annotations

import re

import pytest

import zoo
from docs.gen import headline, methods, pages, results
from docs.gen.__main__ import DOCS, README, generated, into_readme, main, stale
from docs.gen.rst import markdown


@pytest.fixture(scope="module")
def files():
    return generated()


def test_committed_pages_are_the_generated_ones(files):
    assert stale(files) == [], "run python -m docs.gen"
    assert main(["--check"]) == 0


def test_every_builtin_method_has_a_page_a_readme_row_and_a_place_in_the_nav():
    builtin = methods.builtin_methods()
    assert {"lora", "ia3", "adapter", "prompt_tuning", "full_finetune"} <= set(builtin)
    assert not [name for name in builtin if name.startswith("peft_")]  # the bridge is a plugin: its own page
    assert sorted(path.stem for path in (DOCS / "methods").glob("*.md") if path.stem != "index") == builtin
    rows = re.findall(r"^\| \[`(\w+)`\]\(docs/methods/(\w+)\.md\)", README.read_text(), re.MULTILINE)
    assert rows == [(name, name) for name in builtin]
    nav = (DOCS.parent / "mkdocs.yml").read_text()
    assert all(f"{name}: methods/{name}.md" in nav for name in builtin)


def test_a_stale_readme_is_reported_and_rewritten(tmp_path, files):
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{headline.BEGIN}\nold rows\n{headline.END}\n{pages.BEGIN}\nold table\n{pages.END}\nrest\n")
    mine = generated(readme)
    assert stale({readme: mine[readme]}) == [str(readme)]
    readme.write_text(mine[readme])
    assert stale({readme: mine[readme]}) == []
    assert readme.read_text().startswith(f"intro\n{headline.headline()}\n<!-- methods-table -->\n")
    assert readme.read_text().endswith("-->\nrest\n") and "old" not in readme.read_text()
    assert "| [`lora`](docs/methods/lora.md) | [Hu et al. 2021](https://arxiv.org/abs/2106.09685) |" in readme.read_text()
    with pytest.raises(ValueError, match="README.md has no <!-- methods-table --> ... <!-- /methods-table --> markers"):
        into_readme("no markers\n", "")


def test_table_cells_are_the_records_cells():
    default = results.DEFAULT_TASK.read_text().split("\n## synthetic_sentiment\n")[1]
    lora = next(line for line in default.splitlines() if line.startswith("| lora |")).split(" | ")
    header = next(line for line in default.splitlines() if line.startswith("| method |")).split(" | ")
    accuracy, trainable = lora[header.index("accuracy")], lora[header.index("trainable")]
    assert (accuracy, trainable) == ("0.971 ± 0.006", "3,584")
    movie = results.table(results.FULL, "movie_sentiment")
    tuned = movie.cell("lora (tuned)", "accuracy [95% CI]")
    assert tuned == "0.836 [0.794, 0.874]"
    row = next(line for line in pages.readme_block().splitlines() if line.startswith("| [`lora`]"))
    assert f"| {trainable} | {accuracy} | {tuned} |" in row
    every = results.task_tables(results.FULL, "movie_sentiment")
    assert [[r[0] for r in t.rows_of("lora")] for t in every] == [["lora (tuned)"], ["lora"]]  # not the copies of others
    with pytest.raises(KeyError, match="has no table for task 'nope'; it has"):
        results.table(results.FULL, "nope")


SMOKE = results.ROOT / "benchmarks" / "records" / "smoke" / "RESULTS.md"
"""A record of the current layout: per task its tuned rows and baselines, the search's choices, then its default rows."""


def test_a_record_with_tuned_and_default_tables_gives_both_and_not_the_search():
    found = results.task_tables(SMOKE, "synthetic_sentiment")
    assert [t.part for t in found] == ["Tuned rows and baselines", "Default rows"]
    main, default = found
    assert results.table(SMOKE, "synthetic_sentiment") == main
    assert [r[0] for r in main.rows_of("lora")] == ["lora (tuned)"] and [r[0] for r in default.rows_of("lora")] == ["lora"]
    assert main.column("vs ") == "vs lora (tuned) [95% CI]" and default.column("vs ") == "vs lora [95% CI]"
    assert "chosen" not in main.header + default.header  # the search's table holds trials' values, not runs
    with pytest.raises(KeyError, match="no column starting 'nope'"):
        main.column("nope")


def test_the_headline_is_the_first_rows_of_the_main_table_and_its_detectable_difference():
    block = headline.headline(SMOKE, "synthetic_sentiment")
    main = results.table(SMOKE, "synthetic_sentiment")
    first = main.rows[0]
    assert block.startswith(headline.BEGIN) and block.endswith(headline.END)
    line = f"| {first[0]} | {first[main.header.index('accuracy [95% CI]')]} | {first[main.header.index('vs lora (tuned) [95% CI]')]} |"
    assert line in block and main.rows[headline.SHOWN_ROWS][0] + " |" not in block.split("\n![")[0]
    assert "minimum detectable difference (80% power, 5% level, paired): 0.170" in block
    assert (
        "(benchmarks/records/smoke/pareto_synthetic_sentiment.png)" in block
        and (SMOKE.parent / "pareto_synthetic_sentiment.png").is_file()
    )


def test_a_file_that_is_no_record_is_refused(tmp_path):
    (tmp_path / "notes.md").write_text("# notes\n\n| a | b |\n|---|---|\n| 1 | 2 |\n")
    with pytest.raises(ValueError, match="notes.md holds no '| method | ...' table"):
        results.tables(tmp_path / "notes.md")


def test_what_trains_is_read_from_the_wrapped_model():
    count, where = methods.trains("lora")
    r, width, kv_width, blocks = 8, 64, 32, 2  # tiny-llama: 4 heads of 16, 2 key/value heads
    assert count == blocks * (r * (width + width) + r * (width + kv_width))
    assert where == [("layers.*.self_attn.q_proj", ["lora_A", "lora_B"]), ("layers.*.self_attn.v_proj", ["lora_A", "lora_B"])]
    assert methods.trains("ia3")[1] == [
        ("layers.*.self_attn.k_proj", ["l_k"]),
        ("layers.*.self_attn.v_proj", ["l_v"]),
        ("layers.*.mlp.down_proj", ["l_ff"]),
    ]


def test_papers_fields_and_flags_come_from_the_method():
    lora = zoo.get_method("lora")
    assert methods.papers(lora) == [("Hu et al.", "2021", "2106.09685")]
    assert methods.papers(zoo.get_method("adapter")) == [
        ("Houlsby et al.", "2019", "1902.00751"),
        ("Pfeiffer et al.", "2020", "2005.00247"),
    ]
    assert methods.papers(zoo.get_method("full_finetune")) == []
    assert methods.fields(lora)[0] == ("r", "int", 8, "Rank of the update B·A.")
    assert ("mergeable", True) in methods.flags(lora) and ("learning_rate", lora.learning_rate) in methods.flags(lora)
    assert methods.source_path(lora) == "zoo/methods/lora.py"


def test_docstrings_become_markdown():
    text = "Intro with ``code`` and :func:`~zoo.wrap`::\n\n    x ──► W x\n      B A x\n\nAfter.\nA list:\n- one\n- two\n"
    assert markdown(text) == (
        "Intro with `code` and `zoo.wrap`:\n\n```text\nx ──► W x\n  B A x\n```\n\nAfter.\nA list:\n\n- one\n- two\n"
    )
    assert markdown("::\n\n    only a block\n") == "```text\nonly a block\n```\n"


def test_the_readme_python_example_runs(tmp_path, monkeypatch):
    example = README.read_text().split("```python\n", 1)[1].split("```", 1)[0]
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(compile(example, "README.md", "exec"), scope)
    trainable, total = zoo.count_parameters(scope["wrapped"])
    assert trainable == 2 * (8 * (64 + 64) + 8 * (64 + 32))  # LoRA r=8 on the query (64 -> 64) and value (64 -> 32) maps
    assert (tmp_path / "my-adapter" / "adapter_model.safetensors").is_file()
    assert (tmp_path / "peft-adapter" / "adapter_config.json").is_file()
