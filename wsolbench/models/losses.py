"""SAT's spatial constraints (Wu et al., ICCV 2023, Eq. 7 and 8)."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F
from scipy.special import ndtr  # norm.cdf's own function; scipy.stats takes 1 s to import

from wsolbench.core.config import RunConfig
from wsolbench.models.trunk import ModelOutput


@lru_cache(maxsize=4)
def _gaussian_kernel_np(kernlen: int, nsig: float) -> np.ndarray:
    # The authors' construction: integrate the normal pdf over kernlen equal bins
    # spanning [-nsig, nsig] (plus half a bin each side), outer product, sqrt.
    interval = (2 * nsig + 1.0) / kernlen
    x = np.linspace(-nsig - interval / 2.0, nsig + interval / 2.0, kernlen + 1)
    k1 = np.diff(ndtr(x))
    k = np.sqrt(np.outer(k1, k1))
    return k / k.sum()


def gaussian_kernel(kernlen: int = 3, nsig: float = 6.0) -> torch.Tensor:
    """The fixed (1, 1, kernlen, kernlen) kernel of SAT's normalization loss."""
    return torch.from_numpy(_gaussian_kernel_np(kernlen, nsig)).float()[None, None]


def batch_area_loss(maps: torch.Tensor, lam: float, per: int = 0) -> torch.Tensor:
    """|mean over the batch of the mean map value - lambda| (Eq. 7); with ``per``, that
    loss on each chunk of ``per`` images, averaged over the chunks (what each GPU of
    a data-parallel run computes before the gradients are averaged)."""
    if per <= 0 or per >= len(maps):
        return (maps.mean() - lam).abs()
    return torch.stack([(c.mean() - lam).abs() for c in maps.split(per)]).mean()


def normalization_loss(maps: torch.Tensor, gaussian: bool = True) -> torch.Tensor:
    """mean(M* (1 - M*)), M* the map filtered with the 3x3 Gaussian (Eq. 8)."""
    m = maps.unsqueeze(1)
    if gaussian:
        m = F.conv2d(m, gaussian_kernel().to(m), padding=1)
    return (m * (1 - m)).mean()


SPATIAL_SETTINGS = ("lambda", "loss_delay", "loss_ramp")


def unused_by_spatial_losses(cfg: RunConfig, on: bool = True) -> tuple[str, ...]:
    """What ``spatial_losses`` does not read under ``cfg``'s options (all of it when
    the method trains without them, ``on=False``)."""
    area = on and cfg.options.get("area_loss", True)
    norm = on and cfg.options.get("norm_loss", True)
    unused = () if area else ("lambda",)
    return unused + (() if area or norm else ("loss_delay", "loss_ramp"))


def spatial_losses(
    out: ModelOutput, labels: torch.Tensor, cfg: RunConfig, spatial_weight: float
) -> tuple[torch.Tensor, dict[str, float]]:
    """Cross-entropy plus SAT's batch-area and normalization losses on ``out.maps``,
    each switchable by the options ``area_loss`` / ``norm_loss`` / ``gaussian``."""
    ce = F.cross_entropy(out.logits, labels)
    parts = {"ce": ce}
    if cfg.options.get("area_loss", True):
        parts["area"] = batch_area_loss(out.maps, cfg["lambda"], cfg.area_per)
    if cfg.options.get("norm_loss", True):
        parts["norm"] = normalization_loss(out.maps, cfg.options.get("gaussian", True))
    spatial = sum(v for k, v in parts.items() if k != "ce")
    total = ce + spatial_weight * spatial if len(parts) > 1 else ce
    return total, {k: float(v.detach()) for k, v in parts.items()}


def cross_entropy_only(
    out: ModelOutput, labels: torch.Tensor
) -> tuple[torch.Tensor, dict[str, float]]:
    """The loss of methods trained on image labels alone (CAM, TS-CAM)."""
    ce = F.cross_entropy(out.logits, labels)
    return ce, {"ce": float(ce.detach())}
