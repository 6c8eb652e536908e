"""A timm CNN as a WSOL trunk: its last feature map, global average pooling and a
linear classifier, whose weights turn the feature map into class activation maps
(CAM, Zhou et al. CVPR 2016), as the WSOL evaluation benchmark builds its CNNs.

The benchmark's changes to the ImageNet architectures that this follows: the last
ResNet stage keeps the resolution (stride 1: a 14x14 map at 224), and VGG16 loses its
last max-pool and its fully connected layers. Its extra conv layer on VGG16 and its
reworked InceptionV3 are not reproduced: timm's modules are used as they are, so timm's
ImageNet weights load unchanged."""

from __future__ import annotations

import functools

import torch
from timm.models.resnet import ResNet
from timm.models.vgg import VGG
from timm.models.vision_transformer import VisionTransformer
from torch import nn

from wsolbench.core.errors import UserError
from wsolbench.models import backbones  # noqa: F401  (registers the micro ResNet with timm)
from wsolbench.models.trunk import ModelOutput, check_vit, minmax, timm_model

# The benchmark's pretrained feature layers by architecture (its main.py), by timm's
# class name; timm's Inception keeps torchvision's layer names.
FEATURE_PATTERNS = {
    "VGG": ("features.",),
    "InceptionV3": ("Mixed", "Conv2d_1", "Conv2d_2", "Conv2d_3", "Conv2d_4"),
}


def keep_resolution(net: ResNet, stages: tuple[str, ...] = ("layer4",)) -> None:
    """The ResNet stages that keep their input's resolution (stride 1 in block 0)."""
    for stage in stages:
        for module in getattr(net, stage)[0].modules():
            if isinstance(module, nn.Conv2d) and module.stride == (2, 2):
                module.stride = (1, 1)


def class_activation_maps(features: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Each class's classifier weights over the feature map: (B, classes, h, w), the
    channel mean as the benchmark takes it (no bias; scale-free after min-max)."""
    return torch.einsum("bchw,kc->bkhw", features, weight) / features.shape[1]


def _drop_vgg_top(net: VGG) -> None:
    if isinstance(net.features[-1], nn.MaxPool2d):
        net.features[-1] = nn.Identity()
    net.pre_logits = nn.Identity()  # fc6/fc7 as convs: unused by the feature map


def create_cnn(name: str) -> nn.Module:
    """timm's ``name`` without classifier or pooling, adapted as the benchmark does."""
    net = timm_model(name, num_classes=0, global_pool="")
    if isinstance(net, ResNet):
        keep_resolution(net)
    elif isinstance(net, VGG):
        _drop_vgg_top(net)
    return net


class WSOLCNN(nn.Module):
    """CAM's network on a timm CNN. Module names are ``trunk.`` + timm's, so timm's
    ImageNet weights load into the trunk (``trunk_prefix``)."""

    trunk_prefix = "trunk."

    def __init__(self, backbone: str, num_classes: int, classifier_init: str = "torch") -> None:
        super().__init__()
        self.trunk = create_cnn(backbone)
        self.fc = nn.Linear(self.trunk.num_features, num_classes)
        if classifier_init == "normal":  # the benchmark's wsol/util.py initialize_weights
            nn.init.normal_(self.fc.weight, 0.0, 0.01)
            nn.init.zeros_(self.fc.bias)

    def head_parameters(self) -> list[nn.Parameter]:
        return list(self.fc.parameters())

    def fast_parameters(self) -> list[nn.Parameter]:
        """The layers the WSOL benchmark trains at ``lr_classifier_ratio`` x the rate
        (its ``main.py`` ``_FEATURE_PARAM_LAYER_PATTERNS``): on a ResNet the names with
        ``layer4.`` or ``fc.``; on VGG and Inception every layer that is not one of the
        pretrained feature layers."""
        if isinstance(self.trunk, ResNet):
            return [p for n, p in self.named_parameters() if n.startswith(("trunk.layer4.", "fc."))]
        features = FEATURE_PATTERNS.get(type(self.trunk).__name__)
        if features is None:  # another timm CNN: the benchmark names no layers for it
            return list(self.fc.parameters())
        return [
            p
            for n, p in self.named_parameters()
            if not (n.startswith("trunk.") and any(k in n for k in features))
        ]

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) -> the last feature map (B, C, h, w)."""
        return self.trunk.forward_features(images)

    def class_maps(self, features: torch.Tensor) -> torch.Tensor:
        return class_activation_maps(features, self.fc.weight)

    def forward(self, images: torch.Tensor) -> ModelOutput:
        features = self.features(images)
        logits = self.fc(features.mean(dim=(2, 3)))
        return ModelOutput(logits=logits, maps=minmax(self.class_maps(features)))


def _is_cnn(net: nn.Module) -> bool:
    """Does ``forward_features`` give a (B, C, h, w) map with the model's C channels?
    Checked on the meta device: no memory, no arithmetic."""
    try:
        with torch.device("meta"):
            out = net.forward_features(torch.empty(1, 3, 224, 224))
    except Exception:  # any model that cannot take a 224x224 image is no trunk of ours
        return False
    return out.ndim == 4 and out.shape[1] == getattr(net, "num_features", -1)


@functools.lru_cache(maxsize=64)
def backbone_family(name: str) -> str:
    """``vit`` or ``cnn`` for a timm model name; a one-line error for any other name."""
    with torch.device("meta"):
        net = timm_model(name, num_classes=0)
    if isinstance(net, VisionTransformer):
        check_vit(net, name)
        return "vit"
    if not _is_cnn(net):
        raise UserError(
            f"backbone '{name}': neither a timm VisionTransformer with a class token nor a "
            "CNN whose features are a (B, C, h, w) map"
        )
    return "cnn"
