"""Splits of image files on disk, shared by the real-dataset plugins: where the data
lives, checks of every listed file before a run starts, and per-item decoding."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

from wsolbench.core.config import RunConfig
from wsolbench.core.errors import UserError
from wsolbench.data.annotations import IGNORE, Item, box_array, box_sizes_of, read_wsol_split
from wsolbench.data.imaging import (
    CROP,
    Frame,
    header_size,
    read_image,
    read_mask,
    resize_square,
    ten_crops,
    to_tensor,
    train_view,
    tscam_boxes,
)
from wsolbench.data.splits import DatasetPlugin, Splits, WSOLSplit, dataset_folder

FRAME = (CROP, CROP)  # (H, W) the models see


class FileSplit(WSOLSplit):
    """Items whose files were checked: every image exists (and, where sizes are
    needed, has a readable header), labels are in range, boxes lie in their image
    (those that stick out are clipped and counted), masks are readable. Targets and
    evaluation views are in ``frame`` (see ``imaging.Frame``)."""

    frames = ("crop", "resize")
    # TS-CAM's CUB loader truncates x, y, w, h to ints before scaling (``tscam_boxes``).
    tscam_int_xywh = False

    def __init__(
        self,
        items: list[Item],
        image_root: Path,
        num_classes: int,
        source: str,
        train: bool,
        mask_root: Path | None = None,
        read_sizes: bool = True,
        need_images: bool = True,
    ) -> None:
        self.items, self.image_root, self.train = items, image_root, train
        self.mask_root = mask_root or image_root
        self.tencrop = False
        self.frame = "crop"
        self.labels = [it.label for it in items]
        self.image_ids = [it.image_id for it in items]
        self.has_boxes = any(it.boxes for it in items)
        self.has_masks = any(it.masks for it in items)
        self.clipped = 0
        if not items:
            raise UserError(f"{source}: the split lists no image")
        for it in items:
            if not 0 <= it.label < num_classes:
                raise UserError(
                    f"{source}: image '{it.image_id}': class {it.label} is outside "
                    f"0..{num_classes - 1}"
                )
            path = image_root / it.image_id
            if not need_images:  # scoring maps: sizes come from the annotations
                if it.size is None and it.boxes:
                    raise UserError(f"{source}: image_sizes.txt gives no size for '{it.image_id}'")
            elif it.size is None and (read_sizes or it.boxes or it.masks):
                it.size = header_size(path)
            elif not path.is_file():
                raise UserError(f"{path}: image listed in {source} is missing")
            self.clipped += self._clip(it, source)
            for m in it.masks + ([it.ignore] if it.ignore else []):
                header_size(self.mask_root / m)  # readable; any size (resized to the frame)
        if self.clipped:
            print(
                f"wsolbench: warning: {source}: {self.clipped} boxes extend past their "
                "image and were clipped to it",
                file=sys.stderr,
            )

    @staticmethod
    def _clip(it: Item, source: str) -> int:
        if not it.boxes:
            return 0
        w, h = it.size
        b = box_array(it.boxes)
        # x1 = x + w (one past the last pixel) is the CUB convention, so W itself is inside.
        if ((b[:, 0] > w) | (b[:, 1] > h) | (b[:, 2] < 0) | (b[:, 3] < 0)).any():
            raise UserError(
                f"{source}: image '{it.image_id}': a box lies wholly outside its {w}x{h} image"
            )
        inside = np.clip(b, 0, [w, h, w, h])
        it.boxes = inside.tolist()
        return int((inside != b).any(axis=1).sum())

    def __len__(self) -> int:
        return len(self.items)

    def _frame(self, width: int, height: int) -> Frame:
        return Frame(self.frame, width, height, self.resize)

    def box_sizes(self) -> torch.Tensor:
        sizes = [self._frame(*it.size).boxes(box_array(it.boxes)) for it in self.items if it.boxes]
        return box_sizes_of(torch.from_numpy(np.concatenate(sizes)))

    def _mask(self, it: Item, f: Frame) -> np.ndarray:
        """The WSOL benchmark's rule: each instance mask resized nearest to the frame,
        any non-zero grey is object (its ``> 0.5`` on 0..255); the union of instances
        is the object; the ignore region is the ignore mask minus the object."""
        fg = np.zeros((CROP, CROP), bool)
        for m in it.masks:
            fg |= f.mask(read_mask(self.mask_root / m)) > 0
        mask = fg.astype(np.uint8)
        if it.ignore:
            mask[(f.mask(read_mask(self.mask_root / it.ignore)) > 0) & ~fg] = IGNORE
        return mask

    def _targets(self, it: Item, shape: tuple[int, ...]) -> dict:
        f = self._frame(shape[1], shape[0])
        out = {"boxes": torch.zeros(0, 4)}
        if it.boxes:
            out["boxes"] = torch.from_numpy(f.boxes(box_array(it.boxes)))
            if self.box_rule == "tscam":
                tb = tscam_boxes(box_array(it.boxes), f.width, f.height, self.tscam_int_xywh)
                out["tscam_boxes"] = torch.from_numpy(tb)
        if self.has_masks:
            mask = self._mask(it, f) if it.masks else np.zeros((CROP, CROP), np.uint8)
            out["mask"] = torch.from_numpy(mask)
        return out

    def target(self, i: int) -> dict:
        it = self.items[i]
        if it.size:
            w, h = it.size
        else:  # masks alone are resized to the frame whatever the image's size
            w, h = header_size(self.image_root / it.image_id) if it.boxes else (CROP, CROP)
        return self._targets(it, (h, w))

    def display(self, i: int) -> np.ndarray:
        img = read_image(self.image_root / self.items[i].image_id, self.resize)
        return self._frame(img.shape[1], img.shape[0]).view(img)

    def __getitem__(self, i: int) -> dict:
        it = self.items[i]
        img = read_image(self.image_root / it.image_id, self.resize)
        out = {"label": it.label, "index": i}
        if self.train:
            return {**out, "image": train_view(img, how=self.resize), "boxes": torch.zeros(0, 4)}
        view = self._frame(img.shape[1], img.shape[0]).view(img)
        out.update(self._targets(it, img.shape), image=to_tensor(view))
        if self.tencrop:
            out["crops"] = ten_crops(resize_square(img, how=self.resize))
        return out


def metadata_split(folder: Path, split: str, num_classes: int | None, train: bool) -> FileSplit:
    """A split given as WSOL-benchmark metadata in ``<folder>/metadata/<split>/``;
    image ids and mask paths are relative to ``folder``."""
    meta = folder / "metadata" / split
    if not meta.is_dir():
        raise UserError(f"{meta}: metadata folder is missing")
    items = read_wsol_split(meta)
    if num_classes is None:
        num_classes = 1 + max(it.label for it in items)
    return FileSplit(items, folder, num_classes, str(meta), train, read_sizes=not train)


def metadata_splits(folder: Path) -> Splits:
    """train / val (train-fullsup) / test, all from metadata."""
    train = metadata_split(folder, "train", None, train=True)
    n = 1 + max(train.labels)
    return Splits(
        train=train,
        val=metadata_split(folder, "val", n, train=False),
        test=metadata_split(folder, "test", n, train=False),
        num_classes=n,
        image_size=FRAME,
        val_source=f"WSOL benchmark metadata {folder / 'metadata' / 'val'}",
    )


class MetadataDataset(DatasetPlugin):
    """A dataset in the WSOL benchmark's metadata format under ``<data root>/<name>/``."""

    annotation_files = ("metadata/*/*.txt",)

    def load(self, cfg: RunConfig) -> Splits:
        return metadata_splits(dataset_folder(cfg, self.name))
