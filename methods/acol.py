"""ACoL: Adversarial Complementary Learning. Two classifiers share the trunk's
features; the second sees them with the first one's most activated region erased, so
it has to find the rest of the object.

Zhang, Wei, Feng, Yang, Huang. Adversarial Complementary Learning for Weakly Supervised
Object Localization, CVPR 2018. As the WSOL evaluation benchmark builds it (Choe et
al., CVPR 2020; clovaai/wsolevaluation ``wsol/method/acol.py`` and its networks):

- each classifier (``classifier_A``, ``classifier_B``) is a 3x3 conv to 1024 channels, a
  ReLU, a 3x3 conv 1024 -> 1024, a ReLU and a 1x1 conv to the classes; its logits are
  the spatial mean of its class maps;
- the attention is branch A's map of the label (the ground truth in training and when
  maps are scored; the prediction otherwise), min-max scaled per image; where it is at
  least ``threshold`` (the benchmark's ``acol_threshold``, 0.7) the features are set to
  0 for branch B; the mask carries no gradient;
- the loss is the cross-entropy of both branches' logits; the logits reported are A's;
- the map is, per class, the larger of the two branches' maps, each min-max scaled per
  image and class.

The trunks are the benchmark's: VGG16 with its 3x3 pools and a 3x3 average pool
(stride 1) over the features; ResNet-50's ``layer4`` (any timm ResNet in the same
layout, so the micro one on the synthetic data); InceptionV3's ``Mixed_6e``. New layers
are initialised as it does (Xavier on VGG and Inception, He on ResNet); on ResNet the
benchmark's faster layers are ``layer4`` alone, on VGG and Inception everything but the
pretrained trunk.

Differs from the benchmark: nothing in the computation. A constant attention map is
left unerased (its 0/0 compares false, as the benchmark's NaN does).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from wsolbench.core.config import Option, RunConfig
from wsolbench.core.registry import register_method
from wsolbench.core.space import uniform
from wsolbench.models.benchmark_nets import (
    BenchmarkNet,
    adopt,
    architecture,
    initialize,
    resnet_backbone,
    resnet_features,
    resnet_trunk,
    scale_per_map,
)
from wsolbench.models.cam import CAMBase
from wsolbench.models.inception import add_inception_trunk, stage5, stage6
from wsolbench.models.method import Step
from wsolbench.models.trunk import ModelOutput
from wsolbench.models.vgg16 import vgg16_features


def erase(features: torch.Tensor, attention: torch.Tensor, threshold: float) -> torch.Tensor:
    """``features`` with 0 wherever the (B, 1, h, w) ``attention`` is >= ``threshold``."""
    return features * (~(attention >= threshold)).to(features.dtype)


def classifier(channels: int, num_classes: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(channels, 1024, kernel_size=3, padding=1),
        nn.ReLU(inplace=False),
        nn.Conv2d(1024, 1024, kernel_size=3, padding=1),
        nn.ReLU(inplace=False),
        nn.Conv2d(1024, num_classes, kernel_size=1),
    )


class ACoLNet(BenchmarkNet):
    """A trunk (``trunk_features``) and ACoL's two classifiers."""

    head_names = ("classifier_A", "classifier_B")

    def __init__(self, backbone: str, num_classes: int, large: bool, threshold: float) -> None:
        super().__init__()
        self.threshold = threshold
        arch = architecture(backbone)
        if arch == "vgg16":
            self.arch, channels, init = "vgg16", 512, "xavier"
            self.features = vgg16_features("acol", large)
        elif arch == "inception_v3":
            self.arch, channels, init = "inception_v3", 768, "xavier"
            add_inception_trunk(self, large)
        else:
            self.arch, init = "resnet50", "he"
            net = resnet_trunk(resnet_backbone(backbone, "acol"), large)
            adopt(self, net)
            channels = net.num_features
        self.classifier_A = classifier(channels, num_classes)
        self.classifier_B = classifier(channels, num_classes)
        initialize(self, init)

    def trunk_features(self, x: torch.Tensor) -> torch.Tensor:
        if self.arch == "vgg16":
            return F.avg_pool2d(self.features(x), kernel_size=3, stride=1, padding=1)
        if self.arch == "inception_v3":
            return stage6(self, stage5(self, x))[0]
        return resnet_features(self, x)

    def forward(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> ModelOutput:
        features = self.trunk_features(images)
        maps_a = self.classifier_A(features)
        logits = maps_a.mean(dim=(2, 3))
        labels = logits.argmax(dim=1) if labels is None else labels
        picked = maps_a.detach()[torch.arange(len(labels), device=labels.device), labels]
        attention = scale_per_map(picked[:, None])
        maps_b = self.classifier_B(erase(features, attention, self.threshold))
        fused = torch.maximum(scale_per_map(maps_a.detach()), scale_per_map(maps_b.detach()))
        extras = {"logits_b": maps_b.mean(dim=(2, 3)), "attention": attention}
        return ModelOutput(logits=logits, maps=fused, extras=extras)


@register_method("acol")
class ACoL(CAMBase):
    description = (
        "ACoL (CVPR 2018): two classifiers, the second on features with the first's peak erased"
    )
    paper = "Zhang et al., Adversarial Complementary Learning, CVPR 2018"
    backbones = ("cnn",)
    options = {
        "threshold": Option(
            0.7,
            "erase the features where branch A's scaled attention >= threshold "
            "(the benchmark's acol_threshold)",
            low=0.0,
            high=1.0,
        ),
    }
    search_space = {"threshold": uniform(0.5, 0.9)}

    def build(self, cfg: RunConfig, num_classes: int) -> nn.Module:
        return ACoLNet(cfg.backbone, num_classes, cfg.large_feature_map, cfg.options["threshold"])

    def forward_labelled(
        self, model: nn.Module, images: torch.Tensor, labels: torch.Tensor
    ) -> ModelOutput:
        return model(images, labels)  # the ground truth chooses what is erased

    def train_step(
        self, model: nn.Module, batch: dict, step: Step
    ) -> tuple[torch.Tensor, dict[str, float]]:
        labels = batch["label"].to(step.device)
        out = model(batch["image"].to(step.device), labels)
        ce_a = F.cross_entropy(out.logits, labels)
        ce_b = F.cross_entropy(out.extras["logits_b"], labels)
        return ce_a + ce_b, {"ce": float(ce_a.detach()), "ce_b": float(ce_b.detach())}
