"""Score maps like a ViT's, made up for the benchmarks (no model, no data needed)."""

from __future__ import annotations

import numpy as np
import torch

from wsolbench.evaluation.evaluate import resize_maps


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
