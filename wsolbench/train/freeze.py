"""Freeze presets of the SAT paper's Table 8, and the measured frozen fraction.

"Transformer blocks" are all blocks but the last three (the spatial-aware ones in SAT).
"""

from __future__ import annotations

import re

from torch import nn

from wsolbench.core.errors import UserError

# Each preset: (one-line description, regexes over parameter names; the blocks
# before the last three are written <plain>, the last three <last>).
PRESETS: dict[str, tuple[str, list[str]]] = {
    "a": ("nothing frozen (full fine-tuning)", []),
    "b": ("attention layers of the transformer blocks", [r"blocks\.<plain>\.attn\."]),
    "c": ("MLP layers of the transformer blocks", [r"blocks\.<plain>\.mlp\."]),
    "d": ("all of the transformer blocks", [r"blocks\.<plain>\."]),
    "e": (
        "patch projection, position embedding, transformer blocks, MLPs of the last 3 blocks",
        [r"patch_embed\.", r"pos_embed$", r"blocks\.<plain>\.", r"blocks\.<last>\.mlp\."],
    ),
    "e_proj": (
        "preset e plus the attention output projections of the last 3 blocks",
        [
            r"patch_embed\.",
            r"pos_embed$",
            r"blocks\.<plain>\.",
            r"blocks\.<last>\.(mlp|attn\.proj)\.",
        ],
    ),
}


def _alternatives(indices: range) -> str:
    return "(" + "|".join(str(i) for i in indices) + ")"


def freezes_blocks(preset: str) -> bool:
    """Does the preset freeze parts of transformer blocks (all but ``a`` do)?"""
    return bool(PRESETS[preset][1])


def frozen_names(model: nn.Module, preset: str, depth: int) -> list[str]:
    if preset not in PRESETS:
        raise UserError(f"unknown freeze preset '{preset}' (known: {', '.join(PRESETS)})")
    if freezes_blocks(preset) and depth < 4:
        raise UserError(
            f"freeze: preset '{preset}' needs transformer blocks (4 or more) and the model "
            f"has {depth}; only preset 'a' applies to a CNN"
        )
    plain, last = _alternatives(range(depth - 3)), _alternatives(range(depth - 3, depth))
    patterns = [
        re.compile(p.replace("<plain>", plain).replace("<last>", last)) for p in PRESETS[preset][1]
    ]
    return [n for n, _ in model.named_parameters() if any(p.match(n) for p in patterns)]


def transformer_depth(model: nn.Module) -> int:
    """How many transformer blocks the model says it has (0 for a CNN)."""
    return int(getattr(model, "depth", 0))


def apply_freeze(model: nn.Module, preset: str) -> float:
    """Freeze the preset's parameters; return the frozen percentage of all parameters."""
    names = set(frozen_names(model, preset, transformer_depth(model)))
    total = frozen = 0
    for name, p in model.named_parameters():
        p.requires_grad_(name not in names)
        total += p.numel()
        frozen += p.numel() if name in names else 0
    return 100.0 * frozen / total
