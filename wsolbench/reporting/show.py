"""Figures from a run's stored per-image results: map overlays with boxes (the paper's
Figs. 3 and 9), the IoU distribution of correct boxes (Fig. 5) and IoU against object
size (Fig. 6). Nothing re-runs a model; images are read from the dataset."""

from __future__ import annotations

import io
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from matplotlib.patches import Patch, Rectangle  # noqa: E402

from wsolbench.core.errors import UserError  # noqa: E402
from wsolbench.core.record import RunRecord  # noqa: E402
from wsolbench.core.store import Store, atomic_write  # noqa: E402
from wsolbench.evaluation.boxes import THRESHOLDS, normalize_authors, threshold_index  # noqa: E402
from wsolbench.evaluation.componenttree import largest_component_boxes  # noqa: E402
from wsolbench.evaluation.evaluate import frame_maps  # noqa: E402
from wsolbench.evaluation.perimage import load  # noqa: E402
from wsolbench.train.plan import plan  # noqa: E402

PRED, GT = "#ff2d2d", "#2dff5a"  # predicted and ground-truth box colours
DPI = 100
PANEL = (2.6, 2.9)  # inches per image panel


@dataclass
class StoredRun:
    record: RunRecord
    results: dict[str, np.ndarray]

    @property
    def label(self) -> str:
        c = self.record.config
        return f"{self.record.method} (k={c.get('kshot')}, seed {c.get('seed')})"

    def threshold_index(self) -> int | None:
        thr = self.record.threshold
        return None if thr is None else threshold_index(thr["box"])

    def iou(self) -> np.ndarray | None:
        """Best IoU of every test image at the run's chosen box threshold."""
        k = self.threshold_index()
        if k is None or "iou" not in self.results:
            return None
        return self.results["iou"][:, k].astype(np.float32)


def open_run(store: Store, run_id: str) -> StoredRun:
    record = store.record(run_id)
    if record is None:
        raise UserError(f"run '{run_id}': no finished run in {store.root}")
    path = store.run_dir(run_id) / "per_image.npz"
    if record.mode == "evaluate-maps":
        raise UserError(
            f"run '{run_id}' scored a folder of maps (evaluate-maps): it keeps no per-image "
            f"maps to draw; show the run that made them ({record.config.get('maps')})"
        )
    if not path.is_file():
        raise UserError(
            f"run '{run_id}' has no stored per-image maps (made by an older wsolbench); "
            "run it again with --force"
        )
    return StoredRun(record, load(path))


def choose(run: StoredRun, n: int, pick: str) -> np.ndarray:
    """Test-image indices (among those with stored maps) by IoU, or at random."""
    if n < 1:
        raise UserError(f"--n must be >= 1, got {n}")
    candidates = run.results["map_index"]
    iou = run.iou()
    if pick == "random" or iou is None:
        if pick != "random":
            raise UserError(f"run '{run.record.run_id}' has no boxes to rank by IoU")
        return np.sort(np.random.default_rng(0).choice(candidates, min(n, len(candidates)), False))
    order = np.argsort(iou[candidates], kind="stable")
    order = order if pick == "worst" else order[::-1]
    return candidates[order[:n]]


def save_figure(fig: plt.Figure, out: Path) -> Path:
    if out.suffix.lower() not in (".png", ".pdf"):
        raise UserError(f"{out}: figures are written as .png or .pdf")
    buf = io.BytesIO()
    fig.savefig(buf, format=out.suffix[1:].lower(), dpi=DPI)
    plt.close(fig)
    atomic_write(out, lambda f: f.write(buf.getvalue()))
    return out


def _panel(ax, image, grid, thr_k, gt_boxes, text, mode) -> matplotlib.image.AxesImage:
    """One image with its map as scored (``frame_maps``), the box at the run's
    threshold and the GT boxes."""
    h, w = image.shape[:2]
    frame = frame_maps(torch.from_numpy(grid.astype(np.float32))[None], (h, w), mode)[0]
    ax.imshow(image)
    heat = ax.imshow(frame, cmap="jet", alpha=0.45, vmin=0, vmax=1)
    if thr_k is not None:
        x0, y0, x1, y1 = largest_component_boxes(normalize_authors(frame), THRESHOLDS[[thr_k]])[0]
        ax.add_patch(Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, ec=PRED, lw=2))
    for x0, y0, x1, y1 in gt_boxes:
        ax.add_patch(
            Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0 + 1, y1 - y0 + 1, fill=False, ec=GT, lw=2)
        )
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_xlabel(text, fontsize=8)
    return heat


