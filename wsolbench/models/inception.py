"""The WSOL benchmark's reworked InceptionV3 trunk (clovaai/wsolevaluation
``wsol/inception.py``): torchvision's layers and names from ``Conv2d_1a_3x3`` to
``Mixed_6e``, with the benchmark's changes so that the map is 14x14 at 224:
``Conv2d_1a_3x3`` and ``Conv2d_2b_3x3`` pad by 1, both stem max-pools pad by 1 and round
up, a 3x3 max-pool (stride 2, rounding up) follows ``Mixed_5d`` unless
``large_feature_map`` (28x28), and ``Mixed_6a`` keeps the resolution (stride 1, padding 1,
its pool too). ``Mixed_7*``, ``AuxLogits`` and ``fc`` are not built. Every weight has
torchvision's shape, so its ImageNet weights load by name."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.inception import BasicConv2d, InceptionA, InceptionC


class InceptionB(nn.Module):
    """torchvision's ``InceptionB`` with stride 1 and padding 1 in its strided convs and
    pool: the same weights, the input's resolution kept."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.branch3x3 = BasicConv2d(in_channels, 384, kernel_size=3, stride=1, padding=1)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, stride=1, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dbl = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        pool = F.max_pool2d(x, kernel_size=3, stride=1, padding=1)
        return torch.cat([self.branch3x3(x), dbl, pool], 1)


def add_inception_trunk(net: nn.Module, large_feature_map: bool) -> None:
    """Give ``net`` the stem and ``Mixed_5b`` .. ``Mixed_6e`` under torchvision's names
    (top level, as the benchmark's networks hold them)."""
    net.large_feature_map = large_feature_map
    net.Conv2d_1a_3x3 = BasicConv2d(3, 32, kernel_size=3, stride=2, padding=1)
    net.Conv2d_2a_3x3 = BasicConv2d(32, 32, kernel_size=3)
    net.Conv2d_2b_3x3 = BasicConv2d(32, 64, kernel_size=3, padding=1)
    net.Conv2d_3b_1x1 = BasicConv2d(64, 80, kernel_size=1)
    net.Conv2d_4a_3x3 = BasicConv2d(80, 192, kernel_size=3)
    net.Mixed_5b = InceptionA(192, pool_features=32)
    net.Mixed_5c = InceptionA(256, pool_features=64)
    net.Mixed_5d = InceptionA(288, pool_features=64)
    net.Mixed_6a = InceptionB(288)
    net.Mixed_6b = InceptionC(768, channels_7x7=128)
    net.Mixed_6c = InceptionC(768, channels_7x7=160)
    net.Mixed_6d = InceptionC(768, channels_7x7=160)
    net.Mixed_6e = InceptionC(768, channels_7x7=192)


def stage5(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The 288-channel map after ``Mixed_5d`` and, unless ``large_feature_map``, its pool."""
    x = net.Conv2d_2b_3x3(net.Conv2d_2a_3x3(net.Conv2d_1a_3x3(x)))
    x = F.max_pool2d(x, kernel_size=3, stride=2, padding=1, ceil_mode=True)
    x = net.Conv2d_4a_3x3(net.Conv2d_3b_1x1(x))
    x = F.max_pool2d(x, kernel_size=3, stride=2, padding=1, ceil_mode=True)
    x = net.Mixed_5d(net.Mixed_5c(net.Mixed_5b(x)))
    if not net.large_feature_map:
        x = F.max_pool2d(x, kernel_size=3, stride=2, ceil_mode=True)
    return x


def stage6(net: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(``Mixed_6e``'s 768-channel map, ``Mixed_6d``'s, which SPG reads)."""
    mid = net.Mixed_6d(net.Mixed_6c(net.Mixed_6b(net.Mixed_6a(x))))
    return net.Mixed_6e(mid), mid
