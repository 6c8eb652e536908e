"""A run's curves for the HTML report, from its record and ``per_image.npz``: loss per
epoch; GT-known against threshold on val and test, the chosen threshold marked;
MaxBoxAcc against threshold at IoU 30 / 50 / 70; the PxAP precision-recall curve; IoU
against object size. Drawn as inline SVG (vector, no script): a few milliseconds a
run where matplotlib takes 0.6 s, so a store of 1,000 runs builds in seconds."""

from __future__ import annotations

import html

import numpy as np

from wsolbench.core.record import RunRecord
from wsolbench.evaluation.boxes import benchmark_thresholds, threshold_index

W, H, PAD = 300, 190, 34  # one panel, in SVG units
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd")
Series = tuple[str, np.ndarray, np.ndarray]


def _scale(values: np.ndarray, lo: float, hi: float, start: float, end: float) -> np.ndarray:
    span = hi - lo if hi > lo else 1.0
    return start + (np.asarray(values, np.float64) - lo) / span * (end - start)


def panel(title: str, series: list[Series], xlabel: str, dots: bool = False,
          mark: float | None = None) -> str:  # fmt: skip
    """One plot: lines (or dots) of each series, axes with their ranges, a legend."""
    xs = np.concatenate([s[1] for s in series]) if series else np.zeros(1)
    ys = np.concatenate([s[2] for s in series]) if series else np.zeros(1)
    x0, x1 = float(xs.min()), float(xs.max())
    y0, y1 = min(0.0, float(ys.min())), max(float(ys.max()), 1e-9)
    parts = [f'<rect x="{PAD}" y="8" width="{W - PAD - 8}" height="{H - PAD - 8}" '
             'fill="none" stroke="#999"/>']  # fmt: skip
    for i, (label, x, y) in enumerate(series):
        px, py = _scale(x, x0, x1, PAD, W - 8), _scale(y, y0, y1, H - PAD, 8)
        colour = COLOURS[i % len(COLOURS)]
        if dots or len(px) == 1:  # one point (a one-epoch run's loss) is drawn as a dot
            parts += [f'<circle cx="{a:.1f}" cy="{b:.1f}" r="1.6" fill="{colour}"/>'
                      for a, b in zip(px, py, strict=True)]  # fmt: skip
        else:
            points = " ".join(f"{a:.1f},{b:.1f}" for a, b in zip(px, py, strict=True))
            parts.append(f'<polyline points="{points}" fill="none" stroke="{colour}"/>')
        parts.append(f'<text x="{W - 10}" y="{22 + 12 * i}" text-anchor="end" '
                     f'fill="{colour}" font-size="10">{html.escape(label)}</text>')  # fmt: skip
    if mark is not None:
        mx = _scale([mark], x0, x1, PAD, W - 8)[0]
        parts.append(f'<line x1="{mx:.1f}" y1="8" x2="{mx:.1f}" y2="{H - PAD}" '
                     'stroke="#000" stroke-dasharray="3,3"/>')  # fmt: skip
    ticks = (f'<text x="{PAD}" y="{H - PAD + 12}" font-size="9">{x0:.3g}</text>'
             f'<text x="{W - 8}" y="{H - PAD + 12}" font-size="9" text-anchor="end">{x1:.3g}</text>'
             f'<text x="{PAD - 3}" y="{H - PAD}" font-size="9" text-anchor="end">{y0:.3g}</text>'
             f'<text x="{PAD - 3}" y="16" font-size="9" text-anchor="end">{y1:.3g}</text>'
             f'<text x="{(W + PAD) / 2}" y="{H - 6}" font-size="10" text-anchor="middle">'
             f"{html.escape(xlabel)}</text>")  # fmt: skip
    return (f'<svg viewBox="0 0 {W} {H}" width="{W}" height="{H}" role="img" '
            f'aria-label="{html.escape(title)}"><title>{html.escape(title)}</title>'
            f'{"".join(parts)}{ticks}</svg>')  # fmt: skip


def _curves(rec: RunRecord, arrays: dict) -> list[tuple[str, list[Series], str, dict]]:
    """(title, series, x label, options) per panel."""
    history = rec.history or []
    loss = [
        ("loss", np.array([h["epoch"] for h in history]), np.array([h["loss"] for h in history]))
    ]
    curve = rec.curve or {}
    gt = [(s, np.array(curve["thresholds"]), np.array(curve[f"{s}_gt_known"]))
          for s in ("val", "test") if f"{s}_gt_known" in curve]  # fmt: skip
    mark = {"mark": rec.threshold["box"]} if rec.threshold else {}
    panels = [("loss per epoch", loss if history else [], "epoch", {}),
              ("GT-known Loc against threshold", gt, "threshold", mark)]  # fmt: skip
    hits = arrays.get("maxbox_hits")
    if hits is not None and len(hits):
        grid = benchmark_thresholds((rec.protocol or {}).get("cam_curve_interval", 0.01))
        box = [(f"IoU {lv}", grid, 100 * hits[:, j].mean(axis=0))
               for j, lv in enumerate((30, 50, 70)[: hits.shape[1]])]  # fmt: skip
        panels.append(("MaxBoxAcc against threshold", box, "threshold", {}))
    hist = arrays.get("pixel_hist")
    if hist is not None and len(hist):
        fg, bg = hist[:, 0].sum(axis=0)[::-1], hist[:, 1].sum(axis=0)[::-1]
        tp, fp = np.cumsum(fg), np.cumsum(bg)
        precision = np.divide(tp, tp + fp, out=np.zeros(tp.shape), where=(tp + fp) > 0)
        pr = [("precision", tp / max(float(fg.sum()), 1.0), precision)]
        panels.append(("PxAP precision against recall", pr, "recall", {}))
    if "iou" in arrays and rec.threshold:
        iou = np.asarray(arrays["iou"], np.float64)[:, threshold_index(rec.threshold["box"])]
        size = [("IoU", np.asarray(arrays["gt_area"], np.float64), iou)]
        panels.append(("IoU against object size", size, "largest GT box / frame", {"dots": True}))
    return panels


def run_svg(rec: RunRecord, arrays: dict) -> str:
    """Every panel the run has data for, side by side."""
    return "".join(
        f'<figure class="panel"><figcaption>{html.escape(title)}</figcaption>'
        f"{panel(title, series, xlabel, **options)}</figure>"
        for title, series, xlabel, options in _curves(rec, arrays)
    )
