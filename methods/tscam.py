"""TS-CAM: Token Semantic Coupled Attention Map.

Gao, Wan, Wei, Ma, Zha. TS-CAM: Token Semantic Coupled Attention Map for Weakly
Supervised Object Localization, ICCV 2021. https://github.com/vasgaowei/TS-CAM

Follows the authors' code: DeiT backbone, no extra token, TS-CAM's conv 3x3 head with
global average pooling on the patch tokens; the map for class c is the sum over all
blocks of the head-averaged post-softmax attention of the class token to the patch
tokens, times the head's class-c feature map. Trained with cross-entropy only.

Differs from the authors' code:
- maps are min-max scaled to [0, 1] per image and class inside the network (the
  authors scale them in their evaluator; the box protocol normalises again, so
  boxes do not change);
- ``spatial_losses`` adds SAT's batch-area and normalization losses on the
  ground-truth class map (not in TS-CAM; for comparisons under SAT's losses);
- attention runs in the fused kernel; the class-token row is computed separately.
"""

from __future__ import annotations

import torch
from torch import nn

from wsolbench.core.config import Option, RunConfig
from wsolbench.core.registry import register_method
from wsolbench.models.attention import block_forward
from wsolbench.models.losses import cross_entropy_only, spatial_losses, unused_by_spatial_losses
from wsolbench.models.method import Method
from wsolbench.models.trunk import ModelOutput, WSOLViT, minmax


class TSCAMNet(WSOLViT):
    def forward(self, images: torch.Tensor) -> ModelOutput:
        x = self.embed(images)
        attention = 0
        for block in self.blocks:
            x, logits = block_forward(block, x, row_index=0)
            attention = attention + logits.softmax(dim=-1).mean(dim=1)[:, 1:]
        class_maps = self.class_maps(self.norm(x)[:, 1:])
        coupled = attention.reshape(x.shape[0], 1, *self.grid) * class_maps
        return ModelOutput(logits=class_maps.mean(dim=(2, 3)), maps=minmax(coupled))


@register_method("tscam")
class TSCAM(Method):
    description = "TS-CAM (ICCV 2021): summed class-token attention x class maps"
    paper = "Gao et al., TS-CAM, ICCV 2021"
    class_aware = True
    options = {"spatial_losses": Option(False, "add SAT's area and normalization losses")}

    def unused_settings(self, cfg: RunConfig) -> tuple[str, ...]:
        return unused_by_spatial_losses(cfg, on=cfg.options["spatial_losses"])

    def build(self, cfg: RunConfig, num_classes: int) -> nn.Module:
        return TSCAMNet(cfg["backbone"], num_classes, cfg["drop_path"])

    def loss(
        self, out: ModelOutput, labels: torch.Tensor, cfg: RunConfig, spatial_weight: float
    ) -> tuple[torch.Tensor, dict[str, float]]:
        if cfg.options["spatial_losses"]:
            gt = ModelOutput(out.logits, self.localization_maps(out, labels))
            return spatial_losses(gt, labels, cfg, spatial_weight)
        return cross_entropy_only(out, labels)
