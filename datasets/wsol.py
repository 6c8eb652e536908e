"""Any dataset in the WSOL benchmark's metadata format, so users can bring their own:
``<data root>/wsol/metadata/{train,val,test}/`` with ``image_ids.txt``,
``class_labels.txt``, optional ``image_sizes.txt`` and ``localization.txt`` (boxes or
masks); image ids and mask paths relative to ``<data root>/wsol/``."""

from __future__ import annotations

from wsolbench.config import RunConfig
from wsolbench.data import DatasetPlugin, Splits
from wsolbench.imagefiles import dataset_folder, metadata_splits
from wsolbench.registry import register_dataset


@register_dataset("wsol")
class WSOLMetadata(DatasetPlugin):
    description = "your own data as WSOL benchmark metadata (boxes and/or masks)"
    defaults = {
        "backbone": "deit_small_patch16_224",
        "epochs": 30,
        "batch_size": 256,
        "lr": 1e-4,
        "lambda": 0.25,
        "loss_delay": 0.0,
        "loss_ramp": 0.0,
    }

    def load(self, cfg: RunConfig) -> Splits:
        return metadata_splits(dataset_folder(cfg, "wsol"))
