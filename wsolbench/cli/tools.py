"""``list``, ``weights``, ``bench`` and ``pretrain``. Each imports what it needs
when it runs: the benchmarks and the pretraining pull in most of the package."""

from __future__ import annotations

import argparse
from pathlib import Path

from tabulate import tabulate

from wsolbench.core.config import FIELDS, check_value
from wsolbench.core.errors import UserError
from wsolbench.core.recipe import SHARED, TRUST, Recipe
from wsolbench.core.registry import DATASETS, METHODS
from wsolbench.train.freeze import PRESETS


def cmd_bench(args: argparse.Namespace) -> int:
    from wsolbench.bench.suite import BENCHMARKS
    from wsolbench.bench.suite import run as run_benchmarks

    if args.images < 1:
        raise UserError(f"--images must be >= 1, got {args.images}")
    if args.batch is not None and args.batch < 2:
        raise UserError(f"--batch must be >= 2, got {args.batch}")
    if args.seeds < 1:
        raise UserError(f"--seeds must be >= 1, got {args.seeds}")
    names = args.names or list(BENCHMARKS)
    options = {
        "profile": args.profile,
        "batch": args.batch,
        "device": args.device,
        "seeds": args.seeds,
    }
    print(run_benchmarks(names, args.images, **options))
    return 0


def cmd_pretrain(args: argparse.Namespace) -> int:
    from wsolbench.train.pretrain import RECIPES, pretrain

    if args.backbone not in RECIPES:
        raise UserError(
            f"backbone: no pretraining recipe for '{args.backbone}' (known: {', '.join(RECIPES)})"
        )
    recipe = dict(RECIPES[args.backbone])
    for key in ("epochs", "seed"):
        value = getattr(args, key)
        if value is not None:
            recipe[key] = check_value(key, value, "pretrain")
    manifest = pretrain(Path(args.out), recipe, args.force)
    print(
        f"{Path(args.out) / manifest['file']}: source val top-1 {manifest['source_val_top1']:.2f} "
        f"%, {manifest['wall_s']:.0f} s, sha256 {manifest['sha256']}"
    )
    print(f"use it with --pretrained {Path(args.out) / manifest['file']}")
    return 0


def cmd_weights(args: argparse.Namespace) -> int:
    from wsolbench.train.weights import cache_dir, cached_weights, resolve

    if args.action == "list":
        rows = cached_weights()
        print(tabulate(rows, headers=["model", "file", "MB", "sha256"], tablefmt="github"))
        print(f"cache: {cache_dir()}")
        return 0
    if not args.backbones:
        raise UserError("weights fetch: name the backbones (timm model names)")
    for name in args.backbones:
        w = resolve("hub", name)
        print(f"{name}: {w.repo} @ {w.revision} -> {w.path} (sha256 {w.sha256})")
    return 0


def backbone_text(method: type) -> str:
    """``cnn or vit``; the WSOL benchmark's three networks named where a method builds them."""
    text = " or ".join(method.backbones)
    if getattr(method, "benchmark_networks", False):
        text += " (vgg16, inception_v3, resnet50: the WSOL benchmark's networks)"
    return text


def cmd_list(args: argparse.Namespace) -> int:
    methods = [
        (
            n,
            "class-aware" if METHODS.get(n).class_aware else "class-agnostic",
            backbone_text(METHODS.get(n)),
            METHODS.get(n).description,
        )
        for n in METHODS.names()
    ]
    headers = ["method", "maps", "backbone (default first)", "description"]
    print(tabulate(methods, headers=headers, tablefmt="github"))
    print()
    datasets = [(n, DATASETS.get(n).description) for n in DATASETS.names()]
    print(tabulate(datasets, headers=["dataset", "description"], tablefmt="github"))
    print()
    presets = [(n, d) for n, (d, _) in PRESETS.items()]
    print(tabulate(presets, headers=["freeze preset", "frozen parts"], tablefmt="github"))
    print()
    print(tabulate(settings_rows(), headers=SETTINGS_HEADERS, tablefmt="github"))
    return 0


SETTINGS_HEADERS = ["setting", "default", "in run id", "help"]


def settings_rows() -> list[tuple]:
    """Every run setting (YAML key, ``--flag``), from RunConfig's fields."""
    ids = {True: "yes", False: "no"}
    return [
        (
            key,
            "recipe" if f.dataset_default else f.default,
            "when set" if f.id_when_set else ids[f.identity],
            f.help,
        )
        for key, f in FIELDS.items()
    ]


def all_recipes() -> dict[tuple[str, str], tuple[Recipe, list[str]]]:
    """Every recipe by (name, dataset), with the methods that train with it by default
    (the shared ones: any method, by name)."""
    found: dict[tuple[str, str], tuple[Recipe, list[str]]] = {
        (r.name, r.dataset): (r, []) for r in SHARED.values()
    }
    for name in METHODS.names():
        for recipe in METHODS.get(name).recipes.values():
            found.setdefault((recipe.name, recipe.dataset), (recipe, []))[1].append(name)
    return found


def cmd_recipes(args: argparse.Namespace) -> int:
    found = all_recipes()
    names = {name for name, _ in found}
    unknown = [n for n in args.names if n not in names]
    if unknown:
        raise UserError(f"recipes: no recipe '{unknown[0]}' (known: {', '.join(sorted(names))})")
    for (name, dataset), (recipe, methods) in sorted(found.items()):
        if args.names and name not in args.names:
            continue
        who = ", ".join(methods) if methods else "any method, as --recipe shared"
        print(f"## {name} ({dataset}; {who})")
        print(f"{recipe.about}. Trust: {recipe.trust} ({TRUST[recipe.trust]}).")
        rows = [(k, v.value, v.source) for k, v in recipe.values.items()]
        print(tabulate(rows, headers=["setting", "value", "source"], tablefmt="github"))
        for (method, backbone), tuned in recipe.tuned.items():
            print(f"tuned for {method} on {backbone}* ({tuned.trust}):")
            for k, v in tuned.values.items():
                print(f"  {k}: {v.value}  # {v.source}")
        print()
    return 0
