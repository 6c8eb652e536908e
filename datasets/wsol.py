"""Any dataset in the WSOL benchmark's metadata format, so users can bring their own:
``<data root>/wsol/metadata/{train,val,test}/`` with ``image_ids.txt``,
``class_labels.txt``, optional ``image_sizes.txt`` and ``localization.txt`` (boxes or
masks); image ids and mask paths relative to ``<data root>/wsol/``."""

from __future__ import annotations

from wsolbench.core.registry import register_dataset
from wsolbench.data.imagefiles import MetadataDataset


@register_dataset("wsol")
class WSOLMetadata(MetadataDataset):
    description = "your own data as WSOL benchmark metadata (boxes and/or masks)"
