"""CutMix: a box of one training image is pasted into another, and the label is mixed
by the pasted area.

Yun, Han, Oh, Chun, Choe, Yoo. CutMix: Regularization Strategy to Train Strong
Classifiers with Localizable Features, ICCV 2019. As the WSOL evaluation benchmark
trains it (Choe et al., CVPR 2020): CAM's network; with probability ``prob`` a batch
is mixed with a shuffled copy of itself: lam ~ Beta(beta, beta), a box of sides
sqrt(1 - lam) times the image's centred at a uniform pixel (clipped to the image) is
pasted, and the loss is w * CE(label) + (1 - w) * CE(partner's label) with w one minus
the box's area fraction, after clipping. The defaults are the benchmark's
(``cutmix_beta`` 1, ``cutmix_prob`` 1).

Differs from the benchmark: the draws come from torch's generator (the benchmark uses
NumPy's); box sides are truncated to whole pixels per axis of non-square images too.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from wsolbench.core.config import Option
from wsolbench.core.registry import register_method
from wsolbench.core.space import uniform
from wsolbench.models.cam import CAMBase
from wsolbench.models.method import Step


def cut_box(h: int, w: int, lam: float, generator: torch.Generator | None = None) -> tuple:
    """(y0, y1, x0, x1): sides sqrt(1 - lam) of the image's, centred at a uniform
    pixel, clipped to the image."""
    ratio = math.sqrt(1.0 - lam)
    ch, cw = int(h * ratio), int(w * ratio)
    cy, cx = (int(torch.randint(n, (), generator=generator)) for n in (h, w))
    return (
        min(max(cy - ch // 2, 0), h),
        min(max(cy + ch // 2, 0), h),
        min(max(cx - cw // 2, 0), w),
        min(max(cx + cw // 2, 0), w),
    )


def cutmix(
    images: torch.Tensor, box: tuple[int, int, int, int], partner: torch.Tensor
) -> tuple[torch.Tensor, float]:
    """Paste ``box`` of image ``partner[i]`` into image i; return the mixed images and
    the weight of each image's own label (1 - the box's area fraction)."""
    y0, y1, x0, x1 = box
    mixed = images.clone()
    mixed[:, :, y0:y1, x0:x1] = images[partner][:, :, y0:y1, x0:x1]
    return mixed, 1.0 - (y1 - y0) * (x1 - x0) / (images.shape[2] * images.shape[3])


@register_method("cutmix")
class CutMix(CAMBase):
    description = "CutMix (ICCV 2019): CAM trained on images mixed box-wise, labels by area"
    paper = "Yun et al., CutMix, ICCV 2019"
    options = {
        "beta": Option(1.0, "Beta(beta, beta) of the mixing ratio", low=1e-3),
        "prob": Option(1.0, "probability that a batch is mixed", low=0.0, high=1.0),
    }
    search_space = {"prob": uniform(0.25, 1.0)}

    def train_step(
        self, model: nn.Module, batch: dict, step: Step
    ) -> tuple[torch.Tensor, dict[str, float]]:
        images, labels = batch["image"], batch["label"].to(step.device)
        beta, prob = step.cfg.options["beta"], step.cfg.options["prob"]
        if float(torch.rand(())) >= prob:
            ce, parts = self.loss(model(images.to(step.device)), labels, step.cfg, 1.0)
            return ce, {**parts, "own_label_weight": 1.0}
        lam = float(torch.distributions.Beta(beta, beta).sample())
        partner = torch.randperm(len(images))
        mixed, own = cutmix(images, cut_box(*images.shape[2:], lam), partner)
        logits = model(mixed.to(step.device)).logits
        ce = own * F.cross_entropy(logits, labels) + (1 - own) * F.cross_entropy(
            logits, labels[partner.to(step.device)]
        )
        return ce, {"ce": float(ce.detach()), "own_label_weight": own}
