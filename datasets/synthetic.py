"""Embedded synthetic WSOL data: drawn from a seed, no files needed.

Each 64x64 image holds one object: a random filled shape (ellipse, polygon or
rotated rectangle) at random position and scale (30-65 % of the side), striped
texture, on a low-saturation cluttered background with thin distractor strokes
and small blobs of any hue. The class is the object's hue band (6 bands): shape,
texture, position and the distractors carry no class information, so a model
that ignores the object cannot classify. Ground truth: the tight box and the
pixel mask of the object.
"""

from __future__ import annotations

import functools
import hashlib
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from wsolbench.core.config import RunConfig
from wsolbench.core.errors import UserError
from wsolbench.core.registry import register_dataset
from wsolbench.core.store import atomic_write
from wsolbench.data.annotations import box_sizes_of
from wsolbench.data.splits import DatasetPlugin, Splits, WSOLSplit

SIZE = 64
NUM_CLASSES = 6
SPLIT_SIZES = {"train": 400, "val": 50, "test": 100}  # per class
GENERATOR_VERSION = "1"  # part of every synthetic run id
SPLIT_SEEDS = {"train": 1, "val": 2, "test": 3}
MEAN, STD = 0.5, 0.25


def _hsv_to_rgb(h: float, s: float, v: float) -> np.ndarray:
    """h in [0, 1), s and v in [0, 1] -> RGB float in [0, 1]."""
    px = np.uint8([[[int(h * 180) % 180, int(s * 255), int(v * 255)]]])
    return cv2.cvtColor(px, cv2.COLOR_HSV2RGB)[0, 0].astype(np.float32) / 255.0


SHAPE_KINDS = ("ellipse", "rotated square", "5-8-gon")


def _shape_mask(rng: np.random.Generator, size: int, kind: int | None = None) -> np.ndarray:
    """A filled shape (random kind unless given) with a bounding extent of 30-65 % of
    the side."""
    mask = np.zeros((size, size), np.uint8)
    extent = rng.uniform(0.30, 0.65) * size
    r = extent / 2
    cx, cy = rng.uniform(r, size - r, 2)
    if kind is None:  # drawn here, in this order, so target images never change
        kind = int(rng.integers(3))
    if kind == 0:
        axes = (int(r), int(r * rng.uniform(0.55, 1.0)))
        cv2.ellipse(mask, (int(cx), int(cy)), axes, rng.uniform(0, 180), 0, 360, 1, -1)
    else:
        n = 4 if kind == 1 else int(rng.integers(5, 9))
        angles = (
            np.sort(rng.uniform(0, 2 * np.pi, n))
            if kind == 2
            else (np.arange(4) * np.pi / 2 + rng.uniform(0, np.pi / 2))
        )
        radii = r * (rng.uniform(0.6, 1.0, n) if kind == 2 else 1.0)
        pts = np.stack([cx + radii * np.cos(angles), cy + radii * np.sin(angles)], 1)
        cv2.fillPoly(mask, [pts.round().astype(np.int32)], 1)
    return mask


