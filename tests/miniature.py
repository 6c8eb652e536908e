"""Miniature copies of the real datasets in their own file formats: a few tiny
JPEG/PNG files per class, written by the tests into a temporary folder."""

from __future__ import annotations

import zlib
from pathlib import Path

import cv2
import numpy as np

COLOURS = [(220, 40, 40), (40, 200, 60), (50, 60, 230)]  # RGB per class
WNIDS = ["n01440764", "n01443537", "n01484850"]


def photo(path: Path, w: int, h: int, box: tuple[int, int, int, int], label: int) -> None:
    """A noisy background with a filled rectangle ``box`` (x0, y0, x1, y1 inclusive)
    in the class colour, saved as JPEG (or PNG by suffix)."""
    rng = np.random.default_rng(zlib.crc32(path.name.encode()))
    img = rng.integers(90, 160, (h, w, 3), dtype=np.uint8)
    x0, y0, x1, y1 = box
    img[y0 : y1 + 1, x0 : x1 + 1] = COLOURS[label]
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))


def mask_png(path: Path, w: int, h: int, box: tuple[int, int, int, int]) -> None:
    m = np.zeros((h, w), np.uint8)
    x0, y0, x1, y1 = box
    m[y0 : y1 + 1, x0 : x1 + 1] = 255
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), m)


def layout(n_per_class: int) -> list[tuple[int, int, int, tuple[int, int, int, int]]]:
    """(label, width, height, box) for each image; sizes and boxes vary."""
    out = []
    for c in range(3):
        for k in range(n_per_class):
            w, h = 40 + 8 * k, 32 + 4 * c
            box = (4 + k, 6 + c, 4 + k + 19, 6 + c + 15)
            out.append((c, w, h, box))
    return out


def make_cub(root: Path, train_per_class: int = 4, test_per_class: int = 2) -> Path:
    cub = root / "cub"
    cub.mkdir(parents=True)
    names = [f"{c + 1:03d}.Bird_{c}" for c in range(3)]
    (cub / "classes.txt").write_text("".join(f"{c + 1} {n}\n" for c, n in enumerate(names)))
    lines = {k: [] for k in ("images", "labels", "split", "boxes")}
    per = train_per_class + test_per_class
    for i, (c, w, h, box) in enumerate(layout(per), 1):
        rel = f"{names[c]}/Bird_{c}_{i:04d}.jpg"
        photo(cub / "images" / rel, w, h, box, c)
        mask_png(cub / "segmentations" / rel.replace(".jpg", ".png"), w, h, box)
        x0, y0, x1, y1 = box
        lines["images"].append(f"{i} {rel}")
        lines["labels"].append(f"{i} {c + 1}")
        lines["split"].append(f"{i} {int((i - 1) % per < train_per_class)}")
        # CUB's x y w h; x + w is one past the last pixel.
        lines["boxes"].append(f"{i} {x0}.0 {y0}.0 {x1 - x0 + 1}.0 {y1 - y0 + 1}.0")
    files = {
        "images": "images.txt",
        "labels": "image_class_labels.txt",
        "split": "train_test_split.txt",
        "boxes": "bounding_boxes.txt",
    }
    for key, name in files.items():
        (cub / name).write_text("\n".join(lines[key]) + "\n")
    return root


def make_imagenet(root: Path, source: str, val_metadata: bool = False) -> Path:
    """``source``: xml, csv, val_gt or metadata (where the val boxes come from)."""
    net = root / "imagenet"
    for i, (c, w, h, box) in enumerate(layout(2)):
        photo(net / "train" / WNIDS[c] / f"{WNIDS[c]}_{i}.JPEG", w, h, box, c)
    val = layout(2)
    records = []
    for i, (c, w, h, box) in enumerate(val, 1):
        name = f"ILSVRC2012_val_{i:08d}"
        rel = f"{WNIDS[c]}/{name}.JPEG" if source == "val_gt" else f"{name}.JPEG"
        photo(net / "val" / rel, w, h, box, c)
        # A second box on the first image: several boxes per image.
        boxes = [box] + ([(0, 0, 9, 9)] if i == 1 else [])
        records.append((name, rel, c, w, h, boxes))
    if source == "xml":
        for name, _, c, w, h, boxes in records:
            objs = "".join(
                f"<object><name>{WNIDS[c]}</name><bndbox><xmin>{b[0]}</xmin><ymin>{b[1]}"
                f"</ymin><xmax>{b[2]}</xmax><ymax>{b[3]}</ymax></bndbox></object>"
                for b in boxes
            )
            (net / "val" / f"{name}.xml").write_text(
                f"<annotation><filename>{name}</filename><size><width>{w}</width>"
                f"<height>{h}</height><depth>3</depth></size>{objs}</annotation>"
            )
    elif source == "csv":
        rows = ["ImageId,PredictionString"]
        for name, _, c, _, _, boxes in records:
            rows.append(f"{name}," + " ".join(f"{WNIDS[c]} {' '.join(map(str, b))}" for b in boxes))
        (net / "LOC_val_solution.csv").write_text("\n".join(rows) + "\n")
    elif source == "val_gt":
        (net / "val_gt.txt").write_text(
            "".join(
                f"{rel} {w} {h} ; {' '.join(' '.join(map(str, b)) for b in boxes)}\n"
                for _, rel, _, w, h, boxes in records
            )
        )
    elif source == "metadata":
        write_metadata(
            net / "metadata" / "test",
            [
                (f"val/{rel}", c, w, h, [",".join(map(str, b)) for b in boxes])
                for _, rel, c, w, h, boxes in records
            ],
        )
    if val_metadata:
        extra = [(c, w, h, box) for c, w, h, box in layout(1)]
        entries = []
        for i, (c, w, h, box) in enumerate(extra):
            rel = f"imagenetv2/{c}/{i}.jpeg"
            photo(net / rel, w, h, box, c)
            entries.append((rel, c, w, h, [",".join(map(str, box))]))
        write_metadata(net / "metadata" / "val", entries)
    return root


def write_metadata(folder: Path, entries: list[tuple[str, int, int, int, list[str]]]) -> None:
    """WSOL benchmark metadata: (image id, label, width, height, localization lines)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "image_ids.txt").write_text("".join(f"{e[0]}\n" for e in entries))
    (folder / "class_labels.txt").write_text("".join(f"{e[0]},{e[1]}\n" for e in entries))
    (folder / "image_sizes.txt").write_text("".join(f"{e[0]},{e[2]},{e[3]}\n" for e in entries))
    (folder / "localization.txt").write_text(
        "".join(f"{e[0]},{loc}\n" for e in entries for loc in e[4])
    )


def make_openimages(root: Path) -> Path:
    """Masks with an ignore region (a band below the object) for val and test."""
    oi = root / "openimages"
    for split, n in (("train", 2), ("val", 1), ("test", 2)):
        entries = []
        for i, (c, w, h, box) in enumerate(layout(n)):
            rel = f"{split}/{c:02d}/{split}_{i}.jpg"
            photo(oi / rel, w, h, box, c)
            loc = []
            if split != "train":
                mask = f"masks/{split}_{i}_m0.png"
                ignore = f"masks/{split}_{i}_ignore.png"
                mask_png(oi / mask, w, h, box)
                mask_png(oi / ignore, w, h, (0, box[3] + 1, w - 1, min(box[3] + 4, h - 1)))
                loc = [f"{mask},{ignore}"]
            entries.append((rel, c, w, h, loc))
        write_metadata(oi / "metadata" / split, entries)
    return root
