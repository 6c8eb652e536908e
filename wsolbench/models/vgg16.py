"""The WSOL benchmark's VGG16 feature layers (clovaai/wsolevaluation ``wsol/vgg.py``),
one layer plan per network kind and feature-map size.

torchvision's VGG16 convs (3x3, padding 1, each followed by a ReLU) with the benchmark's
changes: the last max-pool is gone, so the map is 14x14 at 224; ``large_feature_map``
drops pool 4 as well (28x28). ACoL's pools are 3x3 ones (stride 2, or stride 1 where
the map keeps its size); SPG keeps blocks 1-3 here and builds conv4 and conv5 itself;
ADL layers sit after pool 3, conv4_3 and conv5_3. Layer indices follow the plan, as
the benchmark's ``nn.Sequential`` numbers them, so its checkpoints' names fit."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

_BLOCKS_1_3 = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M"]
_CONV = [512, 512, 512]

# "M": 2x2 max-pool, stride 2; "M1": 3x3, stride 2, padding 1; "M2": 3x3, stride 1,
# padding 1; "A": an ADL layer; a number: a 3x3 conv to that many channels and a ReLU.
PLANS: dict[tuple[str, bool], list] = {
    ("cam", False): [*_BLOCKS_1_3, *_CONV, "M", *_CONV],
    ("cam", True): [*_BLOCKS_1_3, *_CONV, *_CONV],
    ("acol", False): [
        *[("M1" if v == "M" else v) for v in _BLOCKS_1_3],
        *_CONV,
        "M1",
        *_CONV,
        "M2",
    ],
    ("acol", True): [*[("M1" if v == "M" else v) for v in _BLOCKS_1_3], *_CONV, "M2", *_CONV, "M2"],
    ("spg", False): list(_BLOCKS_1_3),
    ("spg", True): list(_BLOCKS_1_3),
    ("adl", False): [*_BLOCKS_1_3, "A", *_CONV, "A", "M", *_CONV, "A"],
    ("adl", True): [*_BLOCKS_1_3, "A", *_CONV, "A", *_CONV, "A"],
}

_POOLS = {
    "M": dict(kernel_size=2, stride=2),
    "M1": dict(kernel_size=3, stride=2, padding=1),
    "M2": dict(kernel_size=3, stride=1, padding=1),
}


def vgg16_features(
    kind: str, large: bool, adl: Callable[[], nn.Module] | None = None
) -> nn.Sequential:
    """The feature layers of plan (``kind``, ``large``); ``adl()`` builds each ADL layer."""
    layers: list[nn.Module] = []
    channels = 3
    for v in PLANS[(kind, large)]:
        if v == "A":
            layers.append(adl())
        elif isinstance(v, str):
            layers.append(nn.MaxPool2d(**_POOLS[v]))
        else:
            layers += [nn.Conv2d(channels, v, kernel_size=3, padding=1), nn.ReLU(inplace=True)]
            channels = v
    return nn.Sequential(*layers)


def conv_block(channels: list[tuple[int, int]]) -> nn.Sequential:
    """3x3 convs (padding 1), each followed by a ReLU: SPG's conv4 and conv5 blocks."""
    layers: list[nn.Module] = []
    for c_in, c_out in channels:
        layers += [nn.Conv2d(c_in, c_out, kernel_size=3, padding=1), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers)


def align_vgg_features(given: dict, model: nn.Module) -> dict:
    """torchvision's ``features.N`` convs onto the model's, in order (the benchmark's
    ``adjust_pretrained_model``): a plan with fewer pools or with ADL layers numbers
    its convs differently. SPG's conv4 and conv5 go to its ``SPG_A_1`` / ``SPG_A_2``."""
    ours = sorted(
        {int(k.split(".")[1]) for k, _ in model.named_parameters() if k.startswith("features.")}
    )
    theirs = sorted({int(k.split(".")[1]) for k in given if k.startswith("features.")})
    out = {k: v for k, v in given.items() if not k.startswith("features.")}
    spg_rest = [f"SPG_A_{1 + i // 3}.{2 * (i % 3)}" for i in range(6)]  # conv4_1 .. conv5_3
    targets = [f"features.{i}" for i in ours] + (spg_rest if hasattr(model, "SPG_A_1") else [])
    for src, dst in zip(theirs, targets, strict=False):
        for suffix in (".weight", ".bias"):
            if f"features.{src}{suffix}" in given:
                out[dst + suffix] = given[f"features.{src}{suffix}"]
    return out
