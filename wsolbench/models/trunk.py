"""A timm VisionTransformer taken apart for WSOL: token embedding, blocks and
TS-CAM's conv head. Module names are timm's/DeiT's, so DeiT checkpoints load as-is."""

from __future__ import annotations

from dataclasses import dataclass, field

import timm
import torch
from timm.models.vision_transformer import VisionTransformer
from torch import nn

from wsolbench.core.errors import UserError
from wsolbench.models import backbones  # noqa: F401  (registers the small configurations with timm)


@dataclass
class ModelOutput:
    """What every method's network returns.

    ``maps`` is (B, h, w) for class-agnostic methods and (B, classes, h, w) for
    class-aware ones, in [0, 1] on the patch grid.
    """

    logits: torch.Tensor
    maps: torch.Tensor
    extras: dict[str, torch.Tensor] = field(default_factory=dict)


def minmax(maps: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Scale each map (over its last two axes) to [0, 1]."""
    lo = maps.amin(dim=(-2, -1), keepdim=True)
    hi = maps.amax(dim=(-2, -1), keepdim=True)
    return (maps - lo) / (hi - lo + eps)


def timm_model(name: str, **kwargs) -> nn.Module:
    """``timm.create_model(name, pretrained=False, **kwargs)``; an unknown name or an
    argument the model does not take is a one-line error naming the backbone."""
    try:
        return timm.create_model(name, pretrained=False, **kwargs)
    except (RuntimeError, TypeError) as e:
        raise UserError(f"backbone '{name}': {e}") from None


def check_vit(vit: nn.Module, name: str) -> VisionTransformer:
    """``vit`` if it is a ViT this trunk can take apart; else a one-line error."""
    if not isinstance(vit, VisionTransformer) or not vit.has_class_token:
        raise UserError(f"backbone '{name}' must be a timm VisionTransformer with a class token")
    if vit.no_embed_class or vit.num_reg_tokens or vit.dynamic_img_size:
        raise UserError(f"backbone '{name}': register tokens and dynamic sizes are not supported")
    return vit


def create_vit(name: str, drop_path: float) -> VisionTransformer:
    return check_vit(timm_model(name, num_classes=0, drop_path_rate=drop_path), name)


class WSOLViT(nn.Module):
    """Patch embedding, class token, blocks, final norm and a conv 3x3 head."""

    def __init__(self, backbone: str, num_classes: int, drop_path: float = 0.1) -> None:
        super().__init__()
        vit = create_vit(backbone, drop_path)
        self.patch_embed = vit.patch_embed
        self.cls_token = vit.cls_token
        self.pos_embed = vit.pos_embed
        self.pos_drop = vit.pos_drop
        self.norm_pre = vit.norm_pre
        self.blocks = vit.blocks
        self.norm = vit.norm
        self.grid = tuple(vit.patch_embed.grid_size)
        self.embed_dim = vit.embed_dim
        self.image_size = tuple(vit.patch_embed.img_size)
        # TS-CAM's head: class maps from patch tokens, then global average pooling.
        self.head = nn.Conv2d(vit.embed_dim, num_classes, kernel_size=3, padding=1)
        nn.init.trunc_normal_(self.head.weight, std=0.02)
        nn.init.zeros_(self.head.bias)

    @property
    def depth(self) -> int:
        return len(self.blocks)

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) -> (B, 1 + N, C): class token then patch tokens, with positions."""
        x = self.patch_embed(images)
        cls = self.cls_token.expand(x.shape[0], -1, -1)
        x = torch.cat([cls, x], dim=1) + self.pos_embed
        return self.norm_pre(self.pos_drop(x))

    def class_maps(self, patch_tokens: torch.Tensor) -> torch.Tensor:
        """Final-norm patch tokens (B, N, C) -> class maps (B, classes, h, w)."""
        b, n, c = patch_tokens.shape
        grid = patch_tokens.transpose(1, 2).reshape(b, c, *self.grid)
        return self.head(grid)

    def no_weight_decay(self) -> set[str]:
        return {"cls_token", "pos_embed"}


class ViTCAM(WSOLViT):
    """CAM on a ViT: TS-CAM's conv head over the final patch tokens, no attention term."""

    def forward(self, images: torch.Tensor) -> ModelOutput:
        x = self.embed(images)
        for block in self.blocks:
            x = block(x)
        class_maps = self.class_maps(self.norm(x)[:, 1:])
        return ModelOutput(logits=class_maps.mean(dim=(2, 3)), maps=minmax(class_maps))
