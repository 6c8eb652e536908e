"""CAM on a vision transformer: the class maps of TS-CAM's conv head, with no
attention term (TS-CAM without token coupling).

Zhou, Khosla, Lapedriza, Oliva, Torralba. Learning Deep Features for Discriminative
Localization, CVPR 2016. The head is TS-CAM's (conv 3x3 + global average pooling over
the patch tokens of a DeiT), so CAM and TS-CAM differ only in the attention term.
Trained with cross-entropy only. Maps are min-max scaled per image and class.
A sanity floor: any method that localizes worse than this adds nothing.
"""

from __future__ import annotations

import torch
from torch import nn

from wsolbench.core.config import RunConfig
from wsolbench.core.registry import register_method
from wsolbench.models.losses import cross_entropy_only, unused_by_spatial_losses
from wsolbench.models.method import Method
from wsolbench.models.trunk import ModelOutput, WSOLViT, minmax


class CAMNet(WSOLViT):
    def forward(self, images: torch.Tensor) -> ModelOutput:
        x = self.embed(images)
        for block in self.blocks:
            x = block(x)
        class_maps = self.class_maps(self.norm(x)[:, 1:])
        return ModelOutput(logits=class_maps.mean(dim=(2, 3)), maps=minmax(class_maps))


@register_method("cam")
class CAM(Method):
    description = "CAM (CVPR 2016) from TS-CAM's conv head on a ViT; the sanity floor"
    paper = "Zhou et al., Learning Deep Features for Discriminative Localization, CVPR 2016"
    class_aware = True

    def unused_settings(self, cfg: RunConfig) -> tuple[str, ...]:
        return unused_by_spatial_losses(cfg, on=False)

    def build(self, cfg: RunConfig, num_classes: int) -> nn.Module:
        return CAMNet(cfg["backbone"], num_classes, cfg["drop_path"])

    def loss(
        self, out: ModelOutput, labels: torch.Tensor, cfg: RunConfig, spatial_weight: float
    ) -> tuple[torch.Tensor, dict[str, float]]:
        return cross_entropy_only(out, labels)
