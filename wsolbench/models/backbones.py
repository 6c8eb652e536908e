"""Small ViT configurations registered with timm, so ``--backbone`` is always a timm name."""

from __future__ import annotations

from timm.models import register_model
from timm.models.vision_transformer import VisionTransformer


@register_model
def wsolbench_vit_micro_patch8_64(pretrained: bool = False, **kwargs) -> VisionTransformer:
    """0.7M-parameter ViT for the 64x64 synthetic data: patch 8 (8x8 grid), dim 96,
    depth 6, 3 heads. Trained from scratch; there are no pretrained weights."""
    if pretrained:
        raise RuntimeError("wsolbench_vit_micro_patch8_64 has no pretrained weights")
    for key in ("pretrained_cfg", "pretrained_cfg_overlay", "cache_dir"):
        kwargs.pop(key, None)  # timm's factory passes these to every model function
    args = dict(img_size=64, patch_size=8, embed_dim=96, depth=6, num_heads=3, mlp_ratio=4.0)
    return VisionTransformer(**{**args, **kwargs})