def show(
    store: Store, run_ids: list[str], n: int, pick: str, out: Path, data_root: str | None
) -> Path:
    """A grid of test images with map, predicted and GT boxes; several runs side by
    side on the same images (chosen by the first run)."""
    runs = [open_run(store, r) for r in run_ids]
    first = runs[0]
    for run in runs[1:]:
        if not np.array_equal(run.results["image_ids"], first.results["image_ids"]):
            raise UserError(
                f"runs '{first.record.run_id}' and '{run.record.run_id}' were not "
                "evaluated on the same test images"
            )
    chosen = choose(first, n, pick)
    given = dict(first.record.config)
    if data_root:
        given["data_root"] = data_root
    p = plan({**given, "pretrained": "none"})  # only the data is needed here
    splits = p.dataset.load(p.cfg)
    splits.use_run(p.cfg)
    cols = len(runs) if len(runs) > 1 else min(len(chosen), 4)
    rows = len(chosen) if len(runs) > 1 else -(-len(chosen) // cols)
    title = figure_title(runs, pick, len(chosen))
    fig, axes, bar = _panel_grid(rows, cols, title, titled=len(runs) > 1)
    heat = _draw_panels(axes, runs, chosen, splits)
    fig.legend(
        handles=[
            Patch(ec=PRED, fill=False, label="predicted box"),
            Patch(ec=GT, fill=False, label="ground truth"),
        ],
        loc="upper right",
        frameon=False,
        fontsize=8,
    )
    fig.colorbar(heat, cax=bar, label="localization map")
    return save_figure(fig, out)


def _panel_grid(rows: int, cols: int, title: str, titled: bool) -> tuple:
    """The figure with its title wrapped to its width, its panels, and the colour bar's
    axes right of the panels; placed in inches:
    matplotlib's constrained layout took half of a figure's drawing time, which a site
    pays three figures a run. Room on top for the title's lines, and for the runs'
    names over the columns (``titled``)."""
    width = PANEL[0] * cols + 1.2
    # Centred over the panels, clear of the legend; 9 pt is about 14 characters an inch.
    lines = textwrap.wrap(title, int((width - 1.4) * 14))
    top = 0.25 + 0.15 * len(lines) + (0.25 if titled else 0.0)
    height = PANEL[1] * rows + top
    grid = {"left": 0.05 / width, "right": 1 - 1.15 / width, "top": 1 - top / height}
    grid.update(bottom=0.3 / height, wspace=0.05, hspace=(0.3 + 0.25 * titled) / PANEL[1])
    fig, axes = plt.subplots(rows, cols, figsize=(width, height), squeeze=False, gridspec_kw=grid)
    panels_h = PANEL[1] * rows - 0.3
    left, bottom = (width - 1.0) / width, (0.3 + 0.2 * panels_h) / height
    bar = fig.add_axes((left, bottom, 0.15 / width, 0.6 * panels_h / height))
    for ax in axes.flat:
        ax.axis("off")
    fig.suptitle("\n".join(lines), fontsize=9, x=(PANEL[0] * cols / 2 + 0.05) / width)
    return fig, axes, bar


def class_name(splits, label: int) -> str:
    names = splits.class_names
    return names[int(label)] if names and int(label) < len(names) else f"class {int(label)}"


def figure_title(runs: list[StoredRun], pick: str, shown: int) -> str:
    """What the figure shows: which runs, which images, at which box threshold."""
    first = runs[0].record
    thr = first.threshold
    at = f"box threshold {thr['box']:.2f} (picked on {thr['picked_on']})" if thr else "no threshold"
    total = len(runs[0].results["labels"])
    ids = ", ".join(r.record.run_id for r in runs)
    which = (
        f"{shown} of {total} test images drawn at random (seed 0)"
        if pick == "random"
        else f"the {pick} {shown} of {total} test images by IoU"
    )
    return f"{ids}: {which}, {at}"


def _draw_panels(axes: np.ndarray, runs: list[StoredRun], chosen: np.ndarray, splits) -> Any:
    """One panel per chosen image and run (runs side by side in a row when several);
    returns the last map's image, for the colour bar."""
    heat, test = None, splits.test
    for j, index in enumerate(chosen):
        image, gt = test.display(int(index)), test.target(int(index))["boxes"].numpy()
        for r, run in enumerate(runs):
            ax = axes[j, r] if len(runs) > 1 else axes.flat[j]
            ax.axis("on")
            slot = int(np.searchsorted(run.results["map_index"], index))
            iou = run.iou()
            label, pred = run.results["labels"][index], run.results["pred"][index]
            text = f"IoU {iou[index]:.2f} · " if iou is not None else ""
            text += f"pred {class_name(splits, pred)} / true {class_name(splits, label)}"
            k = run.threshold_index()
            heat = _panel(ax, image, run.results["maps"][slot], k, gt, text, splits.map_mode)
            if j == 0 and len(runs) > 1:
                ax.set_title(run.label, fontsize=9)
    return heat


def fig5(store: Store, run_ids: list[str], out: Path) -> Path:
    """IoU of correct boxes (IoU >= 0.5) per run, violins with medians written."""
    runs = [open_run(store, r) for r in run_ids]
    values, names = [], []
    for run in runs:
        iou = run.iou()
        if iou is None:
            raise UserError(f"run '{run.record.run_id}' has no boxes")
        values.append(iou[iou >= 0.5])
        names.append(run.label)
    fig, ax = plt.subplots(figsize=(1.8 + 1.6 * len(runs), 3.6), layout="constrained")
    ok = [v if len(v) else np.array([np.nan]) for v in values]
    ax.violinplot(ok, showmedians=True)
    for i, v in enumerate(values, 1):
        if len(v):
            ax.text(i, np.median(v), f" {np.median(v):.3f}", va="center", fontsize=8)
    ax.set_xticks(range(1, len(runs) + 1), names, fontsize=8, rotation=15)
    ax.set_ylabel("IoU of correct boxes")
    ax.set_ylim(0.5, 1.0)
    return save_figure(fig, out)


def fig6(store: Store, run_ids: list[str], out: Path) -> Path:
    """IoU against relative object size (largest GT box / image), 2-D density."""
    runs = [open_run(store, r) for r in run_ids]
    fig, axes = plt.subplots(
        1, len(runs), figsize=(3.6 * len(runs), 3.4), squeeze=False, layout="constrained"
    )
    for ax, run in zip(axes[0], runs, strict=True):
        iou = run.iou()
        if iou is None:
            raise UserError(f"run '{run.record.run_id}' has no boxes")
        hb = ax.hexbin(
            run.results["gt_area"], iou, gridsize=20, extent=(0, 1, 0, 1), cmap="viridis", mincnt=1
        )
        ax.set_xlabel("relative object size")
        ax.set_ylabel("IoU")
        ax.set_title(run.label, fontsize=9)
        fig.colorbar(hb, ax=ax, label="images")
    return save_figure(fig, out)
