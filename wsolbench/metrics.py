"""WSOL metrics as a library, for any training loop: the WSOL benchmark's MaxBoxAccV2
and PxAP / pIoU, and the SAT authors' GT-known / Top-1 / Top-5 Loc, each exactly as
wsolbench's evaluator computes them (the same accumulators `evaluate-maps` runs).

    from wsolbench.metrics import MaxBoxAccV2, PxAP
    m = MaxBoxAccV2()
    m.update(maps, boxes)      # maps (N, H, W) in [0, 1]; boxes: N arrays (k, 4)
    m.compute()                # {"maxboxaccv2": ..., "maxboxacc_iou30": ..., ...}

Every accumulator has ``update`` / ``compute`` / ``merge`` / ``reset``. ``update``
takes numpy arrays or torch tensors (torch is imported only when a tensor is given);
maps are taken as given, in the frame their boxes are in (``boxes_in_frame`` puts
original-image boxes there). Bad input raises a ValueError naming the image index.
``evaluate_folder`` scores a folder of ``<image id>.npy`` maps against the WSOL
benchmark's metadata in one call."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from wsolbench.core.config import FIELDS, FINEST_INTERVAL
from wsolbench.core.errors import UserError
from wsolbench.data.annotations import IGNORE
from wsolbench.evaluation import metrics as _m
from wsolbench.evaluation.boxes import THRESHOLDS, benchmark_thresholds

__all__ = ["MaxBoxAccV2", "PxAP", "GTKnownLoc", "boxes_in_frame", "evaluate_folder"]

INTERVAL = 0.01  # the benchmark README's cam_curve_interval (its config.py: 0.001)


def _array(x: Any) -> np.ndarray:
    """A numpy array from an array, a torch tensor (detached, on the CPU) or a list."""
    if type(x).__module__.startswith("torch"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def _maps(maps: Any) -> list[np.ndarray]:
    """(N, H, W) or a sequence of (H, W) maps of any sizes, each finite in [0, 1]."""
    if not isinstance(maps, list | tuple):
        maps = _array(maps)
        if maps.ndim != 3:
            raise ValueError(f"maps: expected (N, H, W), got shape {maps.shape}")
    out = []
    for i, m in enumerate(maps):
        m = _array(m)
        if problem := _m.map_problem(m):
            raise ValueError(f"image {i}: {problem}")
        out.append(m.astype(np.float64))
    return out


def _boxes(boxes: Any, maps: list[np.ndarray]) -> list[np.ndarray]:
    """One (k, 4) array of x0, y0, x1, y1 per map, finite, inside it (x1 may be W)."""
    if len(boxes) != len(maps):
        raise ValueError(f"boxes: {len(boxes)} box arrays for {len(maps)} maps")
    out = []
    for i, (b, m) in enumerate(zip(boxes, maps, strict=True)):
        b = _array(b).astype(np.float64).reshape(-1, 4)
        h, w = m.shape
        if not np.isfinite(b).all():
            raise ValueError(f"image {i}: a box holds NaN or infinite values")
        if len(b) == 0:
            raise ValueError(f"image {i}: no ground-truth box")
        bad = (b[:, 0] < 0) | (b[:, 1] < 0) | (b[:, 2] > w) | (b[:, 3] > h)
        bad |= (b[:, 2] < b[:, 0]) | (b[:, 3] < b[:, 1])
        if bad.any():
            box = b[bad][0].tolist()
            raise ValueError(f"image {i}: box {box} is inverted or outside its {w}x{h} map")
        out.append(b)
    return out


def _grid(cam_curve_interval: float) -> np.ndarray:
    """The benchmark's thresholds ``np.arange(0, 1, cam_curve_interval)``, unrounded."""
    try:  # the run config's own check: one range for the CLI, sweeps and the library
        step = FIELDS["cam_curve_interval"].check(cam_curve_interval)
    except ValueError:
        raise ValueError(
            f"cam_curve_interval: a number in [{FINEST_INTERVAL}, 0.5), got {cam_curve_interval!r}"
        ) from None
    return benchmark_thresholds(step)


class _Public:
    """The update / compute / merge / reset protocol around one internal accumulator."""

    _acc: _m.Accumulator

    def merge(self, other: _Public) -> None:
        """Add another's counts (the same metric over other images: a worker, a job)."""
        self._acc.merge(other._acc)

    def reset(self) -> None:
        self._acc.reset()


class MaxBoxAccV2(_Public):
    """The WSOL benchmark's MaxBoxAccV2 (``box_v2_metric``): a box from every contour at
    every threshold of ``np.arange(0, 1, cam_curve_interval)`` (uint8 map cut at
    ``int(t * max)``), the best threshold per IoU level, their mean. Keys: ``maxboxaccv2``
    and ``maxboxacc_iou<level>`` per level (percent)."""

    def __init__(
        self, cam_curve_interval: float = INTERVAL, iou_thresholds: Sequence[int] = (30, 50, 70)
    ) -> None:
        grid = _grid(cam_curve_interval)
        levels = tuple(t / 100 for t in iou_thresholds)
        if not levels or not all(0 < v <= 1 for v in levels):
            raise ValueError(f"iou_thresholds: percents in (0, 100], got {tuple(iou_thresholds)}")
        self._acc = _m.MaxBoxAccV2(grid, levels)

    def update(self, maps: Any, boxes: Sequence[Any]) -> None:
        """``maps`` (N, H, W) or N maps of any size; ``boxes`` N arrays (k, 4) of
        x0, y0, x1, y1 in the maps' pixels (last pixel inclusive)."""
        ms = _maps(maps)
        for m, b in zip(ms, _boxes(boxes, ms), strict=True):
            self._acc.update(_m.MapBatch(m[None], [b]))

    def compute(self) -> dict[str, float]:
        return self._acc.compute()


