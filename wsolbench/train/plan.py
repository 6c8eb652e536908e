"""Planning a run: its settings completed and checked, its starting weights found.
Every check that can fail on user input happens here, before anything is written."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from wsolbench.core.config import FIELDS, RunConfig, build_config
from wsolbench.core.digests import file_digest
from wsolbench.core.errors import UserError
from wsolbench.core.recipe import Recipe, describe, find_recipe
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
    recipe: dict | None = None  # the record's word on the recipe (``recipe_block``)


def plan(given: dict[str, Any], cached_only: bool = False) -> Plan:
    """Check a run's settings and resolve its weights (``cached_only``: never download,
    as in a sweep task, whose weights the submitting machine resolved)."""
    method, dataset, cfg = configure(given)
    dataset.check(cfg)  # the data's own problems first: before any weights are sought
    cfg = cfg.replace(data_sha256=dataset.fingerprint(cfg))
    if cfg.checkpoint:  # a flag's or a config file's: the weights evaluated, by content
        cfg = cfg.replace(checkpoint_sha256=file_digest(cfg.checkpoint))
    weights, cfg = plan_weights(cfg, cached_only)
    return Plan(method, dataset, cfg, weights, recipe_block(method, cfg, given))


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


def run_recipe(method: Method, given: dict[str, Any]) -> tuple[Recipe, dict, str]:
    """The recipe a run takes, its values for this method and backbone (with their
    sources) and their trust."""
    dataset = given.get("dataset") or "synthetic"
    recipe = find_recipe(given.get("recipe"), dataset, method.name, method.recipes)
    default = recipe.values.get("cnn_backbone" if method.backbones[0] == "cnn" else "backbone")
    backbone = given.get("backbone") or (default.value if default else None)
    values, trust = recipe.for_run(method.name, backbone)
    if method.backbones[0] == "cnn" and "cnn_backbone" in values:
        values["backbone"] = values["cnn_backbone"]
    return recipe, values, trust


def configure(given: dict[str, Any]) -> tuple[Method, DatasetPlugin, RunConfig]:
    """The run's full config, as every run id and every table cell sees it: the
    recipe's values under the given ones, checked, and the settings the method does
    not use cleared (so that they are neither in its id nor shown for it)."""
    if not given.get("method"):
        raise UserError("no method given (see `wsolbench list`)")
    method = METHODS.get(given["method"])()
    dataset = DATASETS.get(given.get("dataset") or "synthetic")()
    recipe, values, _ = run_recipe(method, given)
    settings = {k: v.value for k, v in values.items()} | {"recipe": recipe.name}
    chosen = {k: v for k, v in given.items() if k != "recipe"}
    cfg = build_config(chosen, settings, method.options)
    if cfg["freeze"] not in PRESETS:
        raise UserError(f"freeze: unknown preset '{cfg['freeze']}' (known: {', '.join(PRESETS)})")
    check_backbone(method, cfg)  # a wrong name is named before weights are sought
    cfg = check_frame(cfg, dataset)
    check_training(cfg)
    cfg = cfg.replace(**dict.fromkeys(method.unused_settings(cfg)))
    return method, dataset, cfg


def check_training(cfg: RunConfig) -> None:
    """Settings that are each valid but do not go together."""
    if cfg.optimizer == "sgd" and cfg.nesterov and cfg.momentum == 0:
        raise UserError("nesterov: Nesterov momentum needs momentum > 0")
    if cfg.schedule == "step" and not cfg.lr_steps:
        raise UserError("lr_steps: the step schedule needs the epochs to decay at, e.g. 30,60")
    if cfg.box_rule == "tscam":
        if cfg.cam_threshold is None:
            raise UserError("cam_threshold: the tscam box rule needs its fixed threshold")
        if cfg.frame == "crop":
            raise UserError(
                "box_rule: TS-CAM's rule is defined in its resize frame, not the crop frame"
            )


def recipe_block(method: Method, cfg: RunConfig, given: dict[str, Any]) -> dict:
    """The record's recipe: name, trust, each value's source, and the values the run
    set otherwise (a flag or config file) with the recipe's value beside them."""
    recipe, values, trust = run_recipe(method, given)
    block = describe(recipe, values, trust)
    block["overridden"] = {
        k: {"recipe": values[k].value, "run": cfg[k]}
        for k in values
        if k in FIELDS and given.get(k) is not None and cfg[k] != values[k].value
    }
    return block


def plan_weights(cfg: RunConfig, cached_only: bool = False) -> tuple[Weights, RunConfig]:
    """Resolve the starting weights (finding or fetching the hub file) and put their
    sha256 into the run's identity. Evaluating a checkpoint starts from nothing."""
    if cfg.pretrained is None or cfg.checkpoint:
        cfg = cfg.replace(pretrained=cfg.pretrained or "none")
        weights = Weights("none")
    else:
        weights = resolve(cfg.pretrained, cfg.backbone, cached_only)
    return weights, cfg.replace(weights_sha256=weights.sha256)
