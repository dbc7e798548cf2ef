"""The report's plot: the Pareto front, labels that never overlap, a legend naming every row, intervals drawn, same bytes."""

from __future__ import annotations

import matplotlib
import matplotlib.figure
import matplotlib.text
import pytest

from zoo.report.pareto_plot import label_offsets, pareto_front, plot

matplotlib.use("Agg")


def _row(method: str, params: int, accuracy: float, seconds: float = 10.0) -> dict:
    return {
        "method": method,
        "config": "",
        "objective_metric": "accuracy",
        "accuracy": accuracy,
        "accuracy_std": 0.01,
        "accuracy_low": accuracy - 0.05,
        "accuracy_high": accuracy + 0.04,
        "trainable_params": params,
        "train_seconds": seconds,
    }


ROWS = [
    _row("lora", 1000, 0.80),
    _row("gift", 100, 0.78),
    _row("ia3", 100, 0.70),
    _row("full_finetune", 10**6, 0.82),
    _row("adapter", 5000, 0.79),
    _row("zero_shot", 0, 0.55),
    *(_row(f"prompt_{i}", 1000, 0.80) for i in range(4)),
]


def test_the_pareto_front_is_the_rows_no_row_beats_on_both_axes():
    front = pareto_front([r for r in ROWS if r["trainable_params"]], "trainable_params", "accuracy")
    assert [r["method"] for r in front] == ["gift", "lora", "full_finetune"]  # adapter: lora scores more with fewer
    rouge = [{**r, "objective_metric": "rouge_l", "rouge_l": r["accuracy"]} for r in ROWS[:3]]
    assert [r["method"] for r in pareto_front(rouge, "trainable_params", "rouge_l")] == ["gift", "lora"]


def test_labels_at_one_place_go_to_either_side_then_up_and_down():
    offsets = label_offsets([(100.0, 50.0)] * 6 + [(300.0, 50.0)])
    assert offsets == [(0.0, 0.0), (-24.0, 0.0), (0.0, 10.0), (-24.0, 10.0), (0.0, -10.0), (-24.0, -10.0), (0.0, 0.0)]
    assert label_offsets([(0.0, 0.0), (0.0, 25.0)]) == [(0.0, 0.0), (0.0, 0.0)]  # far enough apart: left where they are


def test_every_label_is_readable_and_every_row_named(tmp_path, monkeypatch):
    drawn = []
    savefig = matplotlib.figure.Figure.savefig

    def saved(fig, *args, **kwargs):  # the labels as drawn in the file
        savefig(fig, *args, **kwargs)
        renderer = fig.canvas.get_renderer()
        drawn.append((fig, [(t.get_text(), matplotlib.text.Text.get_window_extent(t, renderer)) for t in fig.axes[0].texts]))

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", saved)
    plot(ROWS, tmp_path / "pareto.png")
    ((fig, numbers),) = drawn
    ax = fig.axes[0]
    assert sorted(text for text, _ in numbers) == sorted(str(i) for i in range(1, 10))
    boxes = [box for _, box in numbers]
    assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1 :])  # not even the five rows at one point
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "1  lora" in legend and "zero_shot (nothing trained)" in legend and "Pareto front" in legend
    assert legend[:9] == [
        "1  lora",
        "2  gift",
        "3  ia3",
        "4  full_finetune",
        "5  adapter",
        *(f"{i + 6}  prompt_{i}" for i in range(4)),
    ]
    assert legend[9:] == ["zero_shot (nothing trained)", "Pareto front"]
    again = tmp_path / "again.png"
    plot(ROWS, again)
    assert again.read_bytes() == (tmp_path / "pareto.png").read_bytes()


def test_a_plot_of_many_rows_keeps_its_legend_and_every_number_inside_the_figure(tmp_path, monkeypatch):
    """The extended profile's page plots about 50 rows, most in one crowd: the figure grows to hold a legend line a row,
    and the crowd's numbers spread to both sides of their markers without overlapping or leaving the figure."""
    drawn = []
    savefig = matplotlib.figure.Figure.savefig

    def saved(fig, *args, **kwargs):
        savefig(fig, *args, **kwargs)
        fig.canvas.draw()  # the figure, its legend and its numbers measured in one unit (the saved file's dpi differs)
        renderer = fig.canvas.get_renderer()
        legend = fig.axes[0].get_legend().get_window_extent(renderer)
        numbers = [matplotlib.text.Text.get_window_extent(t, renderer) for t in fig.axes[0].texts]  # without leader lines
        drawn.append((fig.bbox, legend, numbers))

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", saved)
    crowd = [_row(f"peft_tuner_{i} (tuned) +benchmark=extended", 10**5 + 4000 * i, 0.80 + 0.001 * i) for i in range(48)]
    plot([*crowd, _row("zero_shot", 0, 0.6)], tmp_path / "crowd.png")
    ((figure, legend, numbers),) = drawn
    assert figure.height > 5 * 120 and figure.contains(legend.x0, legend.y0) and figure.contains(legend.x1, legend.y1)
    assert len(numbers) == 48 and all(figure.contains(b.x0, b.y0) and figure.contains(b.x1, b.y1) for b in numbers)
    assert not any(a.overlaps(b) for i, a in enumerate(numbers) for b in numbers[i + 1 :])
    assert min(b.x0 for b in numbers) < min(b.x1 for b in numbers)  # some to the left of their markers


def test_an_axis_the_plot_does_not_know_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"x 'memory' is not one of \['train_seconds', 'trainable_params'\]"):
        plot(ROWS, tmp_path / "p.png", x="memory")