def draw(
    rng: np.random.Generator, band: int, bands: int = NUM_CLASSES, kind: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """One image (H, W, 3) float32 in [0, 1] and its object mask (H, W) uint8: the
    object's hue lies in ``band`` of ``bands`` equal hue bands; its shape kind is
    random unless given (the pretraining source task gives it)."""
    # Background: smooth low-saturation colour field plus noise.
    field = rng.uniform(0.25, 0.75, (4, 4, 1)) + rng.uniform(-0.06, 0.06, (4, 4, 3))
    img = cv2.resize(field.astype(np.float32), (SIZE, SIZE), interpolation=cv2.INTER_CUBIC)
    for _ in range(rng.integers(2, 5)):  # low-saturation clutter patches
        c = _hsv_to_rgb(rng.uniform(), rng.uniform(0, 0.2), rng.uniform(0.2, 0.9))
        p0 = rng.integers(0, SIZE, 2)
        p1 = p0 + rng.integers(6, 24, 2)
        cv2.rectangle(img, tuple(map(int, p0)), tuple(map(int, p1)), c.tolist(), -1)
    for _ in range(rng.integers(3, 7)):  # saturated thin strokes of any hue
        c = _hsv_to_rgb(rng.uniform(), rng.uniform(0.6, 1.0), rng.uniform(0.5, 1.0))
        p0, p1 = rng.integers(0, SIZE, 2), rng.integers(0, SIZE, 2)
        cv2.line(img, tuple(map(int, p0)), tuple(map(int, p1)), c.tolist(), 1)
    for _ in range(rng.integers(0, 3)):  # small saturated blobs of any hue
        c = _hsv_to_rgb(rng.uniform(), rng.uniform(0.6, 1.0), rng.uniform(0.5, 1.0))
        centre = tuple(map(int, rng.integers(0, SIZE, 2)))
        cv2.circle(img, centre, int(rng.integers(1, 4)), c.tolist(), -1)
    # The object: hue from the class band, random shape and stripes.
    mask = _shape_mask(rng, SIZE, kind)
    hue = (band + rng.uniform(0.2, 0.8)) / bands
    colour = _hsv_to_rgb(hue, rng.uniform(0.65, 1.0), rng.uniform(0.6, 1.0))
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
    theta, freq = rng.uniform(0, np.pi), rng.uniform(0.3, 0.9)
    stripes = 0.8 + 0.2 * np.sin(freq * (xx * np.cos(theta) + yy * np.sin(theta)))
    obj = colour[None, None, :] * stripes[..., None]
    img = np.where(mask[..., None] > 0, obj, img)
    img = img + rng.normal(0, 0.03, img.shape).astype(np.float32)
    return np.clip(img, 0, 1), mask


def mask_box(mask: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(mask)
    return np.array([xs.min(), ys.min(), xs.max(), ys.max()], np.float32)


@dataclass(frozen=True)
class SourceTask:
    """The pretraining source task: class = shape kind x hue band, with ``bands`` bands
    of their own width (4 by default, so no source class is a target class), drawn
    like the target images from seeds no target split uses. The cue (hue) is shared
    with the target, as ImageNet's features are shared with CUB's; labels and images
    are not."""

    bands: int = 4
    seeds: tuple[tuple[str, int], ...] = (("train", 101), ("val", 102))

    @property
    def num_classes(self) -> int:
        return len(SHAPE_KINDS) * self.bands

    def draw(self, rng: np.random.Generator, label: int) -> tuple[np.ndarray, np.ndarray]:
        return draw(rng, label % self.bands, self.bands, kind=label // self.bands)


def cache_file(split: str, per_class: int, task: SourceTask | None) -> Path:
    """Where a drawn split is kept between processes: keyed by this file's code, the
    split's parameters and the numpy and cv2 that draw it, so any change draws anew.
    ``WSOLBENCH_CACHE`` moves the folder (default ``~/.cache/wsolbench``)."""
    code = Path(__file__).read_bytes()
    what = repr((split, per_class, task, np.__version__, cv2.__version__)).encode()
    key = hashlib.sha256(code + what).hexdigest()[:20]
    root = Path(os.environ.get("WSOLBENCH_CACHE") or Path.home() / ".cache" / "wsolbench")
    return root / "synthetic" / f"{split}-{per_class}-{key}.npz"


@functools.lru_cache(maxsize=8)
def _drawn(split: str, per_class: int, task: SourceTask | None) -> tuple:
    """A split's labels, images, masks and boxes: drawn once (a few seconds), then read
    from ``cache_file`` by every later process; every run and test in one process
    reads the same tensors, which no split writes to. The cache is a convenience: an
    unreadable file is drawn again, an unwritable folder is left alone."""
    path = cache_file(split, per_class, task)
    try:
        with np.load(path) as f:
            arrays = [f[k] for k in ("labels", "images", "masks", "boxes")]
        return (tuple(arrays[0].tolist()), *(torch.from_numpy(a) for a in arrays[1:]))
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        pass  # not there yet, or truncated: drawn below
    drawn = _draw_split(split, per_class, task)
    labels, images, masks, boxes = drawn
    arrays = {"labels": np.array(labels), "images": images.numpy()}
    arrays |= {"masks": masks.numpy(), "boxes": boxes.numpy()}
    try:
        atomic_write(path, lambda f: np.savez(f, **arrays))
    except (OSError, UserError):
        pass  # a read-only or full disk: the data are in memory all the same
    return drawn


def _draw_split(split: str, per_class: int, task: SourceTask | None) -> tuple:
    seed = SPLIT_SEEDS[split] if task is None else dict(task.seeds)[split]
    rng = np.random.default_rng([seed, 20231001])
    classes = NUM_CLASSES if task is None else task.num_classes
    labels = [c for c in range(classes) for _ in range(per_class)]
    rng.shuffle(labels)
    drawn = [draw(rng, c) if task is None else task.draw(rng, c) for c in labels]
    images = torch.from_numpy(np.stack([(d[0] * 255).round() for d in drawn]).astype(np.uint8))
    masks = torch.from_numpy(np.stack([d[1] for d in drawn]))
    boxes = torch.from_numpy(np.stack([mask_box(d[1]) for d in drawn]))
    return tuple(labels), images, masks, boxes


class SyntheticSplit(WSOLSplit):
    has_masks = True

    def __init__(
        self, split: str, per_class: int, train: bool, task: SourceTask | None = None
    ) -> None:
        labels, self.images, self.masks, self.boxes = _drawn(split, per_class, task)
        self.labels = list(labels)
        self.image_ids = [f"{split}/{i:05d}.png" for i in range(len(self.labels))]
        self.train = train

    def __len__(self) -> int:
        return len(self.labels)

    def display(self, i: int) -> np.ndarray:
        return self.images[i].numpy()

    def box_sizes(self) -> torch.Tensor:
        return box_sizes_of(self.boxes)

    def __getitem__(self, i: int) -> dict:
        image = (self.images[i].permute(2, 0, 1).float() / 255.0 - MEAN) / STD
        mask, boxes = self.masks[i], self.boxes[i : i + 1].clone()
        if self.train and torch.rand(()) < 0.5:
            image, mask = image.flip(-1), mask.flip(-1)
            boxes[:, [0, 2]] = SIZE - 1 - boxes[:, [2, 0]]
        return {"image": image, "label": self.labels[i], "boxes": boxes, "mask": mask, "index": i}


@register_dataset("synthetic")
class Synthetic(DatasetPlugin):
    description = "embedded 64x64 hue-coded objects on clutter, boxes and masks (default)"
    frames = ("native",)  # 64x64 images scored whole, as drawn

    def fingerprint(self, cfg: RunConfig) -> str:
        return f"generator-{GENERATOR_VERSION}"  # bump when drawing changes an image

    def load(self, cfg: RunConfig) -> Splits:
        return Splits(
            train=SyntheticSplit("train", SPLIT_SIZES["train"], train=True),
            val=SyntheticSplit("val", SPLIT_SIZES["val"], train=False),
            test=SyntheticSplit("test", SPLIT_SIZES["test"], train=False),
            num_classes=NUM_CLASSES,
            image_size=(SIZE, SIZE),
            val_source="generated val split (seed 2)",
        )
