"""``wsolbench bench evalmaps``: ``evaluate-maps`` end to end on a folder of N maps in
the benchmark's exchange format (224x224 float32 ``.npy``) with benchmark metadata,
against the benchmark's evaluation as its code runs it (each map loaded, then boxed
per threshold and scored, in one process), both as fresh processes: wall and CPU time
(children included), and the same MaxBoxAccV2."""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from wsolbench.bench.maps import synthetic_maps
from wsolbench.evaluation.boxes import normalize_benchmark


def _write_case(root: Path, n: int) -> tuple[Path, Path]:
    """n maps and the metadata of a test split (224x224 images, one box each)."""
    maps, meta = root / "scoremaps", root / "metadata" / "ILSVRC" / "test"
    meta.mkdir(parents=True)
    ids, boxes = [], []
    rng = np.random.default_rng(2)
    for k, (batch, gts, _) in enumerate(synthetic_maps(n, seed=2)):
        # GT boxes shifted off the blobs, so that not every map is found at IoU 0.7
        gts = np.clip(gts + rng.integers(-30, 31, (len(gts), 1)), 0, 223)
        folder = maps / f"{k:03d}"
        folder.mkdir(parents=True)
        for j, (m, gt) in enumerate(zip(batch, gts, strict=True)):
            ids.append(f"{k:03d}/{j:03d}.JPEG")
            np.save(maps / f"{ids[-1]}.npy", normalize_benchmark(m).astype(np.float32))
            boxes.append(",".join(str(int(v)) for v in gt))
    (meta / "image_ids.txt").write_text("".join(f"{i}\n" for i in ids))
    (meta / "class_labels.txt").write_text("".join(f"{i},0\n" for i in ids))
    (meta / "image_sizes.txt").write_text("".join(f"{i},224,224\n" for i in ids))
    (meta / "localization.txt").write_text(
        "".join(f"{i},{b}\n" for i, b in zip(ids, boxes, strict=True))
    )
    return maps, meta.parent


def _timed(argv: list[str]) -> tuple[float, float, str]:
    """Wall and CPU seconds (this child and everything it waited for) and stdout."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, out


def benchmark_evaluation(maps: Path, meta: Path, interval: float) -> float:
    """MaxBoxAccV2 the way the benchmark's ``evaluate_wsol`` computes it for boxes:
    every map loaded, ``compute_bboxes_from_scoremaps`` per threshold, the hits
    counted per IoU level, the best threshold per level, their mean."""
    from wsolbench.data.annotations import read_wsol_split
    from wsolbench.evaluation import reference

    thresholds = np.arange(0, 1, interval)
    hits = np.zeros((3, len(thresholds)))
    items = read_wsol_split(meta / "test")
    for item in items:
        m = np.load(maps / f"{item.image_id}.npy")
        best = reference.best_contour_iou(m, np.asarray(item.boxes, np.float64), thresholds)
        hits += best[None] >= np.array([0.3, 0.5, 0.7])[:, None]
    return float((100 * hits / len(items)).max(axis=1).mean())


def evalmaps(images: int = 10000, **_) -> list[tuple]:
    n = max(100, images)
    with tempfile.TemporaryDirectory() as tmp:
        maps, meta = _write_case(Path(tmp), n)
        ours = [sys.executable, "-m", "wsolbench.cli", "evaluate-maps", str(maps)]
        ours += ["--metadata", str(meta), "--name", "bench"]
        ours += ["--results", str(Path(tmp) / "results")]
        w_ours, c_ours, _ = _timed(ours)
        (record,) = (Path(tmp) / "results").glob("*/record.json")
        got = json.loads(record.read_text())["metrics"]["maxboxaccv2"]
        baseline = [
            sys.executable,
            "-m",
            "wsolbench.bench.evalmaps",
            str(maps),
            str(meta),
        ]
        w_ref, c_ref, out = _timed(baseline)
    if abs(float(out) - got) > 1e-9:
        raise RuntimeError(f"MaxBoxAccV2 {got} differs from the benchmark's loop {out}")
    return [
        (
            f"evaluate-maps end to end, {n} maps 224x224, interval 0.01, no val maps",
            f"ours {w_ours:.1f} s wall, {c_ours:.1f} s CPU; benchmark's loop (cv2 "
            f"{cv2.__version__}) {w_ref:.1f} s wall, {c_ref:.1f} s CPU",
            f"{w_ref / w_ours:.2f}x wall, {c_ref / c_ours:.2f}x CPU (target > 1x both)",
            f"same MaxBoxAccV2 ({got:.2f}); hashing, reading and scoring included",
        )
    ]


if __name__ == "__main__":  # the baseline, run as its own process by ``evalmaps``
    print(benchmark_evaluation(Path(sys.argv[1]), Path(sys.argv[2]), 0.01))
