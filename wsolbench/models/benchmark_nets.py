"""The WSOL benchmark's three networks (clovaai/wsolevaluation ``wsol/vgg.py``,
``wsol/inception.py``, ``wsol/resnet.py``) as CAM networks, for CAM, HaS, CutMix and
ADL; ACoL and SPG build theirs from the same parts (``methods/acol.py``,
``methods/spg.py``).

Module names are the benchmark's, so its checkpoints and torchvision's ImageNet
weights fit by name (``rename_pretrained`` does what its loaders do). New layers are
initialised as its ``initialize_weights`` does, before the weights are loaded:

- ``vgg16``: the VGG16 features (``models.vgg16``), ``conv6`` (3x3, 512 -> 1024) and a
  ReLU, global average pooling and ``fc``; the CAM is ``fc``'s class weights over the
  1024 channels, their mean.
- ``inception_v3``: the reworked trunk (``models.inception``), then dropout 0.5,
  ``SPG_A3_1b`` (3x3, 768 -> 1024, ReLU), dropout, ``SPG_A3_2b`` (3x3, 1024 -> 1024,
  ReLU), dropout and ``SPG_A4`` (1x1 to the classes); the logits are its spatial mean,
  the CAM its class channel. ADL's network has no dropout.
- ``resnet50``: torchvision's ResNet-50 (timm's module, the same names) with
  ``layer4`` at stride 1 (``layer3`` too with ``large_feature_map``), ``fc`` and the
  CAM as on VGG.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from timm.models.resnet import ResNet
from torch import nn

from wsolbench.core.errors import UserError
from wsolbench.models.cnn import class_activation_maps, keep_resolution
from wsolbench.models.inception import add_inception_trunk, stage5, stage6
from wsolbench.models.trunk import ModelOutput, minmax, timm_model
from wsolbench.models.vgg16 import align_vgg_features, conv_block, vgg16_features

ARCHITECTURES = ("vgg16", "inception_v3", "resnet50")
RESNET_LAYERS = ("conv1", "bn1", "act1", "maxpool", "layer1", "layer2", "layer3", "layer4")
Factory = Callable[[], nn.Module] | None

# The benchmark's pretrained layers per architecture (main.py
# _FEATURE_PARAM_LAYER_PATTERNS): substrings of parameter names. On ResNet-50 they name
# the layers trained at lr_classifier_ratio x the rate; on the others, the layers that
# are not.
FEATURE_PATTERNS = {
    "vgg16": ("features.",),
    "resnet50": ("layer4.", "fc."),
    "inception_v3": ("Mixed", "Conv2d_1", "Conv2d_2", "Conv2d_3", "Conv2d_4"),
}

# torchvision's ImageNet weights under timm's tags: what the benchmark's model_urls load.
HUB_TAGS = {a: f"{a}.tv_in1k" for a in ARCHITECTURES}

# Its ResNet-50's ADL positions (resnet.py _ADL_POSITION): after these blocks of layer3
# and layer4.
RESNET_ADL = {"layer3": (0,), "layer4": (0, 2)}


def architecture(backbone: str) -> str | None:
    """``vgg16`` for ``vgg16`` or ``vgg16.tv_in1k``, ...; None for any other backbone."""
    arch = backbone.split(".")[0]
    return arch if arch in ARCHITECTURES else None


def initialize(module: nn.Module, mode: str) -> None:
    """The benchmark's ``initialize_weights``: convs He (fan out) or Xavier uniform with
    zero bias, batch norms 1 and 0, linear layers N(0, 0.01) with zero bias."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            if mode == "he":
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            else:
                nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, 0.01)
            nn.init.zeros_(m.bias)


