"""Planning a run: its settings completed and checked, its starting weights found.
Every check that can fail on user input happens here, before anything is written."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from wsolbench.core.config import RunConfig, build_config
from wsolbench.core.errors import UserError
from wsolbench.core.registry import DATASETS, METHODS
from wsolbench.data.splits import DatasetPlugin, check_frame
from wsolbench.models.cnn import backbone_family
from wsolbench.models.method import Method
from wsolbench.train.freeze import PRESETS, freezes_blocks
from wsolbench.train.weights import Weights, resolve

FAMILY_NAMES = {"vit": "ViT (a timm VisionTransformer)", "cnn": "CNN"}


@dataclass
class Plan:
    method: Method
    dataset: DatasetPlugin
    cfg: RunConfig
    weights: Weights


def plan(given: dict[str, Any], cached_only: bool = False) -> Plan:
    """Check a run's settings and resolve its weights (``cached_only``: never download,
    as in a sweep task, whose weights the submitting machine resolved)."""
    method, dataset, cfg = configure(given)
    cfg = cfg.replace(data_sha256=dataset.fingerprint(cfg))
    weights, cfg = plan_weights(cfg, cached_only)
    return Plan(method, dataset, cfg, weights)


def check_backbone(method: Method, cfg: RunConfig) -> None:
    """Refuse a backbone timm does not know, one of a family the method cannot take,
    and a freeze preset of transformer blocks on a CNN."""
    family = backbone_family(cfg.backbone)
    if family not in method.backbones:
        needs = " or ".join(FAMILY_NAMES[f] for f in method.backbones)
        raise UserError(
            f"backbone: {cfg.backbone} is a {FAMILY_NAMES[family]}; method {method.name} "
            f"needs a {needs}"
        )
    if family == "cnn" and freezes_blocks(cfg.freeze):
        raise UserError(
            f"freeze: preset '{cfg.freeze}' freezes transformer blocks and {cfg.backbone} "
            "is a CNN; only preset 'a' (nothing frozen) applies"
        )


def dataset_defaults(method: Method, dataset: DatasetPlugin) -> dict[str, Any]:
    """The dataset's defaults, with its CNN backbone for a method that defaults to one."""
    defaults = dict(dataset.defaults)
    if method.backbones[0] == "cnn":
        defaults["backbone"] = defaults.get("cnn_backbone", "resnet50")
    return defaults


def configure(given: dict[str, Any]) -> tuple[Method, DatasetPlugin, RunConfig]:
    """The run's full config, as every run id and every table cell sees it: defaults
    filled in, checked, and the settings the method does not use cleared (so that
    they are neither in its id nor shown for it)."""
    if not given.get("method"):
        raise UserError("no method given (see `wsolbench list`)")
    method = METHODS.get(given["method"])()
    dataset = DATASETS.get(given.get("dataset") or "synthetic")()
    cfg = build_config(given, dataset_defaults(method, dataset), method.options)
    if cfg["freeze"] not in PRESETS:
        raise UserError(f"freeze: unknown preset '{cfg['freeze']}' (known: {', '.join(PRESETS)})")
    check_backbone(method, cfg)  # a wrong name is named before weights are sought
    cfg = check_frame(cfg, dataset)
    cfg = cfg.replace(**dict.fromkeys(method.unused_settings(cfg)))
    return method, dataset, cfg


def plan_weights(cfg: RunConfig, cached_only: bool = False) -> tuple[Weights, RunConfig]:
    """Resolve the starting weights (finding or fetching the hub file) and put their
    sha256 into the run's identity. Evaluating a checkpoint starts from nothing."""
    if cfg.pretrained is None or cfg.checkpoint:
        cfg = cfg.replace(pretrained=cfg.pretrained or "none")
        weights = Weights("none")
    else:
        weights = resolve(cfg.pretrained, cfg.backbone, cached_only)
    return weights, cfg.replace(weights_sha256=weights.sha256)
