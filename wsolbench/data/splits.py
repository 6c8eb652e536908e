"""The dataset interface. A dataset plugin is one class registered with
``@register_dataset("name")`` in a file under ``datasets/``.

A split yields dicts: ``image`` (3, H, W) float tensor, ``label`` int, ``boxes``
(n, 4) float tensor of ``x0, y0, x1, y1`` (last pixel inclusive) in the image frame,
optionally ``mask`` (H, W) uint8 with 1 = object and ``annotations.IGNORE`` =
neither, and ``index``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Subset

from wsolbench.core.config import RunConfig
from wsolbench.core.digests import files_digest
from wsolbench.core.errors import UserError
from wsolbench.core.recipe import shared_recipe
from wsolbench.data.annotations import box_sizes_of


def dataset_folder(cfg: RunConfig, name: str) -> Path:
    """``<data root>/<name>``, the data root from ``--data-root`` or WSOLBENCH_DATA."""
    root = cfg["data_root"] or os.environ.get("WSOLBENCH_DATA")
    how = f"pass --data-root DIR or set WSOLBENCH_DATA, with the dataset in DIR/{name}/"
    if not root:
        raise UserError(f"{name}: no data folder given; {how}")
    folder = Path(root) / name
    if not folder.is_dir():
        raise UserError(f"{name}: no dataset at {folder}; {how}")
    return folder


class WSOLSplit(Dataset):
    """A split that knows its labels and image ids without decoding images."""

    labels: list[int]
    image_ids: list[str]
    has_masks: bool = False
    has_boxes: bool = True
    resize: str = "cv2"  # how photographs are resized (``Splits.use_frame``)
    box_rule: str = "sat"  # tscam: targets carry TS-CAM's GT boxes too

    def target(self, i: int) -> dict[str, Any]:
        """``boxes`` (and ``mask``) of item ``i`` in the evaluation frame. Override to
        skip decoding the image; this fallback loads the whole item."""
        item = self[i]
        return {k: item[k] for k in ("boxes", "mask") if k in item}

    def display(self, i: int) -> np.ndarray:
        """Item ``i`` as (H, W, 3) uint8 RGB in the evaluation frame, for figures."""
        raise UserError(f"{type(self).__name__} cannot show its images")

    def box_sizes(self) -> torch.Tensor:
        """(n, 2) widths and heights of every GT box in the evaluation frame. Override
        to read them from annotations; this fallback loads every item."""
        boxes = torch.cat([self[i]["boxes"] for i in range(len(self))])
        return box_sizes_of(boxes)


@dataclass
class Splits:
    train: WSOLSplit
    val: WSOLSplit | None  # None only when the threshold is picked on test
    test: WSOLSplit
    num_classes: int
    image_size: tuple[int, int]  # (H, W) of the evaluation frame
    val_source: str  # how the threshold-selection split was made, for the record
    notes: dict[str, Any] = field(default_factory=dict)  # data facts for the record
    class_names: list[str] | None = None  # by label, where the dataset names its classes

    frame: str = "native"  # see imaging.Frame; "native": the images as they are

    def use_frame(self, kind: str, resize: str = "cv2", box_rule: str = "sat") -> None:
        """Evaluate every split in frame ``kind`` (the dataset plugin declares which),
        resize photographs with ``resize`` (cv2 or pil) and give the GT boxes of
        ``box_rule`` too (tscam: TS-CAM's own conversion)."""
        self.frame = kind
        for s in (self.train, self.val, self.test):
            if s is not None:
                s.frame, s.resize, s.box_rule = kind, resize, box_rule

    def use_run(self, cfg: RunConfig) -> None:
        """Give the images and targets as run ``cfg`` sees them: its frame, its resize
        and its box rule's GT boxes (a run, its exported maps and its figures alike)."""
        self.use_frame(cfg.frame, cfg.resize, cfg.box_rule)

    @property
    def map_mode(self) -> str:
        """How grid maps are resized to the frame: bicubic in the WSOL benchmark's
        frame, as its inference does; bilinear otherwise, as the SAT authors do."""
        return "bicubic" if self.frame == "resize" else "bilinear"

    def split(self, name: str) -> WSOLSplit:
        found = getattr(self, name)
        if found is None:
            raise UserError(f"this dataset has no {name} split ({self.val_source})")
        return found

    def box_source(self) -> WSOLSplit:
        """The first split with boxes, for the mean-box-size baseline."""
        return next(s for s in (self.train, self.val, self.test) if s is not None and s.has_boxes)


class DatasetPlugin:
    name: ClassVar[str]
    description: ClassVar[str] = ""
    # Evaluation frames the dataset can give (imaging.Frame); the first is the default
    # where ``defaults`` names none.
    frames: ClassVar[tuple[str, ...]] = ("crop", "resize")

    # Annotation and split files (globs under the dataset folder) whose content is part
    # of a run's identity; never the images.
    annotation_files: ClassVar[tuple[str, ...]] = ()

    def load(self, cfg: RunConfig) -> Splits:
        raise NotImplementedError

    def check(self, cfg: RunConfig) -> None:
        """Quick checks of the data a run needs (no file read), made before the run's
        weights are sought: a missing folder is named before any download is tried.
        File datasets: their folder exists; a plugin adds what its reader needs."""
        if self.annotation_files:
            dataset_folder(cfg, self.name)

    @property
    def defaults(self) -> dict[str, Any]:
        """The shared recipe's values on this dataset (``core.recipe``): what a run
        takes where no method recipe applies. Training values are recipes', not the
        dataset's; a plugin declares only facts of its data."""
        return shared_recipe(self.name).settings()

    def fingerprint(self, cfg: RunConfig) -> str:
        """A digest of the data a run reads, for its identity: two datasets in two data
        folders are two runs. File datasets hash their annotation files."""
        return files_digest(dataset_folder(cfg, self.name), self.annotation_files)


def collate(items: list[dict]) -> dict[str, Any]:
    """Stack images and labels; keep per-image boxes as a list (counts differ)."""
    batch = {
        "image": torch.stack([it["image"] for it in items]),
        "label": torch.tensor([it["label"] for it in items]),
        "index": torch.tensor([it["index"] for it in items]),
        "boxes": [it["boxes"] for it in items],
    }
    if "tscam_boxes" in items[0]:
        batch["tscam_boxes"] = [it["tscam_boxes"] for it in items]
    if "mask" in items[0]:
        batch["mask"] = torch.stack([it["mask"] for it in items])
    return batch


def subset_labels(ds: Dataset) -> list[int]:
    if isinstance(ds, Subset):
        base = subset_labels(ds.dataset)
        return [base[i] for i in ds.indices]
    return ds.labels


def check_frame(cfg: RunConfig, dataset: DatasetPlugin) -> RunConfig:
    """The config with the dataset's default frame filled in; a frame the dataset
    cannot give is refused."""
    if cfg.frame is None:
        return cfg.replace(frame=dataset.frames[0])
    if cfg.frame not in dataset.frames:
        raise UserError(
            f"frame: dataset {cfg.dataset} is evaluated in {' or '.join(dataset.frames)}, "
            f"not '{cfg.frame}'"
        )
    return cfg


def make_loader(ds: Dataset, cfg: RunConfig, train_split: bool, seed: int) -> DataLoader:
    return DataLoader(
        ds,
        batch_size=cfg["batch_size"],
        shuffle=train_split,
        drop_last=train_split and len(ds) > cfg["batch_size"],
        num_workers=cfg["workers"],
        collate_fn=collate,
        generator=torch.Generator().manual_seed(seed) if train_split else None,
        persistent_workers=cfg["workers"] > 0,
    )
