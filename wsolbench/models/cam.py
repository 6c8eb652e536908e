"""CAM as a method base: a classifier trained with cross-entropy whose class
activation maps are the localization maps. CAM itself, and the methods that only
change its inputs or insert layers into its trunk (HaS, CutMix, ADL), build on it.

On the benchmark's ``vgg16``, ``inception_v3`` and ``resnet50`` it is the benchmark's
own network for each (``models.benchmark_nets``); on another timm CNN, the same CAM
head on timm's trunk (``models.cnn.WSOLCNN``); on a ViT, TS-CAM's conv head over the
patch tokens (``models.trunk.ViTCAM``)."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from wsolbench.core.config import RunConfig
from wsolbench.models.benchmark_nets import BenchmarkNet, architecture, build_cam_net
from wsolbench.models.benchmark_recipes import BENCHMARK
from wsolbench.models.cnn import WSOLCNN, backbone_family
from wsolbench.models.losses import cross_entropy_only, unused_by_spatial_losses
from wsolbench.models.method import Method
from wsolbench.models.trunk import ModelOutput, ViTCAM


class CAMBase(Method):
    class_aware = True
    backbones: ClassVar[tuple[str, ...]] = ("cnn", "vit")
    recipes = BENCHMARK
    benchmark_networks = True  # vgg16, inception_v3 and resnet50 are built as it builds them

    def unused_settings(self, cfg: RunConfig) -> tuple[str, ...]:
        unused = unused_by_spatial_losses(cfg, on=False)
        # timm's CNNs take no stochastic depth in the benchmark's recipe.
        return unused + (("drop_path",) if backbone_family(cfg.backbone) == "cnn" else ())

    def build(self, cfg: RunConfig, num_classes: int) -> nn.Module:
        if architecture(cfg.backbone):  # vgg16, inception_v3, resnet50: the benchmark's
            return build_cam_net(cfg.backbone, num_classes, cfg.large_feature_map)
        if backbone_family(cfg.backbone) == "cnn":
            return WSOLCNN(cfg.backbone, num_classes, cfg.classifier_init)
        return ViTCAM(cfg.backbone, num_classes, cfg.drop_path)

    def param_groups(self, model: nn.Module, cfg: RunConfig) -> list[dict] | None:
        if not isinstance(model, (WSOLCNN, BenchmarkNet)):
            return None  # the trainer's, as for every ViT method
        # The benchmark's two groups: the fast layers at lr_classifier_ratio x the rate,
        # either the new classifier alone (fc) or its layers per architecture.
        fast = (
            model.fast_parameters() if cfg.fast_layers == "benchmark" else model.head_parameters()
        )
        fast_ids = {id(p) for p in fast}
        slow = [p for p in model.parameters() if id(p) not in fast_ids]
        return [
            {"params": slow},
            {
                "params": [p for p in model.parameters() if id(p) in fast_ids],
                "lr_scale": cfg.lr_classifier_ratio,
            },
        ]

    def loss(
        self, out: ModelOutput, labels: torch.Tensor, cfg: RunConfig, spatial_weight: float
    ) -> tuple[torch.Tensor, dict[str, float]]:
        return cross_entropy_only(out, labels)
