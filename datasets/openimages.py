"""OpenImages30k in the WSOL benchmark's metadata (``metadata/{train,val,test}/``);
``localization.txt`` names instance-mask and ignore-mask PNGs, so only PxAP and pIoU
(and classification) are scored. Image ids and mask paths are relative to the
dataset folder."""

from __future__ import annotations

from wsolbench.core.registry import register_dataset
from wsolbench.data.imagefiles import MetadataDataset


@register_dataset("openimages")
class OpenImages(MetadataDataset):
    description = "OpenImages30k, WSOL benchmark metadata with masks (PxAP, pIoU)"
