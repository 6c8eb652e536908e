"""CAM as a method base: a classifier trained with cross-entropy whose class
activation maps are the localization maps. CAM itself, and the methods that only
change its inputs or insert layers into its trunk (HaS, CutMix, ADL), build on it.

On a CNN backbone it is the WSOL benchmark's CAM network (``models.cnn.WSOLCNN``);
on a ViT it is TS-CAM's conv head over the patch tokens (``models.trunk.ViTCAM``)."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from wsolbench.core.config import RunConfig
from wsolbench.models.cnn import WSOLCNN, backbone_family
from wsolbench.models.losses import cross_entropy_only, unused_by_spatial_losses
from wsolbench.models.method import Method
from wsolbench.models.trunk import ModelOutput, ViTCAM

# The benchmark trains the new classifier of a CNN at 10x the trunk's learning rate
# (its ``lr_classifier_ratio``).
CLASSIFIER_LR_SCALE = 10.0


class CAMBase(Method):
    class_aware = True
    backbones: ClassVar[tuple[str, ...]] = ("cnn", "vit")

    def unused_settings(self, cfg: RunConfig) -> tuple[str, ...]:
        unused = unused_by_spatial_losses(cfg, on=False)
        # timm's CNNs take no stochastic depth in the benchmark's recipe.
        return unused + (("drop_path",) if backbone_family(cfg.backbone) == "cnn" else ())

    def build(self, cfg: RunConfig, num_classes: int) -> nn.Module:
        if backbone_family(cfg.backbone) == "cnn":
            return WSOLCNN(cfg.backbone, num_classes)
        return ViTCAM(cfg.backbone, num_classes, cfg.drop_path)

    def param_groups(self, model: nn.Module, cfg: RunConfig) -> list[dict] | None:
        if not isinstance(model, WSOLCNN):
            return None  # the trainer's, as for every ViT method
        return [
            {"params": list(model.trunk.parameters())},
            {"params": list(model.fc.parameters()), "lr_scale": CLASSIFIER_LR_SCALE},
        ]

    def loss(
        self, out: ModelOutput, labels: torch.Tensor, cfg: RunConfig, spatial_weight: float
    ) -> tuple[torch.Tensor, dict[str, float]]:
        return cross_entropy_only(out, labels)
