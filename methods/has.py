"""HaS: Hide-and-Seek. Random grid cells of each training image are hidden, so the
classifier cannot rest on the most discriminative part alone.

Singh, Lee. Hide-and-Seek: Forcing a Network to be Meticulous for Weakly-supervised
Object and Action Localization, ICCV 2017. As the WSOL evaluation benchmark trains it
(Choe et al., CVPR 2020): CAM's network; each training image is cut into square cells
of ``grid_size`` pixels (the last row and column may be smaller), each cell is hidden
independently with probability ``drop_rate`` by setting it to 0 (the dataset mean,
after normalization); nothing is hidden at test time. The defaults are the
benchmark's (``has_grid_size`` 4, ``has_drop_rate`` 0.5).

Differs from the benchmark: cells are drawn by torch's generator in one call per batch
(the benchmark draws with Python's ``random`` per cell); images need not be square.
"""

from __future__ import annotations

import torch
from torch import nn

from wsolbench.core.config import Option
from wsolbench.core.registry import register_method
from wsolbench.core.space import uniform
from wsolbench.models.cam import CAMBase
from wsolbench.models.method import Step


def hide_patches(
    images: torch.Tensor, grid_size: int, drop_rate: float, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Images with hidden cells set to 0, and the hidden-cell mask (B, rows, cols)."""
    b, _, h, w = images.shape
    rows, cols = -(-h // grid_size), -(-w // grid_size)
    hidden = (torch.rand(b, rows, cols, generator=generator) < drop_rate).to(images.device)
    pixels = hidden.repeat_interleave(grid_size, 1).repeat_interleave(grid_size, 2)[:, :h, :w]
    return images.masked_fill(pixels[:, None], 0.0), hidden


@register_method("has")
class HaS(CAMBase):
    description = "Hide-and-Seek (ICCV 2017): CAM trained on images with random cells hidden"
    paper = "Singh and Lee, Hide-and-Seek, ICCV 2017"
    options = {
        "grid_size": Option(4, "side of a hidden cell, in pixels", low=1),
        "drop_rate": Option(0.5, "probability that a cell is hidden", low=0.0, high=1.0),
    }
    search_space = {"drop_rate": uniform(0.25, 0.75)}

    def train_step(
        self, model: nn.Module, batch: dict, step: Step
    ) -> tuple[torch.Tensor, dict[str, float]]:
        opts = step.cfg.options
        images, _ = hide_patches(batch["image"], opts["grid_size"], opts["drop_rate"])
        out = model(images.to(step.device))
        return self.loss(out, batch["label"].to(step.device), step.cfg, step.spatial_weight)