class PxAP(_Public):
    """The WSOL benchmark's PxAP, and pIoU: from histograms of map values over object and
    background pixels (ignored pixels excluded). Keys: ``pxap``, ``piou`` (percent)."""

    def __init__(self, cam_curve_interval: float = INTERVAL) -> None:
        self._acc = _m.PixelAP(_grid(cam_curve_interval))

    def update(self, maps: Any, masks: Any, ignore: Any = None) -> None:
        """``masks``: object pixels (bool or 0 / 1), one per map, the map's shape;
        ``ignore``: pixels counted for neither side (the benchmark's ignore masks)."""
        ms = _maps(maps)
        for i, m in enumerate(ms):
            mask = _array(masks[i]).astype(bool)
            if mask.shape != m.shape:
                raise ValueError(f"image {i}: mask {mask.shape} is not the map's {m.shape}")
            coded = mask.astype(np.uint8)
            if ignore is not None:
                skip = _array(ignore[i]).astype(bool)
                if skip.shape != m.shape:
                    raise ValueError(f"image {i}: ignore {skip.shape} is not the map's {m.shape}")
                coded[skip & ~mask] = IGNORE
            self._acc.update(_m.MapBatch(m[None], [np.zeros((0, 4))], coded[None]))

    def compute(self) -> dict[str, float]:
        try:
            self._acc.require_object_pixels()
        except UserError as e:
            raise ValueError(str(e)) from None
        return self._acc.compute()


class GTKnownLoc(_Public):
    """The SAT authors' GT-known / Top-1 / Top-5 Loc: the map min-max scaled, ``map > t``,
    the largest 8-connected component's box, IoU >= 0.5 with a GT box, for ``t`` in
    0.00 .. 0.99. ``threshold``: the one to report at (None: the best on these images,
    as the authors pick it on test). Keys: ``gt_known_loc``, ``iou30``, ``iou70``,
    ``threshold``, and with logits ``top1_loc``, ``top5_loc``."""

    def __init__(self, threshold: float | None = None) -> None:
        if threshold is not None and not 0 <= threshold < 1:
            raise ValueError(f"threshold: in [0, 1), got {threshold}")
        self.threshold = threshold
        self._acc = _m.BoxAccuracy(THRESHOLDS)
        self._classified = False

    def update(
        self, maps: Any, boxes: Sequence[Any], logits: Any = None, labels: Any = None
    ) -> None:
        """``logits`` (N, C) and ``labels`` (N,) for Top-1 / Top-5 Loc (optional)."""
        ms = _maps(maps)
        scores = None if logits is None else _array(logits).astype(np.float64)
        if scores is not None:
            if labels is None or scores.shape[0] != len(ms):
                raise ValueError("logits: one row per map, and labels with them")
            labels = _array(labels).astype(np.int64).reshape(-1)
            self._classified = True
        for i, (m, b) in enumerate(zip(ms, _boxes(boxes, ms), strict=True)):
            row = None if scores is None else scores[i : i + 1]
            lab = None if scores is None else labels[i : i + 1]
            self._acc.update(_m.MapBatch(m[None], [b], scores=row, labels=lab))

    def compute(self) -> dict[str, float]:
        curves = self._acc.compute()
        k = (
            int(np.argmax(curves["gt_known"]))
            if self.threshold is None
            else int(np.argmin(np.abs(THRESHOLDS - self.threshold)))
        )
        keys = ["gt_known", "iou30", "iou70"] + (
            ["top1_loc", "top5_loc"] if self._classified else []
        )
        out = {f"{key}_loc" if key == "gt_known" else key: float(curves[key][k]) for key in keys}
        return {**out, "threshold": float(THRESHOLDS[k])}


def boxes_in_frame(boxes: Any, width: int, height: int, frame: str = "resize") -> np.ndarray:
    """Original-image boxes (k, 4) in the evaluation frame of a ``width`` x ``height``
    image: ``resize`` (the WSOL benchmark's: the whole image to 224x224,
    ``int(x * 224 / W)``), ``crop`` (the SAT authors': resize 256, centre crop 224) or
    ``native`` (maps at the image's own size: the boxes as they are)."""
    from wsolbench.data.imaging import Frame

    boxes = _array(boxes).astype(np.float64).reshape(-1, 4)
    if frame == "native":
        return boxes
    if frame not in ("resize", "crop"):
        raise ValueError(f"frame: resize, crop or native, got {frame!r}")
    return Frame(frame, width, height).boxes(boxes)


def evaluate_folder(
    maps: str | Path,
    metadata: str | Path,
    split: str = "test",
    mask_root: str | Path | None = None,
    frame: str = "resize",
    cam_curve_interval: float = INTERVAL,
) -> dict[str, float]:
    """The metrics of a folder of ``<image id>.npy`` maps against the WSOL benchmark's
    metadata (``metadata/<split>/*.txt``), as ``wsolbench evaluate-maps --metadata``
    gives them, with no store and no record. GT-known Loc when val maps are there."""
    from wsolbench.evaluation.maps import MapsRequest, score_request

    req = MapsRequest(
        folder=Path(maps),
        name="library",
        split=split,
        metadata=Path(metadata),
        mask_root=Path(mask_root) if mask_root else None,
        frame=frame,
        cam_curve_interval=float(cam_curve_interval),
    )
    _grid(cam_curve_interval)
    try:
        return score_request(req)["metrics"]
    except UserError as e:
        raise ValueError(e.one_line()) from None
