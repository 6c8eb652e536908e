"""Attention of a timm ViT block, with one token's attention row exposed and an
optional gate on the keys.

SAT multiplies the post-softmax attention by a per-key gate ``m`` before
``attn @ v``. Because ``(softmax(qk^T) * m) @ v == softmax(qk^T) @ (m^T * v)``,
the fused kernel (``scaled_dot_product_attention``) can run on a rescaled ``v``;
``fused=False`` keeps the step-by-step form (explicit softmax, multiply, matmul)
of the authors' code as the reference.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def row_logits(attn: nn.Module, x: torch.Tensor, index: int) -> tuple[torch.Tensor, tuple]:
    """Pre-softmax logits of token ``index`` attending to every token: (B, heads, N).

    Also returns ``(q, k, v)`` so the caller can finish the attention without
    projecting twice.
    """
    b, n, _ = x.shape
    qkv = attn.qkv(x).reshape(b, n, 3, attn.num_heads, attn.head_dim).permute(2, 0, 3, 1, 4)
    q, k, v = qkv.unbind(0)
    q, k = attn.q_norm(q), attn.k_norm(k)
    logits = (q[:, :, index] * attn.scale).unsqueeze(2) @ k.transpose(-2, -1)
    return logits.squeeze(2), (q, k, v)


def attend(
    attn: nn.Module,
    x: torch.Tensor,
    qkv: tuple,
    key_gate: torch.Tensor | None = None,
    fused: bool = True,
) -> torch.Tensor:
    """Finish timm's Attention.forward, with keys optionally gated by ``key_gate`` (B, N)."""
    q, k, v = qkv
    b, n, _ = x.shape
    drop = attn.attn_drop.p if attn.training else 0.0
    if fused:
        if key_gate is not None:
            v = v * key_gate[:, None, :, None]
        out = F.scaled_dot_product_attention(q, k, v, dropout_p=drop)
    else:
        a = ((q * attn.scale) @ k.transpose(-2, -1)).softmax(dim=-1)
        a = attn.attn_drop(a)
        if key_gate is not None:
            a = a * key_gate[:, None, None, :]
        out = a @ v
    out = out.transpose(1, 2).reshape(b, n, -1)
    out = attn.norm(out)
    if getattr(attn, "gate", None) is not None:
        out = out * attn.gate(x).sigmoid()
    return attn.proj_drop(attn.proj(out))


def block_forward(
    block: nn.Module,
    x: torch.Tensor,
    row_index: int | None = None,
    gate_keys: bool = False,
    fused: bool = True,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """One timm ViT block. Returns the new tokens and the head-wise pre-softmax
    logits of token ``row_index`` (B, heads, N), or None when no row is asked for.

    With ``gate_keys`` the keys are gated by ``sigmoid(mean over heads of that row)``:
    SAT's spatial-query attention.
    """
    h = block.norm1(x)
    if row_index is None:
        attn_out, logits = block.attn(h), None
    else:
        logits, qkv = row_logits(block.attn, h, row_index)
        gate = torch.sigmoid(logits.mean(dim=1)) if gate_keys else None
        attn_out = attend(block.attn, h, qkv, gate, fused)
    x = x + block.drop_path1(block.ls1(attn_out))
    x = x + block.drop_path2(block.ls2(block.mlp(block.norm2(x))))
    return x, logits
