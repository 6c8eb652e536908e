"""Small ViT and ResNet configurations registered with timm, so ``--backbone`` is
always a timm name. timm has no weights for them; wsolbench ships its own
(``wsolbench pretrain``)."""

from __future__ import annotations

from timm.models import register_model
from timm.models.resnet import BasicBlock, ResNet
from timm.models.vision_transformer import VisionTransformer


def _model_kwargs(name: str, pretrained: bool, kwargs: dict) -> dict:
    """What a micro model's constructor takes of timm's call: timm holds no weights
    for it, and timm's factory passes its own keys to every model function."""
    if pretrained:
        raise RuntimeError(f"{name} has no pretrained weights")
    for key in ("pretrained_cfg", "pretrained_cfg_overlay", "cache_dir"):
        kwargs.pop(key, None)
    return kwargs


def _micro(name: str, pretrained: bool, img_size: int, patch_size: int, kwargs: dict):
    args = dict(img_size=img_size, patch_size=patch_size, embed_dim=96, depth=6, num_heads=3)
    return VisionTransformer(**{**args, **_model_kwargs(name, pretrained, kwargs)})


@register_model
def wsolbench_vit_micro_patch8_64(pretrained: bool = False, **kwargs) -> VisionTransformer:
    """0.7M-parameter ViT for the 64x64 synthetic data: patch 8 (8x8 grid), dim 96,
    depth 6, 3 heads."""
    return _micro("wsolbench_vit_micro_patch8_64", pretrained, 64, 8, kwargs)


@register_model
def wsolbench_vit_micro_patch16_224(pretrained: bool = False, **kwargs) -> VisionTransformer:
    """The same small ViT at 224x224 with patch 16 (DeiT's 14x14 grid), for quick
    runs on real-image datasets."""
    return _micro("wsolbench_vit_micro_patch16_224", pretrained, 224, 16, kwargs)


@register_model
def wsolbench_resnet_micro_64(pretrained: bool = False, **kwargs) -> ResNet:
    """1.2M-parameter ResNet for the 64x64 synthetic data: one basic block per stage,
    widths 32-256, output stride 8 (an 8x8 feature map, the micro ViT's grid)."""
    kwargs = _model_kwargs("wsolbench_resnet_micro_64", pretrained, kwargs)
    args = dict(block=BasicBlock, layers=(1, 1, 1, 1), channels=(32, 64, 128, 256))
    return ResNet(**{**args, "stem_width": 32, "output_stride": 8, **kwargs})
