"""ILSVRC-2012 as users have it: ``train/<wnid>/*.JPEG`` (class index = sorted wnid
order) and ``val/`` images (flat, or in wnid folders) with boxes from the first of
these that exists in the dataset folder:

1. ``metadata/test/`` — WSOL benchmark metadata (ids relative to the dataset folder);
2. ``LOC_val_solution.csv`` — Kaggle: ``ImageId,wnid x0 y0 x1 y1 [wnid x0 y0 x1 y1 ...]``;
3. ``val_gt.txt`` — SAT authors: ``path width height ; x0 y0 x1 y1 [...]``, paths under
   ``val/`` and inside a wnid folder (the label);
4. per-image XML (devkit / Kaggle): ``val/*.xml`` or ``Annotations/CLS-LOC/val/*.xml``.

Threshold selection needs the benchmark's train-fullsup split (``metadata/val/``,
ImageNetV2 images); without it, pass ``--threshold-on test`` (the authors' protocol)."""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

from wsolbench.core.config import RunConfig
from wsolbench.core.errors import UserError
from wsolbench.core.registry import register_dataset
from wsolbench.data.annotations import Item, check_box, number, read_wsol_split, rows
from wsolbench.data.imagefiles import FRAME, FileSplit
from wsolbench.data.splits import DatasetPlugin, Splits, dataset_folder

IMAGE_SUFFIXES = (".jpeg", ".jpg", ".png")


def train_folder(root: Path) -> Path:
    """``root/train``, checked to hold class folders."""
    train = root / "train"
    if not train.is_dir():
        raise UserError(f"{train}: missing (the class folders train/<wnid>/ define the classes)")
    with os.scandir(train) as entries:
        if not any(e.is_dir() for e in entries):
            raise UserError(f"{train}: holds no class folders")
    return train


def train_items(root: Path) -> tuple[list[Item], list[str]]:
    train = train_folder(root)
    wnids = sorted(e.name for e in os.scandir(train) if e.is_dir())
    items = [
        Item(f"train/{w}/{e.name}", c)
        for c, w in enumerate(wnids)
        for e in sorted(os.scandir(train / w), key=lambda e: e.name)
        if e.name.lower().endswith(IMAGE_SUFFIXES)
    ]
    return items, wnids


class ValImages:
    """Resolves a val image name (with or without suffix) to its id under ``val/``,
    flat or inside a wnid folder."""

    def __init__(self, root: Path, classes: dict[str, int]) -> None:
        self.root, self.classes = root, classes

    def label(self, path: Path, lineno: int, wnid: str) -> int:
        if wnid not in self.classes:
            raise UserError(f"{path}:{lineno}: class '{wnid}' is not a train/ class folder")
        return self.classes[wnid]

    def image_id(self, name: str, wnid: str) -> str:
        name = name if name.lower().endswith(IMAGE_SUFFIXES) else f"{name}.JPEG"
        flat = f"val/{name}"
        return flat if (self.root / flat).is_file() else f"val/{wnid}/{name}"


def read_loc_csv(path: Path, val: ValImages) -> list[Item]:
    items = []
    for lineno, (image, spec) in rows(path, ",", 2):
        if lineno == 1 and image == "ImageId":
            continue  # header
        parts = spec.split()
        if not parts or len(parts) % 5:
            raise UserError(f"{path}:{lineno}: expected groups of 'wnid x0 y0 x1 y1'")
        groups = [parts[i : i + 5] for i in range(0, len(parts), 5)]
        it = Item(val.image_id(image, groups[0][0]), val.label(path, lineno, groups[0][0]))
        for g in groups:
            it.boxes.append(check_box(path, lineno, [number(path, lineno, v) for v in g[1:]]))
        items.append(it)
    return items


def read_val_gt(path: Path, val: ValImages) -> list[Item]:
    items = []
    for lineno, (head, coords) in rows(path, ";", 2):
        head_fields, values = head.split(), coords.split()
        if len(head_fields) != 3 or not values or len(values) % 4:
            raise UserError(f"{path}:{lineno}: expected 'path width height ; x0 y0 x1 y1 ...'")
        rel, w, h = head_fields
        wnid = Path(rel).parent.name
        it = Item(f"val/{rel}", val.label(path, lineno, wnid))
        it.size = (int(number(path, lineno, w, int)), int(number(path, lineno, h, int)))
        nums = [number(path, lineno, v) for v in values]
        it.boxes = [check_box(path, lineno, nums[i : i + 4]) for i in range(0, len(nums), 4)]
        items.append(it)
    return items


