"""SPG: Self-Produced Guidance. Side branches learn pixel-wise foreground/background
masks that the network produces itself from its class maps, which teaches the trunk
the object's extent.

Zhang, Wei, Kang, Yang, Huang. Self-produced Guidance for Weakly-supervised Object
Localization, ECCV 2018. As the WSOL evaluation benchmark builds it (Choe et al., CVPR
2020; clovaai/wsolevaluation ``wsol/method/spg.py`` and its networks):

- the class maps come from a 1x1 conv (``SPG_A4``) over the last features; the logits
  are their spatial mean; the localization map is the label's class map;
- two side outputs (``SPG_B_1a`` after the middle block, ``SPG_B_2a`` after the next,
  both through the shared ``SPG_B_shared``: 3x3 conv, ReLU, 1x1 conv to one channel)
  and one on the last features (``SPG_C``);
- each guidance map is upsampled bilinearly to the input's size and turned into a mask:
  1 where it is above its high threshold (above 0.7 x its maximum when fewer than 30
  pixels are), 0 where it is below its low threshold (this wins), ignored elsewhere;
- the loss is the class cross-entropy plus three binary cross-entropies over the pixels
  not ignored: B2 against the scaled class map of the label (thresholds ``1h``, ``1l``:
  0.7, 0.01), B1 against sigmoid(B2) (``2h``, ``2l``: 0.5, 0.05) and C against the mean
  of sigmoid(B1) and sigmoid(B2) (``3h``, ``3l``: 0.7, 0.1): the benchmark's
  ``spg_threshold_*`` defaults.

The trunks are the benchmark's: VGG16 blocks 1-3, then conv4 (``SPG_A_1``, with a 3x3
max-pool after it unless ``large_feature_map``), conv5 (``SPG_A_2``) and two new convs
(``SPG_A_3``); ResNet-50 with ``layer3`` split into ``SPG_A1`` (block 0) and ``SPG_A2``
(the rest; any timm ResNet in that layout); InceptionV3 with B1 after ``Mixed_5d`` and B2
on ``Mixed_6d``'s map, the class maps after the dropout-conv head. New layers are
initialised with Xavier.

Differs from the benchmark: the guidance maps are upsampled to the input's size, which
is its fixed 224 on every real dataset; the 30-pixel floor is kept at any size.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from wsolbench.core.config import Option, RunConfig
from wsolbench.core.registry import register_method
from wsolbench.core.space import uniform
from wsolbench.models import benchmark_nets as nets
from wsolbench.models.cam import CAMBase
from wsolbench.models.inception import add_inception_trunk, stage5, stage6
from wsolbench.models.method import Step
from wsolbench.models.trunk import ModelOutput, minmax
from wsolbench.models.vgg16 import conv_block, vgg16_features

IGNORE = 255.0
MIN_FOREGROUND = 30  # pixels; fewer above the high threshold: 0.7 x the maximum instead
FALLBACK = 0.7


def guidance_mask(attention: torch.Tensor, high: float, low: float) -> torch.Tensor:
    """(B, 1, H, W) -> 1 foreground, 0 background, ``IGNORE`` elsewhere."""
    mask = torch.full_like(attention, IGNORE)
    for i in range(len(attention)):
        fg = attention[i] > high
        if int(fg.sum()) < MIN_FOREGROUND:
            fg = attention[i] > attention[i].max() * FALLBACK
        mask[i][fg] = 1.0
    mask[attention < low] = 0.0
    return mask.detach()


def guidance_loss(logits: torch.Tensor, target: torch.Tensor, high: float, low: float):
    """BCE-with-logits of upsampled side ``logits`` against ``target``'s mask, over the
    pixels the mask does not ignore."""
    mask = guidance_mask(target, high, low).flatten()
    keep = mask < IGNORE
    up = upsample(logits, tuple(target.shape[-2:]))
    return F.binary_cross_entropy_with_logits(up.flatten()[keep], mask[keep])


def side(c_in: int, c_mid: int) -> nn.Sequential:
    """3x3 conv and ReLU, then a 1x1 conv to one channel."""
    return nn.Sequential(
        nn.Conv2d(c_in, c_mid, 3, padding=1), nn.ReLU(inplace=True), nn.Conv2d(c_mid, 1, 1)
    )


def entry(c_in: int, c_out: int) -> nn.Sequential:
    """A side branch's way in: one 3x3 conv and a ReLU."""
    return conv_block([(c_in, c_out)])


