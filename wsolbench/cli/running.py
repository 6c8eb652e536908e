"""``run``, ``evaluate``, ``export-maps`` and ``evaluate-maps``: commands that make
a record."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from wsolbench.cli.maps import print_record
from wsolbench.cli.parser import run_flag_keys
from wsolbench.core.config import load_yaml
from wsolbench.core.store import Store, results_root
from wsolbench.evaluation.maps import MANIFEST
from wsolbench.train.export import export_maps
from wsolbench.train.plan import plan
from wsolbench.train.runner import execute


def _flags(args: argparse.Namespace) -> dict[str, Any]:
    """The run settings given as flags."""
    flags = {k: getattr(args, k) for k in run_flag_keys() if getattr(args, k) is not None}
    if isinstance(flags.get("kshot"), str) and flags["kshot"].isdigit():
        flags["kshot"] = int(flags["kshot"])
    if args.method:
        flags["method"] = args.method
    return flags


def _given(args: argparse.Namespace, from_file: dict, flags: dict) -> dict[str, Any]:
    given = {**from_file, **flags}
    opts = dict(given.get("options") or {})
    opts.update({k[4:]: v for k, v in vars(args).items() if k.startswith("opt:") and v is not None})
    given["options"] = opts
    return given


def cmd_run(args: argparse.Namespace) -> int:
    from_file, flags = (load_yaml(args.config) if args.config else {}), _flags(args)
    given = _given(args, from_file, flags)
    if getattr(args, "checkpoint", None):
        given["checkpoint"] = flags["checkpoint"] = args.checkpoint
    if args.dry_run:
        from wsolbench.cli.dryrun import dry_run

        print(dry_run(given, set(flags), args.config, set(from_file)))
        return 0
    store = Store(results_root(args.results))
    p = plan(given)
    record, ran = execute(p, store, force=args.force, wait=not args.no_wait)
    print_record(record, ran, store)
    if p.weights.source == "none" and not p.cfg["checkpoint"]:
        start = "the shipped trunk" if p.cfg["dataset"] == "synthetic" else "ImageNet weights"
        print(f"note: trained from scratch (--pretrained none), not from {start}")
    print(f"results: {store.run_dir(record.run_id)}")
    return 0


def cmd_export_maps(args: argparse.Namespace) -> int:
    overrides = {
        "frame": args.frame,
        "data_root": args.data_root,
        "device": args.device,
        "workers": args.workers,
    }
    store = Store(results_root(args.results))
    count, out = export_maps(store, args.run_id, args.split, Path(args.out), overrides)
    print(f"wrote {count} maps and {MANIFEST} to {out}")
    return 0
