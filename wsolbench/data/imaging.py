"""Decoding and the authors' image pipeline for real photographs.

Train: resize to 256x256, random 224 crop, horizontal flip. Evaluation in one of two
frames (see ``Frame``): the authors' resize 256x256 + centre 224 crop, or the WSOL
benchmark's whole image resized to 224x224; boxes and masks follow the image.
Two pipelines, the recipe's ``resize``: ``cv2`` decodes and resizes with OpenCV
(bilinear, no antialiasing; several times faster, see ``wsolbench bench``); ``pil``
decodes with PIL and resizes with PIL's bilinear filter, which antialiases when it
shrinks: exactly what torchvision's ``Resize`` does to a PIL image in the SAT,
TS-CAM and WSOL benchmark loaders. Masks are resized nearest either way."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from wsolbench.core.errors import UserError

RESIZE, CROP = 256, 224
MEAN = np.array([0.485, 0.456, 0.406], np.float32) * 255
STD = np.array([0.229, 0.224, 0.225], np.float32) * 255


def read_image(path: Path, how: str = "cv2") -> np.ndarray:
    """(H, W, 3) uint8 RGB, decoded by OpenCV or (``pil``) as the authors' loaders do,
    ``Image.open(path).convert('RGB')``."""
    if how == "pil":
        try:
            with Image.open(path) as im:
                return np.asarray(im.convert("RGB"))
        except (OSError, UnidentifiedImageError, ValueError):
            raise UserError(f"{path}: cannot be read as an image") from None
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise UserError(f"{path}: cannot be read as an image")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def resize_to(img: np.ndarray, size: int, how: str = "cv2") -> np.ndarray:
    """``img`` resized to ``size`` x ``size``: OpenCV's bilinear, or PIL's (``pil``,
    torchvision's ``Resize((size, size))`` on a PIL image)."""
    if how == "pil":
        return np.asarray(Image.fromarray(img).resize((size, size), Image.Resampling.BILINEAR))
    return cv2.resize(img, (size, size), interpolation=cv2.INTER_LINEAR)


def read_mask(path: Path) -> np.ndarray:
    """(H, W) uint8 grey values."""
    mask = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if mask is None:
        raise UserError(f"{path}: cannot be read as a mask image")
    return mask


def header_size(path: Path) -> tuple[int, int]:
    """(width, height) from the file header only, without decoding the pixels."""
    try:
        with Image.open(path) as im:
            return im.size
    except FileNotFoundError:
        raise UserError(f"{path}: file is missing") from None
    except (UnidentifiedImageError, OSError) as e:
        raise UserError(f"{path}: cannot be read as an image ({e.__class__.__name__})") from None


@dataclass(frozen=True)
class Frame:
    """Where an image of ``width`` x ``height`` is evaluated. ``crop`` (the SAT and
    TS-CAM authors'): resize to 256x256, centre 224 crop. ``resize`` (the WSOL
    benchmark's): the whole image resized to 224x224, no crop."""

    kind: str
    width: int
    height: int
    resize: str = "cv2"  # how the image is resized (``resize_to``)

    def boxes(self, boxes: np.ndarray) -> np.ndarray:
        """(n, 4) original ``x0, y0, x1, y1`` -> this frame. crop: scale, shift by the
        crop, truncate, clip to [0, 223], as TS-CAM's and the SAT authors' loaders do.
        resize: ``int(x * 224 / W)`` per axis and nothing else, as the benchmark's
        ``resize_bbox`` does (so a box reaching the right edge ends at 224)."""
        b = np.asarray(boxes, np.float64)
        if self.kind == "resize":
            size = np.array([self.width, self.height] * 2, np.float64)
            return np.floor(b * CROP / size).astype(np.float32)
        scale = np.array([RESIZE / self.width, RESIZE / self.height] * 2)
        shift = (RESIZE - CROP) // 2
        return np.clip(np.floor(b * scale - shift), 0, CROP - 1).astype(np.float32)

    def mask(self, mask: np.ndarray) -> np.ndarray:
        """A label mask resized nearest-neighbour (any size: the benchmark resizes a
        mask whose size differs from its image), then cropped in the crop frame."""
        if self.kind == "resize":
            return cv2.resize(mask, (CROP, CROP), interpolation=cv2.INTER_NEAREST)
        return centre_view(resize_square(mask, nearest=True))

    def view(self, img: np.ndarray) -> np.ndarray:
        """The (224, 224, 3) evaluation view of a decoded image."""
        if self.kind == "resize":
            return resize_to(img, CROP, self.resize)
        return centre_view(resize_square(img, how=self.resize))


def tscam_boxes(boxes: np.ndarray, width: int, height: int, int_xywh: bool) -> np.ndarray:
    """GT boxes ``x0, y0, x1, y1`` (original pixels) as TS-CAM's test loaders put them
    in its 224x224 resize frame: ``int(max(x / W * 224, 0))`` for the left / top,
    ``int(min(x1 / W * 224, 223))`` for the right / bottom, in that order of operations
    (truncation decides at exact integers). ``int_xywh`` (its CUB loader): x, y, w, h
    are first truncated to ints each (``int(float(v))``), so x1 = int(x) + int(w)."""
    b = np.asarray(boxes, np.float64).reshape(-1, 4).copy()
    if int_xywh:
        # Rounded first: w = x1 - x0 of floats read as "x y w h" is w up to an ulp.
        w, h = np.trunc(np.round(b[:, 2] - b[:, 0], 6)), np.trunc(np.round(b[:, 3] - b[:, 1], 6))
        b[:, :2] = np.trunc(b[:, :2])
        b[:, 2], b[:, 3] = b[:, 0] + w, b[:, 1] + h
    scaled = b / np.array([width, height] * 2, np.float64) * CROP
    lo = np.trunc(np.maximum(scaled[:, :2], 0))
    hi = np.trunc(np.minimum(scaled[:, 2:], CROP - 1))
    return np.concatenate([lo, hi], axis=1).astype(np.float32)


def centre_frame(width: int, height: int) -> Frame:
    return Frame("crop", width, height)


def boxes_to_frame(boxes: np.ndarray, f: Frame) -> np.ndarray:
    return f.boxes(boxes)


def resize_square(img: np.ndarray, nearest: bool = False, how: str = "cv2") -> np.ndarray:
    """To 256x256: nearest for label masks, else the pipeline's bilinear."""
    if nearest:
        return cv2.resize(img, (RESIZE, RESIZE), interpolation=cv2.INTER_NEAREST)
    return resize_to(img, RESIZE, how)


def crop(img: np.ndarray, x: int, y: int, size: int = CROP) -> np.ndarray:
    return img[y : y + size, x : x + size]


def centre_view(big: np.ndarray) -> np.ndarray:
    """The centre 224 crop of a 256x256 image: the evaluation view."""
    off = (RESIZE - CROP) // 2
    return crop(big, off, off)


def mask_to_frame(mask: np.ndarray, f: Frame) -> np.ndarray:
    return f.mask(mask)


def to_tensor(img: np.ndarray) -> torch.Tensor:
    """(H, W, 3) uint8 -> (3, H, W) float, ImageNet mean/std normalised."""
    return torch.from_numpy(((img.astype(np.float32) - MEAN) / STD).transpose(2, 0, 1).copy())


def train_view(
    img: np.ndarray, gen: torch.Generator | None = None, how: str = "cv2"
) -> torch.Tensor:
    """Resize 256x256, random 224 crop, random horizontal flip."""
    big = resize_square(img, how=how)
    x, y = torch.randint(0, RESIZE - CROP + 1, (2,), generator=gen).tolist()
    view = crop(big, x, y)
    if torch.rand((), generator=gen) < 0.5:
        view = view[:, ::-1]
    return to_tensor(view)


def ten_crops(big: np.ndarray) -> torch.Tensor:
    """(10, 3, 224, 224): four corners and centre of the 256x256 image, and their
    mirror images, as torchvision's TenCrop."""
    r = RESIZE - CROP
    corners = [(0, 0), (r, 0), (0, r), (r, r), (r // 2, r // 2)]
    views = [crop(big, x, y) for x, y in corners]
    views += [v[:, ::-1] for v in views]
    return torch.stack([to_tensor(v) for v in views])
