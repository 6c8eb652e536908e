"""Planning a run: its settings completed and checked, its starting weights found.
Every check that can fail on user input happens here, before anything is written."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from wsolbench.core.config import RunConfig, build_config
from wsolbench.core.errors import UserError
from wsolbench.core.registry import DATASETS, METHODS
from wsolbench.data.splits import DatasetPlugin, check_frame
from wsolbench.models.method import Method
from wsolbench.models.trunk import create_vit
from wsolbench.train.freeze import PRESETS
from wsolbench.train.weights import Weights, resolve


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
    check_backbone(cfg.backbone)  # a wrong name is named before weights are sought
    cfg = cfg.replace(data_sha256=dataset.fingerprint(cfg))
    weights, cfg = plan_weights(cfg, cached_only)
    return Plan(method, dataset, cfg, weights)


@functools.lru_cache(maxsize=32)
def check_backbone(name: str) -> None:
    """Refuse a backbone timm does not know or that is no ViT with a class token."""
    create_vit(name, 0.0)


def configure(given: dict[str, Any]) -> tuple[Method, DatasetPlugin, RunConfig]:
    """The run's full config, as every run id and every table cell sees it: defaults
    filled in, checked, and the settings the method does not use cleared (so that
    they are neither in its id nor shown for it)."""
    if not given.get("method"):
        raise UserError("no method given (see `wsolbench list`)")
    method = METHODS.get(given["method"])()
    dataset = DATASETS.get(given.get("dataset") or "synthetic")()
    cfg = build_config(given, dataset.defaults, method.options)
    if cfg["freeze"] not in PRESETS:
        raise UserError(f"freeze: unknown preset '{cfg['freeze']}' (known: {', '.join(PRESETS)})")
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
