"""What one split's maps feed: every metric accumulator, and the fixed-box baselines.
Free of torch, so scoring workers start light (see ``pool``)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING

import numpy as np

from wsolbench.evaluation.boxes import DEFAULT_INTERVAL, benchmark_thresholds, box_iou
from wsolbench.evaluation.metrics import (
    Accumulator,
    BoxAccuracy,
    Classification,
    MapBatch,
    MaxBoxAccV2,
    PixelAP,
    Polarity,
)
from wsolbench.evaluation.tscam_rule import TSCAMBoxAccuracy

if TYPE_CHECKING:
    from wsolbench.data.splits import WSOLSplit


class TrivialBoxes(Accumulator):
    """GT-known Loc of fixed boxes that ignore the image: the whole frame, and a
    centred box of the mean training box size. A method must beat both."""

    def __init__(self, image_size: tuple[int, int], mean_wh: tuple[float, float]) -> None:
        h, w = image_size
        bw, bh = mean_wh
        x0, y0 = (w - bw) / 2, (h - bh) / 2
        self.boxes = np.array([[0, 0, w - 1, h - 1], [x0, y0, x0 + bw - 1, y0 + bh - 1]])
        self.state = {"n": np.zeros(()), "hits": np.zeros(2)}

    def update(self, batch: MapBatch) -> None:
        for gt in batch.boxes:
            self.state["hits"] += box_iou(self.boxes, gt).max(axis=1) >= 0.5
        self.state["n"] += len(batch)

    def compute(self) -> dict[str, float]:
        acc = 100 * self.state["hits"] / max(float(self.state["n"]), 1.0)
        return {"baseline_whole_image": float(acc[0]), "baseline_centred_box": float(acc[1])}


@dataclass
class SplitScores:
    """The accumulators one split feeds; None where the split lacks what they need."""

    cls: Classification | None = field(default_factory=Classification)
    box: BoxAccuracy | None = field(default_factory=BoxAccuracy)
    maxbox: MaxBoxAccV2 | None = field(default_factory=MaxBoxAccV2)
    pixel: PixelAP | None = None
    polarity: Polarity | None = None
    trivial: TrivialBoxes | None = None
    tscam: TSCAMBoxAccuracy | None = None

    @classmethod
    def for_split(
        cls,
        split: WSOLSplit,
        pixel: bool,
        trivial: TrivialBoxes | None = None,
        *,
        classify: bool = True,
        tscam_threshold: float | None = None,
        cam_curve_interval: float = DEFAULT_INTERVAL,
    ) -> SplitScores:
        """The accumulators ``split`` can feed; ``tscam_threshold``: TS-CAM's rule too;
        ``cam_curve_interval``: the benchmark's metrics' threshold step (the SAT rule's
        GT-known keeps its own grid)."""
        boxes = split.has_boxes
        tscam = boxes and tscam_threshold is not None
        grid = benchmark_thresholds(cam_curve_interval)
        return cls(
            cls=Classification() if classify else None,
            box=BoxAccuracy() if boxes else None,
            maxbox=MaxBoxAccV2(grid) if boxes else None,
            pixel=PixelAP(grid) if pixel and split.has_masks else None,
            polarity=Polarity() if pixel and split.has_masks else None,
            trivial=trivial if boxes else None,
            tscam=TSCAMBoxAccuracy(tscam_threshold) if tscam else None,
        )

    def update(self, batch: MapBatch) -> dict[str, np.ndarray]:
        """Feed every accumulator the split has. Maps are scored as given (the
        exchange maps, see ``evaluate.frame_maps``), as the benchmark's evaluator
        does; the authors' rule min-max scales them first. Returns the per-image
        values by accumulator: ``box`` best IoU per threshold (authors' rule),
        ``maxbox`` hits per IoU level and threshold, ``pixel`` histograms."""
        out = {}
        for f in fields(self):
            acc = getattr(self, f.name)
            if acc is not None and (values := acc.update(batch)) is not None:
                out[f.name] = values
        return out

    def merge(self, other: SplitScores) -> None:
        """Add another's counts (a worker's share of the same split)."""
        for f in fields(self):
            mine, theirs = getattr(self, f.name), getattr(other, f.name)
            if mine is not None and theirs is not None:
                mine.merge(theirs)

    def empty_copy(self) -> SplitScores:
        """The same accumulators with nothing counted: what a scoring worker fills."""
        return SplitScores(
            **{f.name: (a := getattr(self, f.name)) and a.empty_copy() for f in fields(self)}
        )
