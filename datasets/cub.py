"""CUB-200-2011 as distributed: ``images.txt``, ``image_class_labels.txt``,
``train_test_split.txt``, ``bounding_boxes.txt``, ``classes.txt``, ``images/``, and
optionally ``segmentations/`` (Caltech's per-image PNGs, grey = share of annotators) for
PxAP and pIoU, read with the WSOL benchmark's mask rule like every mask: any non-zero
grey is bird. (The benchmark scores masks on OpenImages only, so it has no CUB rule of
its own; one rule keeps PxAP comparable across datasets.)

Threshold selection uses the WSOL benchmark's train-fullsup metadata
(``metadata/val/``, ids relative to ``images/``) when present, otherwise 5 training
images per class held out with a fixed seed (removed from training)."""

from __future__ import annotations

from pathlib import Path

from wsolbench.core.config import RunConfig
from wsolbench.core.errors import UserError
from wsolbench.core.registry import register_dataset
from wsolbench.data.annotations import Item, check_box, number, read_wsol_split, rows
from wsolbench.data.imagefiles import FRAME, FileSplit
from wsolbench.data.kshot import held_out_indices
from wsolbench.data.splits import DatasetPlugin, Splits, dataset_folder

HELD_OUT_PER_CLASS = 5


def read_cub(root: Path) -> tuple[list[Item], list[Item], int]:
    """(train items, test items, number of classes) from the official text files."""
    num_classes = sum(1 for _ in rows(root / "classes.txt", None, 2, at_least=True))
    items: dict[str, Item] = {}
    path = root / "images.txt"
    for lineno, (iid, rel) in rows(path, None, 2):
        if iid in items:
            raise UserError(f"{path}:{lineno}: duplicate image id '{iid}'")
        items[iid] = Item(rel, -1)

    def item(path: Path, lineno: int, iid: str) -> Item:
        if iid not in items:
            raise UserError(f"{path}:{lineno}: image id '{iid}' is not in images.txt")
        return items[iid]

    path = root / "image_class_labels.txt"
    labelled = set()
    for lineno, (iid, c) in rows(path, None, 2):
        item(path, lineno, iid).label = int(number(path, lineno, c, int)) - 1  # 1-based
        labelled.add(iid)
    path = root / "bounding_boxes.txt"
    for lineno, (iid, *xywh) in rows(path, None, 5):
        x, y, w, h = (number(path, lineno, v) for v in xywh)
        if w <= 0 or h <= 0:  # x y w h: a box of no width holds no pixel
            raise UserError(f"{path}:{lineno}: box width {w} and height {h} must be positive")
        item(path, lineno, iid).boxes.append(check_box(path, lineno, [x, y, x + w, y + h]))
    path = root / "train_test_split.txt"
    is_train = {}
    for lineno, (iid, flag) in rows(path, None, 2):
        if flag not in ("0", "1"):
            raise UserError(f"{path}:{lineno}: is_train must be 0 or 1, got '{flag}'")
        item(path, lineno, iid)
        is_train[iid] = flag == "1"
    for iid in items:
        if iid not in labelled:
            raise UserError(f"{root / 'image_class_labels.txt'}: no class for image id '{iid}'")
        if iid not in is_train:
            raise UserError(f"{root / 'train_test_split.txt'}: no entry for image id '{iid}'")
    train = [it for iid, it in items.items() if is_train[iid]]
    test = [it for iid, it in items.items() if not is_train[iid]]
    return train, test, num_classes


@register_dataset("cub")
class CUB(DatasetPlugin):
    description = "CUB-200-2011 official folder (boxes; masks from segmentations/)"
    annotation_files = ("*.txt", "CUB_200_2011/*.txt", "**/metadata/*/*.txt")

    def load(self, cfg: RunConfig) -> Splits:
        root = dataset_folder(cfg, "cub")
        if (root / "CUB_200_2011" / "images.txt").is_file():  # the tarball's own folder
            root = root / "CUB_200_2011"
        train, test, n = read_cub(root)
        images = root / "images"
        seg = root / "segmentations"
        if seg.is_dir():
            for it in test:
                it.masks = [str(Path(it.image_id).with_suffix(".png"))]
        meta = root / "metadata" / "val"
        if meta.is_dir():
            val, val_source = read_wsol_split(meta), f"WSOL benchmark train-fullsup {meta}"
        else:
            held = set(held_out_indices([it.label for it in train], HELD_OUT_PER_CLASS, 0))
            val = [it for i, it in enumerate(train) if i in held]
            train = [it for i, it in enumerate(train) if i not in held]
            val_source = f"{HELD_OUT_PER_CLASS} training images per class held out (seed 0)"
        source = str(root / "images.txt")
        splits = Splits(
            train=FileSplit(train, images, n, source, train=True),
            val=FileSplit(val, images, n, str(meta) if meta.is_dir() else source, train=False),
            test=FileSplit(test, images, n, source, train=False, mask_root=seg),
            num_classes=n,
            image_size=FRAME,
            val_source=val_source,
            class_names=[name for _, (_, name) in rows(root / "classes.txt", None, 2)],
        )
        for split in (splits.train, splits.val, splits.test):
            split.tscam_int_xywh = True  # TS-CAM's lib/datasets/cub.py: int(float(v))
        return splits
