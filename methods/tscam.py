"""TS-CAM: Token Semantic Coupled Attention Map.

Gao, Wan, Wei, Ma, Zha. TS-CAM: Token Semantic Coupled Attention Map for Weakly
Supervised Object Localization, ICCV 2021. https://github.com/vasgaowei/TS-CAM

Follows the authors' code: DeiT backbone, no extra token, TS-CAM's conv 3x3 head with
global average pooling on the patch tokens; the map for class c is the sum over all
blocks of the head-averaged post-softmax attention of the class token to the patch
tokens, times the head's class-c feature map. Trained with cross-entropy only.

Recipes (``RECIPES``): the authors' own configs, ``train_val_*.sh`` and argparse
defaults, and their evaluation: the whole image resized to 224 (no crop), their GT
box conversion and their box rule (largest ``cv2.contourArea`` at ``MODEL.CAM_THR``),
reported as GT-known / Top-1 / Top-5 Loc beside the benchmark's metrics.

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
from wsolbench.core.recipe import Recipe, Value
from wsolbench.core.registry import register_method
from wsolbench.models.attention import block_forward
from wsolbench.models.losses import cross_entropy_only, spatial_losses, unused_by_spatial_losses
from wsolbench.models.method import Method
from wsolbench.models.trunk import ModelOutput, WSOLViT, minmax

_TS = "vasgaowei/TS-CAM"
_ARGS = f"{_TS} lib/config/default.py update_config"
_NO_AREA = "unused: TS-CAM trains with cross-entropy only (--spatial-losses reads it)"


def _recipe(
    dataset: str,
    folder: str,
    epochs: int,
    batch: int,
    lr: float,
    steps: list,
    thr: float,
    lam: float,
) -> Recipe:
    """TS-CAM's recipe on one dataset: its config ``configs/<folder>/...small...yaml``,
    the lr and CAM threshold of ``train_val_<dataset>.sh``, the rest argparse defaults."""
    yaml = f"{_TS} configs/{folder}/deit_tscam_small_patch16_224.yaml"
    script = f"{_TS} train_val_{'cub' if dataset == 'cub' else 'ilsvrc'}.sh"
    loader = f"{_TS} lib/datasets/{'cub' if dataset == 'cub' else 'imagenet'}.py"
    return Recipe(
        name=f"tscam-{dataset}",
        dataset=dataset,
        about=f"the TS-CAM authors' {folder} recipe and evaluation",
        values={
            "backbone": Value("deit_small_patch16_224", f"{yaml}: MODEL.ARCH"),
            "pretrained": Value("hub", f"{_TS} tools_cam/train_cam.py: pretrained=True"),
            "epochs": Value(epochs, f"{yaml}: SOLVER.NUM_EPOCHS {epochs}"),
            "batch_size": Value(batch, f"{yaml}: TRAIN.BATCH_SIZE {batch}"),
            "lr": Value(lr, f"{script}: --lr {lr:g}"),
            "optimizer": Value("adamw", f"{_ARGS}: --opt default adamw (timm create_optimizer)"),
            "weight_decay": Value(0.05, f"{_ARGS}: --weight-decay default 0.05"),
            "drop_path": Value(0.1, f"{_ARGS}: --drop-path default 0.1"),
            "schedule": Value(
                "step", f"{_TS} tools_cam/train_cam.py: adjust_learning_rate_normal per epoch"
            ),
            "lr_steps": Value(
                steps,
                f"{yaml}: SOLVER.LR_STEPS; {_TS} lib/core/engine.py adjust_learning_rate_normal: "
                f"x LR_FACTOR at the start of epoch e (1..{epochs}) when e % step == 0",
            ),
            "lr_factor": Value(0.1, f"{yaml}: SOLVER.LR_FACTOR 0.1"),
            "warmup_epochs": Value(0.0, f"{_TS} tools_cam/train_cam.py: no scheduler is built"),
            "resize": Value("pil", f"{loader}: transforms.Resize on PIL images"),
            "frame": Value("resize", f"{loader}: test_transform Resize((224, 224)), no crop"),
            "box_rule": Value("tscam", f"{_TS} lib/cams_deit.py: resize_cam, get_bboxes"),
            "cam_threshold": Value(thr, f"{script}: MODEL.CAM_THR {thr}"),
            "lambda": Value(lam, _NO_AREA),
            "loss_delay": Value(0.0, _NO_AREA),
            "loss_ramp": Value(0.0, _NO_AREA),
        },
    )


RECIPES = {
    "cub": _recipe("cub", "CUB", 60, 128, 5e-5, [30, 60], 0.1, 0.25),
    "imagenet": _recipe("imagenet", "ILSVRC", 20, 256, 5e-4, [10, 12, 20], 0.12, 0.35),
}


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
    recipes = RECIPES

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
