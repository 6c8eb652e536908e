"""ADL: Attention-based Dropout Layer. After chosen trunk blocks, each training step
either drops the most activated region of the feature map or stresses it.

Choe, Shim. Attention-based Dropout Layer for Weakly Supervised Object Localization,
CVPR 2019. As the WSOL evaluation benchmark builds it (Choe et al., CVPR 2020): CAM's
network on a CNN; after each chosen block the self-attention map is the channel mean
of the features; the drop mask is 1 where it is below ``threshold`` times the image's
maximum, 0 elsewhere; the importance map is its sigmoid. With probability
``drop_rate`` (one draw per layer and step) the features are multiplied by the drop
mask, otherwise by the importance map. The layer does nothing at test time. The
defaults are the benchmark's (``adl_drop_rate`` 0.75, ``adl_threshold`` 0.9).

On the benchmark's networks the layers sit where it puts them (``models.vgg16``,
``models.benchmark_nets``): VGG16 after pool 3, conv4_3 and conv5_3 (inside
``features``, numbered as its plan numbers them); InceptionV3 after ``Mixed_5d``,
``Mixed_6e`` and ``SPG_A3_2b`` (its network then has no dropout); ResNet-50 after block 0
of ``layer3`` and blocks 0 and 2 of ``layer4`` (inside the stages, shifting the later
blocks' indices as its ``align_layer`` does). On any other timm CNN they are forward
hooks on the blocks ``at`` names (the default fits timm's ResNets).

Differs from the benchmark: the drop-or-stress draw is ``torch.rand(()) < drop_rate``,
the benchmark's ``floor(rand + drop_rate)`` read the same way.
"""

from __future__ import annotations

import functools

import torch
from torch import nn

from wsolbench.core.config import Option, RunConfig
from wsolbench.core.errors import UserError
from wsolbench.core.registry import register_method
from wsolbench.core.space import uniform
from wsolbench.models.benchmark_nets import architecture, build_cam_net
from wsolbench.models.cam import CAMBase


def self_attention(features: torch.Tensor) -> torch.Tensor:
    """(B, C, h, w) -> the channel mean (B, 1, h, w)."""
    return features.mean(dim=1, keepdim=True)


def drop_mask(attention: torch.Tensor, threshold: float) -> torch.Tensor:
    """1 where the attention is below ``threshold`` times its image's maximum."""
    peak = attention.flatten(1).amax(dim=1).view(-1, 1, 1, 1)
    return (attention < threshold * peak).to(attention.dtype)


class ADL(nn.Module):
    def __init__(self, drop_rate: float, threshold: float) -> None:
        super().__init__()
        self.drop_rate, self.threshold = drop_rate, threshold

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return features
        attention = self_attention(features)
        if float(torch.rand(())) < self.drop_rate:
            return features * drop_mask(attention, self.threshold)
        return features * torch.sigmoid(attention)


def find_block(trunk: nn.Module, path: str) -> nn.Module:
    """``layer4.-1`` -> the trunk's module there (a negative index counts from the end)."""
    module = trunk
    for part in path.split("."):
        children = list(module.children())
        if part.lstrip("-").isdigit() and isinstance(module, (nn.Sequential, nn.ModuleList)):
            index = int(part)
            if not -len(children) <= index < len(children):
                raise UserError(f"options: at: '{path}': index {index} is out of range")
            module = children[index]
        elif part in module._modules:
            module = module._modules[part]
        else:
            raise UserError(f"options: at: '{path}': the trunk has no module '{part}' there")
    return module


@register_method("adl")
class ADLMethod(CAMBase):
    description = "ADL (CVPR 2019): CAM with attention-based dropout after chosen CNN blocks"
    paper = "Choe and Shim, Attention-based Dropout Layer, CVPR 2019"
    backbones = ("cnn",)
    options = {
        "drop_rate": Option(
            0.75, "probability of the drop mask (else the importance map)", low=0.0, high=1.0
        ),
        "threshold": Option(
            0.9, "drop where attention >= threshold x its maximum", low=0.0, high=1.0
        ),
        "at": Option(
            "layer3.0,layer4.0,layer4.-1",
            "trunk blocks followed by ADL, comma-separated, on a timm CNN; the benchmark's "
            "vgg16, inception_v3 and resnet50 take its own positions",
        ),
    }
    search_space = {"drop_rate": uniform(0.25, 0.9), "threshold": uniform(0.5, 0.95)}

    def build(self, cfg: RunConfig, num_classes: int) -> nn.Module:
        if architecture(cfg.backbone):  # the benchmark's network, its ADL positions
            opts = cfg.options
            layer = functools.partial(ADL, opts["drop_rate"], opts["threshold"])
            return build_cam_net(cfg.backbone, num_classes, cfg.large_feature_map, layer)
        model = super().build(cfg, num_classes)
        model.adl = ADL(cfg.options["drop_rate"], cfg.options["threshold"])
        blocks = {
            id(b): b for b in (find_block(model.trunk, p) for p in cfg.options["at"].split(","))
        }
        for block in blocks.values():  # one layer per block, however often it is named
            block.register_forward_hook(lambda _module, _inputs, out: model.adl(out))
        return model
