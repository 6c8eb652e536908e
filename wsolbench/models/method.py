"""The method interface. A method plugin is one class registered with
``@register_method("name")`` in a file under ``methods/``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from wsolbench.core.config import RunConfig
from wsolbench.core.recipe import Recipe
from wsolbench.core.space import Dim
from wsolbench.models.trunk import ModelOutput


@dataclass(frozen=True)
class Step:
    """What one training step is told: where it is in the run, the spatial losses'
    warm-up weight, the device and the run's config."""

    epoch: int  # from 0
    index: int  # step within the epoch, from 0
    steps: int  # steps per epoch
    epochs: int
    spatial_weight: float
    device: torch.device
    cfg: RunConfig


class Method:
    """Builds a network and its loss; turns network outputs into localization maps.

    ``class_aware`` methods produce one map per class and are scored with the map of
    the ground-truth class (as the WSOL evaluation benchmark does); class-agnostic
    methods produce one map per image.
    """

    name: ClassVar[str]
    description: ClassVar[str] = ""
    paper: ClassVar[str] = ""
    class_aware: ClassVar[bool] = False
    # Method-specific settings and their defaults; they become CLI flags and
    # the ``options`` mapping of a run config.
    options: ClassVar[dict[str, Any]] = {}
    # ``wsolbench tune``'s space for this method's own hyperparameters (run settings
    # or option names -> ranges); the learning rate is searched for every method.
    search_space: ClassVar[dict[str, Dim]] = {}
    # The backbone families the method takes, "vit" and/or "cnn"; the first is its
    # default (the dataset's ``backbone`` or ``cnn_backbone``).
    backbones: ClassVar[tuple[str, ...]] = ("vit",)
    # The authors' training recipes, by dataset (``core.recipe``); a dataset without
    # one takes its shared recipe.
    recipes: ClassVar[dict[str, Recipe]] = {}
    # Names in published checkpoints -> this network's names (None: drop the tensor).
    checkpoint_keys: ClassVar[dict[str, str | None]] = {}

    def unused_settings(self, cfg: RunConfig) -> tuple[str, ...]:
        """Run settings this method ignores under ``cfg`` (e.g. ``lambda`` without an
        area loss): left out of its run id, so a sweep over them trains it once."""
        return ()

    def build(self, cfg: RunConfig, num_classes: int) -> nn.Module:
        """Return the network; its forward maps images to a ModelOutput."""
        raise NotImplementedError

    def train_step(
        self, model: nn.Module, batch: dict, step: Step
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """One step's total loss and its named parts (logged per epoch). The default
        is one forward pass and ``loss``; override it for input-level operations
        (hiding patches, mixing images and labels) or several forward passes."""
        out = model(batch["image"].to(step.device))
        return self.loss(out, batch["label"].to(step.device), step.cfg, step.spatial_weight)

    def forward_labelled(
        self, model: nn.Module, images: torch.Tensor, labels: torch.Tensor
    ) -> ModelOutput:
        """The forward pass whose maps are scored, told the ground-truth labels (ACoL
        erases by them, as the WSOL benchmark's evaluation does). Default: the plain
        forward pass, which never sees them."""
        return model(images)

    def param_groups(self, model: nn.Module, cfg: RunConfig) -> list[dict] | None:
        """The optimizer's parameter groups: dicts with ``params`` and optionally
        ``lr_scale`` (times the run's lr) and ``weight_decay``. None: the trainer's
        (no decay on biases, norms, tokens and position embeddings). Frozen
        parameters are left out of every group either way."""
        return None

    def loss(
        self, out: ModelOutput, labels: torch.Tensor, cfg: RunConfig, spatial_weight: float
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """Total loss and its named parts. ``spatial_weight`` in [0, 1] is the loss
        warm-up factor for any localization loss (1 once warm-up is over)."""
        raise NotImplementedError

    def localization_maps(self, out: ModelOutput, classes: torch.Tensor) -> torch.Tensor:
        """One map per image (B, h, w) in [0, 1]; class-aware methods take ``classes``."""
        if self.class_aware:
            return out.maps[torch.arange(len(classes), device=classes.device), classes]
        return out.maps
