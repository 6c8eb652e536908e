"""SAT: Spatial-Aware Token for weakly supervised object localization.

Wu, Zhai, Cao, Luo, Zha. ICCV 2023. https://github.com/wpy1999/SAT

Follows the authors' code:
- token order ``[cls, patches, spatial]``; the spatial token and its own position
  embedding (truncated normal, std 0.02) are appended after the patch tokens;
- in each of the last ``sat_blocks`` (3) blocks the spatial token's pre-softmax
  attention row, averaged over heads and passed through a sigmoid, gates the keys of
  every query (``softmax(qk^T) * m``, Eq. 6); the authors form that row in every block
  but use it only in the last three, so it is computed only there;
- the map is the mean of those gates over the patch positions; the class token
  output is unused; TS-CAM's conv 3x3 head with global average pooling classifies;
- loss = cross-entropy + batch area + normalization (3x3 Gaussian, nsig 6), unweighted.

Differs from the authors' code:
- the gated attention runs in the fused kernel with the gate folded into V
  (``fused: false`` gives the step-by-step form; both are equal, see tests);
- ``loss_delay`` / ``loss_ramp`` can warm up the spatial losses (0 for the paper's
  datasets, as the authors do; used on the synthetic data from scratch);
- ``area_loss`` / ``norm_loss`` / ``gaussian`` switch parts off for Table 2;
- on ILSVRC the authors train on 4 GPUs with ``torch.distributed.launch``, so each
  GPU's batch-area loss is over its own 128 images; here the batch of 512 is one
  batch on one device and the area loss is over all 512 (``area_per 128`` gives the
  authors' per-128 reading: the mean over chunks of 128 of |chunk mean - lambda|;
  a run setting, so that it enters the run id only when set).
The paper writes the logit scale as sqrt(D); the code (and this) uses sqrt(head_dim).
"""

from __future__ import annotations

import torch
from torch import nn

from wsolbench.core.config import Option, RunConfig
from wsolbench.core.errors import UserError
from wsolbench.core.recipe import SHARED, Value
from wsolbench.core.registry import register_method
from wsolbench.core.space import uniform
from wsolbench.models.attention import block_forward
from wsolbench.models.losses import spatial_losses, unused_by_spatial_losses
from wsolbench.models.method import Method
from wsolbench.models.trunk import ModelOutput, WSOLViT

_PIL = "transforms.Resize((256, 256)) on PIL images (bilinear, antialiased)"
# The authors' recipes: the shared recipe's values are theirs; their loaders resize
# with PIL (torchvision), where the shared recipe keeps OpenCV's resize.
RECIPES = {
    "cub": SHARED["cub"].derive(
        "sat-cub",
        "the SAT authors' CUB recipe (train.py)",
        trust="published",
        resize=Value("pil", f"wpy1999/SAT DataLoader/CUB_200_2011.py: {_PIL}"),
    ),
    "imagenet": SHARED["imagenet"].derive(
        "sat-imagenet",
        "the SAT authors' ILSVRC recipe (train_ImageNet.py); batch 512 on one device "
        "(theirs: 4 GPUs x 128; area_per 128 for their per-GPU area loss)",
        trust="published",
        resize=Value("pil", f"wpy1999/SAT DataLoader/ILSVRC.py: {_PIL}"),
    ),
}


class SATNet(WSOLViT):
    def __init__(
        self,
        backbone: str,
        num_classes: int,
        drop_path: float,
        sat_blocks: int,
        fused: bool,
        spatial_token: bool = True,
        gate: bool = True,
    ) -> None:
        super().__init__(backbone, num_classes, drop_path)
        if not 1 <= sat_blocks <= self.depth:
            raise UserError(f"options: sat_blocks must be in [1, {self.depth}], got {sat_blocks}")
        self.sat_blocks = sat_blocks
        self.fused = fused
        self.gate = gate
        # Without the extra token the class token queries (the attention-map baseline).
        self.query = -1 if spatial_token else 0
        if spatial_token:
            self.spatial_token = nn.Parameter(torch.zeros(1, 1, self.embed_dim))
            self.spatial_pos_embed = nn.Parameter(torch.zeros(1, 1, self.embed_dim))
            nn.init.trunc_normal_(self.spatial_token, std=0.02)
            nn.init.trunc_normal_(self.spatial_pos_embed, std=0.02)

    def forward(self, images: torch.Tensor) -> ModelOutput:
        x = self.embed(images)
        if self.query == -1:
            spatial = (self.spatial_token + self.spatial_pos_embed).expand(x.shape[0], -1, -1)
            x = torch.cat([x, spatial], dim=1)
        patches = slice(1, x.shape[1] - 1 if self.query == -1 else x.shape[1])
        first_sat = self.depth - self.sat_blocks
        gates = []
        for i, block in enumerate(self.blocks):
            is_sat = i >= first_sat
            x, logits = block_forward(
                block,
                x,
                row_index=self.query if is_sat else None,
                gate_keys=is_sat and self.gate,
                fused=self.fused,
            )
            if is_sat:
                gates.append(torch.sigmoid(logits.mean(dim=1))[:, patches])
        maps = torch.stack(gates).mean(dim=0).reshape(x.shape[0], *self.grid)
        class_maps = self.class_maps(self.norm(x)[:, patches])
        return ModelOutput(logits=class_maps.mean(dim=(2, 3)), maps=maps)

    def no_weight_decay(self) -> set[str]:
        return super().no_weight_decay() | {"spatial_token", "spatial_pos_embed"}


@register_method("sat")
class SAT(Method):
    description = "Spatial-Aware Token (ICCV 2023): a spatial token gates the last 3 blocks"
    paper = "Wu et al., Spatial-Aware Token for Weakly Supervised Object Localization, ICCV 2023"
    class_aware = False
    # The area target and the spatial losses' warm-up (shares of the run).
    search_space = {"lambda": uniform(0.05, 0.5), "loss_delay": uniform(0.0, 0.8)}
    options = {
        "area_loss": Option(True, "the batch-area loss |mean map - lambda| (Eq. 7)"),
        "norm_loss": Option(True, "the normalization loss mean(M (1 - M)) (Eq. 8)"),
        "gaussian": Option(True, "the 3x3 Gaussian filter inside the normalization loss"),
        "sat_blocks": Option(3, "last blocks gated by the spatial token", low=1, high=12),
        "fused": Option(True, "fused attention kernel (equal to the step-by-step form)"),
    }
    recipes = RECIPES

    def unused_settings(self, cfg: RunConfig) -> tuple[str, ...]:
        return unused_by_spatial_losses(cfg)

    def build(self, cfg: RunConfig, num_classes: int) -> nn.Module:
        o = cfg.options
        return SATNet(cfg["backbone"], num_classes, cfg["drop_path"], o["sat_blocks"], o["fused"])

    # The authors' released checkpoints name the spatial token and its position
    # embedding differently, and carry the fixed Gaussian kernel as a tensor.
    checkpoint_keys = {
        "loc_token": "spatial_token",
        "loc_embed": "spatial_pos_embed",
        "weight": None,
    }

    def loss(
        self, out: ModelOutput, labels: torch.Tensor, cfg: RunConfig, spatial_weight: float
    ) -> tuple[torch.Tensor, dict[str, float]]:
        return spatial_losses(out, labels, cfg, spatial_weight)
