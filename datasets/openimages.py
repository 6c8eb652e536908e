"""OpenImages30k in the WSOL benchmark's metadata (``metadata/{train,val,test}/``);
``localization.txt`` names instance-mask and ignore-mask PNGs, so only PxAP and pIoU
(and classification) are scored. Image ids and mask paths are relative to the
dataset folder."""

from __future__ import annotations

from wsolbench.core.config import RunConfig
from wsolbench.core.registry import register_dataset
from wsolbench.data.imagefiles import metadata_splits
from wsolbench.data.splits import DatasetPlugin, Splits, dataset_folder


@register_dataset("openimages")
class OpenImages(DatasetPlugin):
    description = "OpenImages30k, WSOL benchmark metadata with masks (PxAP, pIoU)"
    annotation_files = ("metadata/*/*.txt",)

    def load(self, cfg: RunConfig) -> Splits:
        return metadata_splits(dataset_folder(cfg, "openimages"))
