"""The results store as data, for notebooks and scripts:

    import wsolbench
    df = wsolbench.runs("results")        # one row per run: settings, metrics, identity
    rec = wsolbench.record(df.run_id[0])  # the RunRecord
    images = wsolbench.per_image(rec.run_id)  # one row per test image

``runs`` reads every finished record (a corrupt one is skipped with a warning, as
``wsolbench report`` does)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from wsolbench.core.errors import UserError
from wsolbench.core.record import RunRecord
from wsolbench.core.store import Store

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["runs", "record", "per_image"]

# Settings shown first, in this order; every other config key follows.
FIRST = ["method", "dataset", "backbone", "recipe", "kshot", "freeze", "lambda", "seed"]


def _store(results: str | Path) -> Store:
    root = Path(results)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no results store here")
    return Store(root)


def _row(r: RunRecord) -> dict:
    config = {k: v for k, v in r.config.items() if not isinstance(v, dict | list)}
    protocol = r.protocol or {}
    return {
        "run_id": r.run_id,
        **{k: config.get(k) for k in FIRST},
        **{k: v for k, v in config.items() if k not in FIRST},
        **r.metrics,
        "protocol": protocol.get("version"),
        "frame": protocol.get("frame"),
        "box_threshold": (r.threshold or {}).get("box"),
        "weights_sha256": (r.pretrained or {}).get("sha256") or config.get("weights_sha256"),
        "wall_time_s": r.wall_time_s,
        "mode": r.mode,
        "finished": r.finished,
    }


def runs(results: str | Path = "results") -> pd.DataFrame:
    """Every finished run of the store as one row: its id, settings (every config
    key), metrics (the record's names), protocol, frame, weights' sha256, wall time."""
    import pandas as pd

    return pd.DataFrame([_row(r) for r in _store(results).records()])


def record(run_id: str, results: str | Path = "results") -> RunRecord:
    """A run's record, checked; a KeyError when the store has no such run."""
    try:
        found = _store(results).record(run_id)
    except UserError as e:
        raise ValueError(e.one_line()) from None
    if found is None:
        raise KeyError(f"{run_id}: no finished run in {results}")
    return found


def per_image(run_id: str, results: str | Path = "results") -> pd.DataFrame:
    """The run's test images, one row each: image id, label, prediction, largest GT box
    area (share of the frame), and the best IoU at the run's box threshold (the SAT
    rule) where the record has one."""
    import pandas as pd

    from wsolbench.evaluation.boxes import threshold_index
    from wsolbench.evaluation.perimage import load

    rec = record(run_id, results)
    path = _store(results).run_dir(run_id) / "per_image.npz"
    try:
        arrays = load(path)
    except UserError as e:
        raise ValueError(e.one_line()) from None
    names = {"image_ids": "image_id", "labels": "label", "pred": "pred", "gt_area": "gt_area"}
    frame = pd.DataFrame({new: arrays[old] for old, new in names.items() if old in arrays})
    if "iou" in arrays and rec.threshold:
        k = threshold_index(rec.threshold["box"])
        frame["iou"] = np.asarray(arrays["iou"], np.float64)[:, k]
        frame["gt_known_hit"] = arrays["box_hit"][:, k] if "box_hit" in arrays else None
    if "maxbox_hits" in arrays:  # hit at the best threshold of each IoU level
        hits = arrays["maxbox_hits"]
        best = hits.sum(axis=0).argmax(axis=-1)
        for j, level in enumerate((30, 50, 70)[: hits.shape[1]]):
            frame[f"maxbox_hit_iou{level}"] = hits[:, j, best[j]]
    return frame
