"""Annotation files as datasets ship them, read line by line: every error names
the file and the line. Also the WSOL benchmark's metadata format (Choe et al.,
CVPR 2020): ``image_ids.txt``, ``class_labels.txt``, ``image_sizes.txt`` and
``localization.txt`` per split."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import numpy as np

from wsolbench.core.errors import UserError

# Mask value of pixels that count neither as object nor as background. Torch-free
# here, so scoring workers can read it without importing torch.
IGNORE = 255

BoxArray = TypeVar("BoxArray")  # np.ndarray or torch.Tensor


def box_sizes_of(boxes: BoxArray) -> BoxArray:
    """(n, 2) widths and heights of (n, 4) ``x0, y0, x1, y1`` boxes whose last pixel
    is inside (width = x1 - x0 + 1, the convention of both reference codes); numpy
    arrays or torch tensors alike."""
    return boxes[..., 2:4] - boxes[..., 0:2] + 1


@dataclass
class Item:
    """One image as the annotations describe it, before any transform. Boxes are
    ``x0, y0, x1, y1`` in original pixels; masks are paths of instance masks whose
    union is the object, and an optional ignore-region mask."""

    image_id: str
    label: int
    boxes: list[list[float]] = field(default_factory=list)
    masks: list[str] = field(default_factory=list)
    ignore: str | None = None
    size: tuple[int, int] | None = None  # (width, height)


def rows(path: Path, sep: str | None, n: int, at_least: bool = False) -> Iterator[tuple[int, list]]:
    """(line number, fields) of every non-blank line; ``sep`` None splits on blanks."""
    if not path.is_file():
        raise UserError(f"{path}: file is missing")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        raise UserError(f"{path}: not UTF-8 text (byte {e.start})") from None
    except OSError as e:
        raise UserError(f"{path}: cannot read ({e.strerror})") from None
    for lineno, line in enumerate(text.split("\n"), 1):  # the lines an editor numbers
        line = line.strip()
        if not line:
            continue
        fields = [x.strip() for x in line.split(sep)]
        if len(fields) < n or (len(fields) != n and not at_least):
            how = "blanks" if sep is None else f"'{sep}'"
            raise UserError(
                f"{path}:{lineno}: expected {'at least ' if at_least else ''}{n} fields "
                f"separated by {how}, got {len(fields)}"
            )
        yield lineno, fields


def number(path: Path, lineno: int, text: str, kind: type = float) -> float:
    """A field as a finite number of ``kind``; anything else names the file and line."""
    try:
        value = kind(text)
    except ValueError:
        raise UserError(f"{path}:{lineno}: '{text[:40]}' is not {kind.__name__}") from None
    if not math.isfinite(value):
        raise UserError(f"{path}:{lineno}: '{text[:40]}' is not a finite number")
    return value


def check_box(path: Path, lineno: int, box: list[float]) -> list[float]:
    """Reject inverted boxes (a one-pixel box, x1 == x0, is legal, as in the WSOL
    benchmark); boxes that leave the image are clipped later."""
    x0, y0, x1, y1 = box
    if x1 < x0 or y1 < y0:
        raise UserError(f"{path}:{lineno}: box {box} has x1 < x0 or y1 < y0")
    return box


def unique_ids(path: Path) -> dict[str, Item]:
    items: dict[str, Item] = {}
    for lineno, (image_id,) in rows(path, None, 1):
        if image_id in items:
            raise UserError(f"{path}:{lineno}: duplicate image id '{image_id}'")
        items[image_id] = Item(image_id, -1)
    return items


def lookup(items: dict[str, Item], path: Path, lineno: int, image_id: str) -> Item:
    if image_id not in items:
        raise UserError(f"{path}:{lineno}: image id '{image_id}' is not in image_ids.txt")
    return items[image_id]


def read_wsol_split(folder: Path) -> list[Item]:
    """One split of WSOL-benchmark metadata. ``localization.txt`` lines are boxes
    (``id,x0,y0,x1,y1``, several lines for several boxes) or masks
    (``id,mask_path,ignore_path``); it and ``image_sizes.txt`` may be absent."""
    items = unique_ids(folder / "image_ids.txt")
    if not items:
        raise UserError(f"{folder / 'image_ids.txt'}: lists no image")
    labels = folder / "class_labels.txt"
    for lineno, (image_id, label) in rows(labels, ",", 2):
        lookup(items, labels, lineno, image_id).label = int(number(labels, lineno, label, int))
    unlabelled = [i for i, it in items.items() if it.label < 0]
    if unlabelled:
        raise UserError(f"{labels}: no label for image id '{unlabelled[0]}'")
    sizes = folder / "image_sizes.txt"
    if sizes.is_file():
        for lineno, (image_id, w, h) in rows(sizes, ",", 3):
            wh = (int(number(sizes, lineno, w, int)), int(number(sizes, lineno, h, int)))
            if min(wh) < 1:
                raise UserError(f"{sizes}:{lineno}: image size {wh[0]}x{wh[1]} is not positive")
            lookup(items, sizes, lineno, image_id).size = wh
    loc = folder / "localization.txt"
    if loc.is_file():
        for lineno, fields in rows(loc, ",", 3, at_least=True):
            item = lookup(items, loc, lineno, fields[0])
            if len(fields) == 5:
                box = [number(loc, lineno, v) for v in fields[1:]]
                item.boxes.append(check_box(loc, lineno, box))
            elif len(fields) == 3:
                _add_mask(item, fields, loc, lineno)
            else:
                raise UserError(
                    f"{loc}:{lineno}: expected id,x0,y0,x1,y1 or id,mask,ignore; "
                    f"got {len(fields)} fields"
                )
    return list(items.values())


def _add_mask(item: Item, fields: list[str], path: Path, lineno: int) -> None:
    """One instance mask line. As in the benchmark's metadata, the ignore mask is
    named on an image's first line only; later lines leave the field empty."""
    if item.masks and fields[2]:
        raise UserError(
            f"{path}:{lineno}: image '{item.image_id}' names an ignore mask on a later "
            "mask line; only its first line may"
        )
    if not item.masks:
        item.ignore = fields[2] or None
    item.masks.append(fields[1])


def box_array(boxes: list[list[float]]) -> np.ndarray:
    return np.asarray(boxes, np.float32).reshape(-1, 4)
