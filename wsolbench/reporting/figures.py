"""The paper's figures 4, 7 and 8 drawn from the results store (matplotlib, no
display): one panel per dataset, or per dataset and swept setting."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only; no display on clusters or CI
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from wsolbench.core.store import atomic_write  # noqa: E402
from wsolbench.reporting.paperspec import RunIndex, Spec, dataset_title  # noqa: E402
from wsolbench.reporting.tables import mean_sd, run_value  # noqa: E402

Missing = list[dict[str, Any]]


def _empty(ax: plt.Axes) -> None:
    ax.text(0.5, 0.5, "no runs", ha="center", va="center", transform=ax.transAxes, color="grey")


def _line(spec: Spec, index: RunIndex, ds: str, axes: list[plt.Axes]) -> Missing:
    """Metric against each panel's setting, the other settings at their defaults."""
    metric = spec.columns[0]
    missing = []
    for ax, panel in zip(axes, spec.panels, strict=True):
        given = {"dataset": ds, **spec.base}
        runs = index.find(given, free=panel.key)
        if not runs:
            missing.append({**given, panel.key: "VALUE"})
            _empty(ax)
        groups: dict[float, list[float]] = {}
        for r in runs:
            groups.setdefault(float(r.config[panel.key]), []).append(run_value(r, metric.metric))
        xs = sorted(groups)
        stats = [mean_sd(groups[x]) for x in xs]
        means, sds = [m for m, _ in stats], [sd or 0.0 for _, sd in stats]
        ax.errorbar(xs, means, yerr=sds, marker="o", capsize=3)
        for x, mean in zip(xs, means, strict=True):
            if len(groups[x]) > 1:  # error bars: sd over these seeds
                ax.annotate(f"n={len(groups[x])}", (x, mean), textcoords="offset points",
                            xytext=(5, 5), fontsize=8)  # fmt: skip
        if panel.key == "batch_size" and xs:
            ax.set_xscale("log", base=2)
            ax.set_xticks(xs, [f"{x:g}" for x in xs])
        ax.set_xlabel(panel.label)
        ax.set_ylabel(metric.label)
        ax.set_title(dataset_title(ds))
    return missing


def _threshold(spec: Spec, index: RunIndex, ds: str, axes: list[plt.Axes]) -> Missing:
    """Each method's test-split GT-known curve over the box thresholds, mean over seeds."""
    ax, missing = axes[0], []
    for row in spec.rows:
        given = {"dataset": ds, **spec.base, **row.settings}
        runs = [r for r in index.find(given) if r.curve]
        if not runs:
            missing.append(given)
            continue
        x = np.asarray(runs[0].curve["thresholds"])
        curves = np.array([r.curve["test_gt_known"] for r in runs])
        band = ", band min-max" if len(runs) > 1 else ""
        ax.plot(x, curves.mean(0), label=f"{row.label} (mean of {len(runs)}{band})")
        if len(runs) > 1:
            ax.fill_between(x, curves.min(0), curves.max(0), alpha=0.2)
    if missing and len(missing) == len(spec.rows):
        _empty(ax)
    ax.set_xlabel("box threshold")
    ax.set_ylabel(spec.columns[0].label)
    ax.set_title(dataset_title(ds))
    if len(missing) < len(spec.rows):
        ax.legend()
    return missing


def _box(spec: Spec, index: RunIndex, ds: str, axes: list[plt.Axes]) -> Missing:
    """Per category (k), one box per method over the seeds; the mean as a marker."""
    ax, missing = axes[0], []
    width = 0.8 / len(spec.rows)
    for i, row in enumerate(spec.rows):
        pos, data = [], []
        for j, cat in enumerate(spec.panels):
            given = {"dataset": ds, **spec.base, **row.settings, **cat.settings}
            vals = [run_value(r, spec.columns[0].metric) for r in index.find(given)]
            if not vals:
                missing.append(given)
                continue
            pos.append(j + (i - (len(spec.rows) - 1) / 2) * width)
            data.append(vals)
        if not data:
            continue
        colour = f"C{i}"
        ax.boxplot(
            data,
            positions=pos,
            widths=width * 0.9,
            patch_artist=True,
            boxprops={"facecolor": colour, "alpha": 0.4},
            medianprops={"color": colour},
        )
        ax.plot(pos, [np.mean(d) for d in data], "D", color=colour, label=row.label)
    ax.set_xticks(range(len(spec.panels)), [c.label for c in spec.panels])
    ax.set_xlabel("k (training images per class)")
    ax.set_ylabel(spec.columns[0].label)
    ax.set_title(dataset_title(ds))
    if len(missing) == len(spec.rows) * len(spec.panels):
        _empty(ax)
    else:
        ax.legend()
    return missing


KINDS = {"line": _line, "threshold": _threshold, "box": _box}


def draw_figure(spec: Spec, index: RunIndex, datasets: list[str], out: Path) -> Missing:
    """Write the figure to ``out`` (.png or .pdf); returns the runs it lacked."""
    ncols = len(spec.panels) if spec.kind == "line" else 1
    fig, axes = plt.subplots(
        len(datasets), ncols, figsize=(max(6.5, 4.5 * ncols), 3.6 * len(datasets)), squeeze=False
    )
    missing = []
    for ds, row_axes in zip(datasets, axes, strict=True):
        missing += KINDS[spec.kind](spec, index, ds, list(row_axes))
    fig.suptitle(spec.title, fontsize=10)
    fig.tight_layout()
    atomic_write(out, lambda f: fig.savefig(f, format=out.suffix[1:], dpi=120))
    plt.close(fig)
    return missing