class BenchmarkNet(nn.Module):
    """What the benchmark's networks share: which layers train faster, and how the
    ImageNet weights are renamed to fit."""

    arch: str
    takes_imagenet_classifier = False  # the benchmark keeps it on ResNet-50's CAM alone

    head_names: tuple[str, ...] = ()

    def head_parameters(self) -> list[nn.Parameter]:
        """The layers the benchmark adds to the ImageNet network (its new head)."""
        heads = [getattr(self, n) for n in self.head_names if hasattr(self, n)]
        return [p for head in heads for p in head.parameters()]

    def fast_parameters(self) -> list[nn.Parameter]:
        """The layers trained at ``lr_classifier_ratio`` x the rate, by the benchmark's
        name patterns (substrings, as its ``string_contains_any``)."""
        patterns = FEATURE_PATTERNS[self.arch]
        fast_if_match = self.arch == "resnet50"
        return [
            p for n, p in self.named_parameters() if any(k in n for k in patterns) == fast_if_match
        ]

    def rename_pretrained(self, given: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """ImageNet weights (torchvision's names) under this network's names."""
        if self.arch == "vgg16":
            return align_vgg_features(given, self)
        if self.arch == "resnet50":
            return resnet_names(given, self)
        return given


def resnet_trunk(backbone: str, large_feature_map: bool) -> ResNet:
    """timm's ResNet with the benchmark's strides: ``layer4`` at 1, ``layer3`` too with
    ``large_feature_map``; its blocks are torchvision's (stride on the 3x3 conv)."""
    net = timm_model(backbone, num_classes=0, global_pool="")
    keep_resolution(net, ("layer3", "layer4") if large_feature_map else ("layer4",))
    return net


def adopt(module: nn.Module, net: nn.Module, names: tuple[str, ...] = RESNET_LAYERS) -> None:
    """``net``'s layers ``names`` as ``module``'s own, under the same names (top level,
    as the benchmark's networks hold them)."""
    for name in names:
        setattr(module, name, getattr(net, name))


def resnet_backbone(backbone: str, method: str) -> str:
    """``backbone`` if it is a timm ResNet (the layout ``method`` is built on), else a
    one-line error."""
    with torch.device("meta"):
        net = timm_model(backbone, num_classes=0)
    if not isinstance(net, ResNet):
        raise UserError(
            f"backbone '{backbone}': {method} is built on the benchmark's vgg16, "
            "inception_v3 or a timm ResNet (resnet50)"
        )
    return backbone


def resnet_stem(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return net.maxpool(net.act1(net.bn1(net.conv1(x))))


def resnet_features(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The stem and ``layer1`` .. ``layer4`` of a network that ``adopt``-ed them."""
    return net.layer4(net.layer3(net.layer2(net.layer1(resnet_stem(net, x)))))


def scale_per_map(maps: torch.Tensor) -> torch.Tensor:
    """(B, C, h, w) min-max scaled per image and channel, without an epsilon (the
    benchmark's ``normalize_tensor``: a constant map gives NaN, as there)."""
    flat = maps.flatten(2)
    lo, hi = flat.amin(-1, keepdim=True), flat.amax(-1, keepdim=True)
    return ((flat - lo) / (hi - lo)).view_as(maps)


def add_inception_head(net: nn.Module, num_classes: int) -> None:
    """InceptionV3's head in the benchmark's CAM and SPG networks: ``SPG_A3_1b`` (3x3,
    768 -> 1024, ReLU), ``SPG_A3_2b`` (3x3, 1024 -> 1024, ReLU), ``SPG_A4`` (1x1 to the
    classes)."""
    net.SPG_A3_1b = conv_block([(768, 1024)])
    net.SPG_A3_2b = conv_block([(1024, 1024)])
    net.SPG_A4 = nn.Conv2d(1024, num_classes, 1)


def inception_head(net: nn.Module, x: torch.Tensor, drop: float) -> tuple[torch.Tensor, ...]:
    """(the head's last features, the class maps) from ``Mixed_6e``'s map, dropout
    ``drop`` before each of its three convs."""
    x = F.dropout(x, drop, net.training)
    x = F.dropout(net.SPG_A3_1b(x), drop, net.training)
    x = F.dropout(net.SPG_A3_2b(x), drop, net.training)
    return x, net.SPG_A4(x)


def resnet_names(given: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """torchvision's ``layerK.B.`` names onto a network that moved blocks: ADL layers
    inserted after some blocks shift the later ones (the benchmark's ``align_layer``);
    SPG's ``layer3`` is ``SPG_A1`` (block 0) and ``SPG_A2`` (the rest)."""
    moved = getattr(model, "block_names", {})
    out = {}
    for key, value in given.items():
        parts = key.split(".")
        where = moved.get(".".join(parts[:2])) if len(parts) > 2 else None
        out[".".join([where, *parts[2:]]) if where else key] = value
    return out


def with_adl(
    stage: nn.Sequential, after: tuple[int, ...], adl: Callable[[], nn.Module]
) -> tuple[nn.Sequential, dict[int, int]]:
    """``stage``'s blocks with an ADL layer after each block in ``after``; the blocks'
    new indices."""
    layers, index = [], {}
    for i, block in enumerate(stage):
        index[i] = len(layers)
        layers.append(block)
        if i in after:
            layers.append(adl())
    return nn.Sequential(*layers), index


class CAMNet(BenchmarkNet):
    """A CAM network: ``cam_features`` is the map the CAM is taken over."""

    def cam_features(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, images: torch.Tensor) -> ModelOutput:
        maps = self.cam_features(images)
        logits = self.fc(maps.mean(dim=(2, 3)))
        return ModelOutput(logits=logits, maps=minmax(class_activation_maps(maps, self.fc.weight)))


class VGGCAM(CAMNet):
    arch = "vgg16"
    head_names = ("conv6", "fc")

    def __init__(self, num_classes: int, large_feature_map: bool = False, adl: Factory = None):
        super().__init__()
        self.features = vgg16_features("adl" if adl else "cam", large_feature_map, adl)
        self.conv6 = nn.Conv2d(512, 1024, kernel_size=3, padding=1)
        self.relu = nn.ReLU(inplace=False)
        self.fc = nn.Linear(1024, num_classes)
        initialize(self, "he")

    def cam_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.conv6(self.features(x)))


class ResNetCAM(CAMNet):
    arch = "resnet50"
    takes_imagenet_classifier = True  # resnet.py: fc kept on ILSVRC for cam and adl
    head_names = ("fc",)

    def __init__(
        self,
        num_classes: int,
        large_feature_map: bool = False,
        adl: Factory = None,
        backbone: str = "resnet50",
    ) -> None:
        super().__init__()
        net = resnet_trunk(backbone, large_feature_map)
        adopt(self, net)
        self.block_names: dict[str, str] = {}
        for stage, after in RESNET_ADL.items() if adl else ():
            layers, index = with_adl(getattr(self, stage), after, adl)
            setattr(self, stage, layers)
            self.block_names.update({f"{stage}.{i}": f"{stage}.{j}" for i, j in index.items()})
        self.fc = nn.Linear(net.num_features, num_classes)
        initialize(self, "xavier")

    def cam_features(self, x: torch.Tensor) -> torch.Tensor:
        return resnet_features(self, x)


class InceptionCAM(CAMNet):
    arch = "inception_v3"
    head_names = ("SPG_A3_1b", "SPG_A3_2b", "SPG_A4")

    def __init__(self, num_classes: int, large_feature_map: bool = False, adl: Factory = None):
        super().__init__()
        self.adl = adl is not None
        add_inception_trunk(self, large_feature_map)
        add_inception_head(self, num_classes)
        initialize(self, "xavier")
        if adl:  # after Mixed_5d (before its pool), Mixed_6e and SPG_A3_2b
            for module in (self.Mixed_5d, self.Mixed_6e, self.SPG_A3_2b):
                module.adl_layer = adl()  # a child, so train() and eval() reach it
                module.register_forward_hook(lambda m, _inputs, out: m.adl_layer(out))

    def cam_features(self, x: torch.Tensor) -> torch.Tensor:
        """SPG_A4's class maps; ADL's network has no dropout."""
        return inception_head(self, stage6(self, stage5(self, x))[0], 0.0 if self.adl else 0.5)[1]

    def forward(self, images: torch.Tensor) -> ModelOutput:
        maps = self.cam_features(images)
        return ModelOutput(logits=maps.mean(dim=(2, 3)), maps=minmax(maps))


def build_cam_net(
    backbone: str, num_classes: int, large_feature_map: bool, adl: Factory = None
) -> CAMNet:
    """The benchmark's CAM network for ``backbone`` (one of ``ARCHITECTURES``, tag or not)."""
    arch = architecture(backbone)
    if arch == "resnet50":
        return ResNetCAM(num_classes, large_feature_map, adl, backbone)
    return {"vgg16": VGGCAM, "inception_v3": InceptionCAM}[arch](
        num_classes, large_feature_map, adl
    )