def read_xml(path: Path, val: ValImages) -> Item:
    try:
        tree = ET.parse(path).getroot()
        name = tree.findtext("filename")
        size = (int(tree.findtext("size/width")), int(tree.findtext("size/height")))
        objects = [
            (
                o.findtext("name"),
                [float(o.findtext(f"bndbox/{k}")) for k in ("xmin", "ymin", "xmax", "ymax")],
            )
            for o in tree.iter("object")
        ]
    except (ET.ParseError, TypeError, ValueError) as e:
        raise UserError(f"{path}: not a valid ILSVRC annotation ({e})") from None
    if not name or not objects:
        raise UserError(f"{path}: no filename or no object in this annotation")
    wnid = objects[0][0]
    it = Item(val.image_id(name, wnid), val.label(path, 0, wnid), size=size)
    it.boxes = [check_box(path, 0, box) for _, box in objects]
    return it


def read_val(root: Path, classes: dict[str, int]) -> tuple[list[Item], str]:
    """Test-split items and which annotation source they came from."""
    meta = root / "metadata" / "test"
    if meta.is_dir():
        return read_wsol_split(meta), str(meta)
    val = ValImages(root, classes)
    if (root / "LOC_val_solution.csv").is_file():
        return read_loc_csv(root / "LOC_val_solution.csv", val), str(root / "LOC_val_solution.csv")
    if (root / "val_gt.txt").is_file():
        return read_val_gt(root / "val_gt.txt", val), str(root / "val_gt.txt")
    for folder in (root / "val", root / "Annotations" / "CLS-LOC" / "val"):
        xmls = sorted(folder.glob("*.xml")) if folder.is_dir() else []
        if xmls:
            return [read_xml(p, val) for p in xmls], f"{folder}/*.xml"
    raise UserError(
        f"imagenet: no validation boxes in {root} (looked for metadata/test/, "
        "LOC_val_solution.csv, val_gt.txt, val/*.xml, Annotations/CLS-LOC/val/*.xml)"
    )


@register_dataset("imagenet")
class ImageNet(DatasetPlugin):
    description = "ILSVRC-2012 train/ class folders + val boxes (XML, Kaggle CSV, metadata)"
    annotation_files = (
        "metadata/*/*.txt",
        "LOC_val_solution.csv",
        "val_gt.txt",
        "val/*.xml",
        "Annotations/CLS-LOC/val/*.xml",
    )

    def check(self, cfg: RunConfig) -> None:
        train_folder(dataset_folder(cfg, "imagenet"))

    def load(self, cfg: RunConfig) -> Splits:
        root = dataset_folder(cfg, "imagenet")
        train, wnids = train_items(root)
        n = len(wnids)
        test, source = read_val(root, {w: c for c, w in enumerate(wnids)})
        dup = next((i for i, k in Counter(it.image_id for it in test).items() if k > 1), None)
        if dup:
            raise UserError(f"{source}: duplicate image '{dup}'")
        meta = root / "metadata" / "val"
        val = None
        if meta.is_dir():
            val = FileSplit(read_wsol_split(meta), root, n, str(meta), train=False)
        elif cfg["threshold_on"] == "val":
            raise UserError(
                f"imagenet: no threshold-selection split: add the WSOL benchmark's "
                f"train-fullsup metadata as {meta}, or pass --threshold-on test "
                "(the SAT authors' protocol)"
            )
        return Splits(
            train=FileSplit(train, root, n, str(root / "train"), train=True, read_sizes=False),
            val=val,
            test=FileSplit(test, root, n, source, train=False),
            num_classes=n,
            class_names=wnids,
            image_size=FRAME,
            val_source=f"WSOL benchmark train-fullsup {meta}"
            if val
            else "none (threshold on test)",
            notes={"box_source": source},
        )
