"""Tables (markdown + CSV), JSON and PNG plots of a structural analysis, all written atomically."""

from __future__ import annotations

import csv
import io
import math
from dataclasses import asdict
from pathlib import Path

from zoo.research.structure import KindSummary, MatrixChange
from zoo.runtime.written import claim, write_file, write_json_file, write_text

MATRIX_COLUMNS = [
    "name",
    "layer",
    "kind",
    "shape",
    "relative_change",
    "scale",
    "scale_residual",
    "ratio_min",
    "ratio_max",
    "rotation_left",
    "rotation_right",
    "left_right_agreement",
    "null_rotation",
    "null_agreement",
    "procrustes_residual",
    "model_residual",
]
KIND_COLUMNS = [
    "kind",
    "layers",
    "scale_mean",
    "scale_cv",
    "rotation_mean",
    "rotation_cv",
    "left_right_agreement",
    "rotation_similarity",
    "null_rotation",
    "null_agreement",
]


def matrix_row(change: MatrixChange) -> dict:
    return {k: (f"{change.shape[0]}x{change.shape[1]}" if k == "shape" else getattr(change, k)) for k in MATRIX_COLUMNS}


def _csv(rows: list[dict], columns: list[str]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def _f(value: float, digits: int = 4) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def markdown(changes: list[MatrixChange], kinds: list[KindSummary], experiments: list[dict] | None, title: str) -> str:
    lines = [
        f"# Structural change: {title}",
        "",
        "Per matrix kind across layers, over the matrices tuning changed (scale c = least-squares S_t ≈ c·S_b; rotation = ‖R − I‖_F/√(2k), "
        "0 none, ≈1 random; agreement = tr(R_Uᵀ R_V)/k; similarity = mean cosine of the rotations' skew parts "
        "between layers; chance = the same numbers for a random perturbation of the same norm):",
        "",
        "| kind | changed matrices | scale c | CV of c | rotation | CV of rotation | left/right agreement | similarity across layers "
        "| chance rotation | chance agreement |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for k in kinds:
        lines.append(
            f"| {k.kind} | {k.layers} | {_f(k.scale_mean)} | {_f(k.scale_cv)} | {_f(k.rotation_mean)} | {_f(k.rotation_cv)} "
            f"| {_f(k.left_right_agreement)} | {_f(k.rotation_similarity)} | {_f(k.null_rotation)} | {_f(k.null_agreement)} |"
        )
    if experiments:
        lines += [
            "",
            "Interventions (He & Cao 2025), task metric of the rebuilt model:",
            "",
            "| model | matrices rebuilt | accuracy | macro-F1 | Δ accuracy vs tuned |",
            "|---|---|---|---|---|",
        ]
        tuned = next((e["accuracy"] for e in experiments if e["variant"] == "tuned"), None)
        for e in experiments:
            delta = _f(e["accuracy"] - tuned, 3) if tuned is not None else "n/a"
            lines.append(
                f"| {e['variant']} | {e.get('rebuilt', '-')} | {_f(e['accuracy'], 3)} | {_f(e['macro_f1'], 3)} | {delta} |"
            )
    lines += [
        "",
        "Per matrix:",
        "",
        "| matrix | shape | ‖ΔW‖/‖W‖ | c | spectrum residual | S_t/S_b min–max | rot. left | rot. right | agreement "
        "| chance rot. | chance agr. | Procrustes residual | model residual |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for c in changes:
        lines.append(
            f"| {c.name} | {c.shape[0]}x{c.shape[1]} | {_f(c.relative_change)} | {_f(c.scale)} | {_f(c.scale_residual)} "
            f"| {_f(c.ratio_min, 3)}–{_f(c.ratio_max, 3)} | {_f(c.rotation_left)} | {_f(c.rotation_right)} | {_f(c.left_right_agreement)} "
            f"| {_f(c.null_rotation)} | {_f(c.null_agreement)} | {_f(c.procrustes_residual)} | {_f(c.model_residual)} |"
        )
    return "\n".join(lines) + "\n"


def _save(fig, path: Path) -> None:
    import matplotlib.pyplot as plt

    try:
        write_file(path, lambda tmp: fig.savefig(tmp, dpi=120, format="png"), "a plot of the structure analysis")
    finally:
        plt.close(fig)


def plot_structure(changes: list[MatrixChange], path: Path, title: str) -> None:
    """Three panels: c per layer by kind; S_t/S_b along the spectrum; rotation per layer by kind."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, (ax_scale, ax_ratio, ax_rot) = plt.subplots(1, 3, figsize=(15, 4.5))
    kinds = list(dict.fromkeys(c.kind for c in changes))
    colours = {k: plt.cm.tab10(i % 10) for i, k in enumerate(kinds)}
    for kind in kinds:
        members = sorted((c for c in changes if c.kind == kind), key=lambda c: c.layer or 0)
        layers = [c.layer for c in members]
        ax_scale.plot(layers, [c.scale for c in members], "o-", color=colours[kind], label=kind)
        ax_rot.plot(layers, [c.rotation_left for c in members], "o-", color=colours[kind], label=f"{kind} (left)")
        ax_rot.plot(layers, [c.rotation_right for c in members], "s--", color=colours[kind], alpha=0.6)
        for c in members:
            positive = c.S_base > c.S_base[0] * 1e-12
            index = (positive.nonzero().squeeze(-1).double() + 0.5) / len(c.S_base)
            ax_ratio.plot(
                index.numpy(), (c.S_tuned[positive] / c.S_base[positive]).numpy(), color=colours[kind], alpha=0.5, lw=0.8
            )
    ax_scale.set(xlabel="layer", ylabel="fitted scale c", title="singular-value scale per matrix")
    ax_ratio.set(xlabel="singular value index (fraction of rank)", ylabel="S_tuned / S_base", title="ratio along the spectrum")
    ax_rot.set(xlabel="layer", ylabel="‖R − I‖_F / √(2k)", title="rotation (circles: left, squares: right)")
    ax_scale.legend(fontsize=7)
    for ax in (ax_scale, ax_rot):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    for ax in (ax_scale, ax_ratio, ax_rot):
        ax.grid(True, alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    _save(fig, path)


def plot_experiments(experiments: list[dict], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4))
    names = [e["variant"] for e in experiments]
    ax.bar(
        names, [e["accuracy"] for e in experiments], color=["tab:gray" if n in ("base", "tuned") else "tab:blue" for n in names]
    )
    ax.set(ylabel="accuracy", ylim=(0, 1), title=title)
    ax.tick_params(axis="x", rotation=20)
    ax.grid(True, axis="y", alpha=0.3)
    fig.tight_layout()
    _save(fig, path)


NAMES = ("structure.md", "matrices.csv", "kinds.csv", "structure.json", "structure.png", "experiments.png")
"""The files of a report (the last one where there are experiments)."""


def claim_report(out: Path) -> None:
    """Refuse to analyse into ``out`` where a report file there is not one zoo wrote (zoo.runtime.written), before the work."""
    for name in NAMES:
        claim(out / name, "the structure analysis")


def write_report(
    out: Path, changes: list[MatrixChange], kinds: list[KindSummary], experiments: list[dict] | None, title: str
) -> list[Path]:
    """Write ``structure.md``, ``matrices.csv``, ``kinds.csv``, ``structure.json``, ``structure.png``
    (and ``experiments.png`` when there are experiments) into ``out``; return the paths."""
    claim_report(out)
    paths = [out / n for n in NAMES[:5]]
    what = "the structure analysis"
    write_text(paths[0], markdown(changes, kinds, experiments, title), what)
    write_text(paths[1], _csv([matrix_row(c) for c in changes], MATRIX_COLUMNS), what)
    write_text(paths[2], _csv([asdict(k) for k in kinds], KIND_COLUMNS), what)
    write_json_file(
        paths[3],
        {
            "title": title,
            "kinds": [asdict(k) for k in kinds],
            "matrices": [matrix_row(c) for c in changes],
            "experiments": experiments or [],
        },
        what,
    )
    plot_structure(changes, paths[4], title)
    if experiments:
        paths.append(out / NAMES[5])
        plot_experiments(experiments, paths[-1], f"{title}: interventions")
    return paths
