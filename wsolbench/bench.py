"""``wsolbench bench``: speed and memory measured side by side in one process.

Numbers depend on the machine; each benchmark prints what it ran on. Benchmarks are
never run as tests."""

from __future__ import annotations

import resource
import time
from collections.abc import Callable

import numpy as np
import torch
from tabulate import tabulate
from tqdm import tqdm

from .evaluation.evaluate import SplitScores, TrivialBoxes, resize_maps
from .evaluation.metrics import PixelAP


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def synthetic_maps(n: int, seed: int, size: int = 224, grid: int = 14):
    """Batches of (maps, boxes, masks) like a ViT's: a smooth blob on a 14x14 grid
    upsampled to the frame, with a GT box and mask around the blob."""
    gen = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(grid), torch.arange(grid), indexing="ij")
    for start in range(0, n, 100):
        b = min(100, n - start)
        centre = torch.rand(b, 2, generator=gen) * (grid - 4) + 2
        radius = torch.rand(b, 1, 1, generator=gen) * 3 + 1.5
        d2 = (xx - centre[:, 0, None, None]) ** 2 + (yy - centre[:, 1, None, None]) ** 2
        noise = 0.3 * torch.rand(b, grid, grid, generator=gen)
        maps = resize_maps(torch.exp(-d2 / (2 * radius**2)) + noise, (size, size)).numpy()
        scale = size / grid
        c = centre.numpy() * scale + scale / 2
        r = radius[:, 0, 0].numpy() * scale * 1.5
        boxes = np.stack([c[:, 0] - r, c[:, 1] - r, c[:, 0] + r, c[:, 1] + r], 1).clip(0, size - 1)
        ys, xs = np.mgrid[0:size, 0:size]
        masks = (xs[None] - c[:, 0, None, None]) ** 2 + (ys[None] - c[:, 1, None, None]) ** 2
        masks = (masks < (r[:, None, None] ** 2)).astype(np.uint8)
        yield maps, boxes, masks


def stream(images: int) -> list[tuple]:
    """Peak memory of evaluating ``images`` maps at 224x224 with every accumulator
    (authors' boxes at 100 thresholds, MaxBoxAccV2, PxAP/pIoU, baselines), fed one
    image at a time as the evaluator does."""
    rows = []
    for n in sorted({min(1000, images), images}):
        scores = SplitScores(pixel=PixelAP(), trivial=TrivialBoxes((224, 224), (80, 80)))
        before = peak_rss_mib()
        t0 = time.perf_counter()
        with tqdm(total=n, desc=f"stream {n}", unit="map", leave=False) as bar:
            for maps, boxes, masks in synthetic_maps(n, seed=0):
                for m, box, mask in zip(maps, boxes, masks, strict=True):
                    scores.add_image(m, box[None], mask, True, True)
                bar.update(len(maps))
        rows.append(
            (
                f"stream {n} maps",
                f"{peak_rss_mib():.0f} MiB peak",
                f"{peak_rss_mib() - before:+.0f} MiB",
                f"{(time.perf_counter() - t0) / n * 1e3:.1f} ms/map",
            )
        )
    return rows


BENCHMARKS: dict[str, Callable[..., list[tuple]]] = {"stream": stream}


def run(names: list[str], images: int) -> str:
    rows = []
    for name in names:
        rows += BENCHMARKS[name](images=images)
    return tabulate(
        rows,
        headers=["benchmark", "measured", "growth / ratio", "detail"],
        tablefmt="github",
        disable_numparse=True,
    )