class SPGNet(nets.BenchmarkNet):
    head_names = (
        *("SPG_A_3", "SPG_A_4", "SPG_A3_1b", "SPG_A3_2b", "SPG_A4"),
        *("SPG_B_1a", "SPG_B_2a", "SPG_B_shared", "SPG_C"),
    )

    def __init__(self, backbone: str, num_classes: int, large: bool) -> None:
        super().__init__()
        self.large_feature_map = large
        arch = nets.architecture(backbone)
        if arch == "vgg16":
            self._vgg(num_classes)
        elif arch == "inception_v3":
            self._inception(num_classes, large)
        else:
            self._resnet(backbone, num_classes, large)
        nets.initialize(self, "xavier")

    def _vgg(self, num_classes: int) -> None:
        self.arch = "vgg16"
        self.features = vgg16_features("spg", self.large_feature_map)
        self.SPG_A_1 = conv_block([(256, 512), (512, 512), (512, 512)])
        self.SPG_A_2 = conv_block([(512, 512)] * 3)
        self.SPG_A_3 = conv_block([(512, 512)] * 2)
        self.SPG_A_4 = nn.Conv2d(512, num_classes, 1)
        self.SPG_B_1a, self.SPG_B_2a = entry(512, 512), entry(512, 512)
        self.SPG_B_shared, self.SPG_C = side(512, 512), side(512, 512)

    def _inception(self, num_classes: int, large: bool) -> None:
        self.arch = "inception_v3"
        add_inception_trunk(self, large)
        nets.add_inception_head(self, num_classes)
        self.SPG_B_1a, self.SPG_B_2a = entry(288, 512), entry(768, 512)
        self.SPG_B_shared, self.SPG_C = side(512, 512), side(1024, 512)

    def _resnet(self, backbone: str, num_classes: int, large: bool) -> None:
        self.arch = "resnet50"
        net = nets.resnet_trunk(nets.resnet_backbone(backbone, "spg"), large)
        nets.adopt(self, net, tuple(n for n in nets.RESNET_LAYERS if n != "layer3"))
        self.SPG_A1, self.SPG_A2 = nn.Sequential(net.layer3[0]), nn.Sequential(*net.layer3[1:])
        self.block_names = {"layer3.0": "SPG_A1.0"}
        self.block_names |= {f"layer3.{k}": f"SPG_A2.{k - 1}" for k in range(1, len(net.layer3))}
        c3 = next(f["num_chs"] for f in net.feature_info if f["module"] == "layer3")
        c4 = net.num_features
        self.SPG_A4 = nn.Conv2d(c4, num_classes, 1)
        self.SPG_B_1a, self.SPG_B_2a = entry(c3, c3), entry(c3, c3)
        self.SPG_B_shared, self.SPG_C = side(c3, c3), side(c4, 512)

    def branches(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """(class maps, B1, B2, C) side logits at the feature resolution."""
        shared = self.SPG_B_shared
        if self.arch == "vgg16":
            x = self.SPG_A_1(self.features(x))
            if not self.large_feature_map:
                x = F.max_pool2d(x, kernel_size=3, stride=2, padding=1)
            b1 = shared(self.SPG_B_1a(x))
            x = self.SPG_A_2(x)
            b2 = shared(self.SPG_B_2a(x))
            x = self.SPG_A_3(x)
            return self.SPG_A_4(x), b1, b2, self.SPG_C(x)
        if self.arch == "inception_v3":
            x = stage5(self, x)
            b1 = shared(self.SPG_B_1a(x))
            x, mid = stage6(self, x)
            b2 = shared(self.SPG_B_2a(mid))
            x, maps = nets.inception_head(self, x, 0.5)
            return maps, b1, b2, self.SPG_C(x)
        x = self.SPG_A1(self.layer2(self.layer1(nets.resnet_stem(self, x))))
        b1 = shared(self.SPG_B_1a(x))
        x = self.SPG_A2(x)
        b2 = shared(self.SPG_B_2a(x))
        x = self.layer4(x)
        return self.SPG_A4(x), b1, b2, self.SPG_C(x)

    def forward(self, images: torch.Tensor) -> ModelOutput:
        maps, b1, b2, c = self.branches(images)
        extras = {"class_maps": maps, "logits_b1": b1, "logits_b2": b2, "logits_c": c}
        return ModelOutput(logits=maps.mean(dim=(2, 3)), maps=minmax(maps), extras=extras)


def upsample(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


def spg_losses(
    out: ModelOutput, labels: torch.Tensor, size: tuple[int, int], thresholds: dict
) -> dict[str, torch.Tensor]:
    """The benchmark's four terms. ``out.maps`` is not used: the attention is the raw
    class map of the label, upsampled, then min-max scaled (without an epsilon)."""
    raw = out.extras["class_maps"].detach()
    # One channel, then upsampled: the same values as upsampling every class first.
    picked = upsample(raw[torch.arange(len(labels)), labels][:, None], size)
    attention = nets.scale_per_map(picked)
    b1, b2, c = (out.extras[k] for k in ("logits_b1", "logits_b2", "logits_c"))
    b2i = torch.sigmoid(upsample(b2, size))
    fused = (
        torch.sigmoid(upsample(b1.detach(), size)) + torch.sigmoid(upsample(b2.detach(), size))
    ) / 2
    t = thresholds
    return {
        "ce": F.cross_entropy(out.logits, labels),
        "b2_attention": guidance_loss(b2, attention, t["threshold_1h"], t["threshold_1l"]),
        "b1_b2": guidance_loss(b1, b2i, t["threshold_2h"], t["threshold_2l"]),
        "c_fused": guidance_loss(c, fused, t["threshold_3h"], t["threshold_3l"]),
    }


# The benchmark's spg_threshold_{1,2,3}{h,l}: each side output's guidance, its target
# and the defaults of its config.py.
THRESHOLDS = {
    f"threshold_{step}{end}": Option(
        default, f"{side}'s {part}: {target} {way} this", low=0.0, high=1.0
    )
    for step, side, target, high, low in (
        (1, "B2", "class attention", 0.7, 0.01),
        (2, "B1", "sigmoid(B2)", 0.5, 0.05),
        (3, "C", "fused B1/B2", 0.7, 0.1),
    )
    for end, part, way, default in (
        ("h", "foreground", "above", high),
        ("l", "background", "below", low),
    )
}


@register_method("spg")
class SPG(CAMBase):
    description = "SPG (ECCV 2018): side branches trained on self-produced fg/bg masks"
    paper = "Zhang et al., Self-produced Guidance, ECCV 2018"
    backbones = ("cnn",)
    options = THRESHOLDS
    search_space = {"threshold_1h": uniform(0.5, 0.9), "threshold_3h": uniform(0.5, 0.9)}

    def build(self, cfg: RunConfig, num_classes: int) -> nn.Module:
        return SPGNet(cfg.backbone, num_classes, cfg.large_feature_map)

    def train_step(
        self, model: nn.Module, batch: dict, step: Step
    ) -> tuple[torch.Tensor, dict[str, float]]:
        images, labels = batch["image"].to(step.device), batch["label"].to(step.device)
        out = model(images)
        parts = spg_losses(out, labels, tuple(images.shape[-2:]), step.cfg.options)
        total = sum(parts.values())
        return total, {k: float(v.detach()) for k, v in parts.items()}
