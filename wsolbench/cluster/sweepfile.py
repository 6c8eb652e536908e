"""Sweep files: fixed settings plus a grid of lists, expanded into checked runs.

    name: kshot-demo            # optional, default: the file name
    method: [sat, tscam]        # one name or a list
    dataset: synthetic          # one name or a list
    settings: {epochs: 2}       # the same for every run
    grid: {kshot: [1, 5], seed: [0, 1, 2]}
    profile: mycluster          # optional: slurm/<profile>.yaml
    slurm: {time_min: 30}       # optional: profile fields to override
    per_dataset:                # optional, per dataset: settings added over the
      synthetic:                # file's, and a grid that replaces the file's
        grid: {kshot: [1, 5], seed: [0]}

``grid`` may also be a list of mappings: each is expanded on its own and the runs
are joined (one axis at a time, e.g. lambda with the default batch size, then batch
size with the default lambda).

Every run is planned (values, dataset defaults, method options) before anything
is submitted, so a bad value fails the whole sweep at once."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wsolbench.core.config import FIELDS, check_value, read_yaml
from wsolbench.core.errors import UserError
from wsolbench.core.paths import PACKAGE_DIR
from wsolbench.core.store import RUN_ID
from wsolbench.train.plan import Plan, plan

KEYS = ("name", "method", "dataset", "settings", "grid", "profile", "slurm", "per_dataset")
DATASET_KEYS = ("settings", "grid")
# Chosen by the sweep's own keys or by the command line, never per run.
NOT_IN_SETTINGS = ("method", "dataset", "checkpoint", "checkpoint_sha256")
# Built-in sweeps ship with the package and are named without ".yaml".
BUILTIN = PACKAGE_DIR / "sweeps"


@dataclass
class Sweep:
    name: str
    path: Path
    runs: list[Plan]
    axes: list[str]  # grid keys, in file order, for tables
    profile: str | None = None
    slurm: dict[str, Any] = field(default_factory=dict)


def find_sweep(name_or_path: str) -> Path:
    path = Path(name_or_path)
    if path.is_file():
        return path
    builtin = BUILTIN / f"{name_or_path}.yaml"
    if "/" not in name_or_path and builtin.is_file():
        return builtin
    known = ", ".join(sorted(p.stem for p in BUILTIN.glob("*.yaml"))) or "none"
    raise UserError(f"{path}: sweep file not found (built-in sweeps: {known})")


def _names(path: Path, key: str, value: Any) -> list[str]:
    values = value if isinstance(value, list) else [value]
    if not values or not all(isinstance(v, str) and v for v in values):
        raise UserError(f"{path}: {key}: must be a name or a non-empty list of names")
    return values


def _axis(path: Path, grid: str, key: str, values: Any) -> list[Any]:
    where = f"{path}: {grid}.{key}"
    if key not in FIELDS or key in NOT_IN_SETTINGS:
        raise UserError(f"{where}: not a run setting that can be swept")
    if not isinstance(values, list):
        raise UserError(f"{where}: must be a list of values, got {values!r}")
    if not values:
        raise UserError(f"{where}: empty list (a grid axis needs at least one value)")
    checked = [check_value(key, v, f"{path}: {grid}") for v in values]
    dupes = [v for i, v in enumerate(checked) if v in checked[:i]]
    if dupes:
        raise UserError(f"{where}: value {dupes[0]!r} appears twice")
    return checked


def load_sweep(name_or_path: str, overrides: dict[str, Any] | None = None) -> Sweep:
    """Read and expand a sweep; ``overrides`` replace file keys (``dataset``) or are
    added to every run's settings (run settings such as ``pretrained``)."""
    path = find_sweep(name_or_path)
    data = read_yaml(path)
    if not isinstance(data, dict):
        raise UserError(f"{path}: must hold a mapping (keys: {', '.join(KEYS)})")
    given = {k: v for k, v in (overrides or {}).items() if v is not None}
    data.update({k: v for k, v in given.items() if k in KEYS})
    added = {k: v for k, v in given.items() if k not in KEYS}
    unknown = [k for k in data if k not in KEYS]
    if unknown:
        raise UserError(f"{path}: unknown key '{unknown[0]}' (known: {', '.join(KEYS)})")
    name = str(data.get("name") or path.stem)
    if not RUN_ID.match(name):
        raise UserError(f"{path}: name: '{name}' must be letters, digits, . _ - only")
    if "method" not in data:
        raise UserError(f"{path}: method: missing (a method name or a list)")
    methods = _names(path, "method", data["method"])
    datasets = _names(path, "dataset", data.get("dataset", "synthetic"))
    if data.get("per_dataset") is not None and not isinstance(data["per_dataset"], dict):
        raise UserError(f"{path}: per_dataset: must map dataset names to settings / grid")
    per_dataset = data.get("per_dataset") or {}
    if data.get("slurm") is not None and not isinstance(data["slurm"], dict):
        raise UserError(f"{path}: slurm: must be a mapping, got {data['slurm']!r}")
    file_settings = _settings(path, data, "")
    runs, seen, axes_seen = [], set(), {}
    for dataset in datasets:
        extra = per_dataset.get(dataset) or {}
        if not isinstance(extra, dict) or any(k not in DATASET_KEYS for k in extra):
            raise UserError(f"{path}: per_dataset.{dataset}: only settings and grid may be set")
        settings = {**file_settings, **_settings(path, extra, f"per_dataset.{dataset}."), **added}
        level, where = (extra, f"per_dataset.{dataset}.") if "grid" in extra else (data, "")
        for axes in _grids(path, level, where, settings):
            axes_seen.update(dict.fromkeys(axes))
            for method, *combo in itertools.product(methods, *axes.values()):
                given = {"method": method, "dataset": dataset, **settings}
                given.update(zip(axes, combo, strict=True))
                try:
                    p = plan(given)
                except UserError as e:
                    label = ", ".join(f"{k}={v}" for k, v in given.items() if k not in settings)
                    raise UserError(f"{path}: run {label}: {e}") from None
                if p.cfg.run_id not in seen:
                    seen.add(p.cfg.run_id)
                    runs.append(p)
    slurm = dict(data.get("slurm") or {})
    return Sweep(name, path, runs, list(axes_seen), data.get("profile"), slurm)


def _settings(path: Path, data: dict, where: str) -> dict[str, Any]:
    settings = data.get("settings") or {}
    if not isinstance(settings, dict):
        raise UserError(f"{path}: {where}settings: must be a mapping, got {settings!r}")
    for key in settings:
        if key in NOT_IN_SETTINGS:
            raise UserError(f"{path}: {where}settings.{key}: set it at the top of the sweep file")
        check_value(str(key), settings[key], f"{path}: {where}settings")
    return settings


def _grids(path: Path, data: dict, where: str, settings: dict) -> list[dict[str, list]]:
    """The grid as a list of blocks (a list of mappings is a union of grids); no
    grid at all is one block without axes."""
    if "grid" not in data:
        return [{}]
    grid = data["grid"]
    blocks = grid if isinstance(grid, list) else [grid]
    if not blocks or not all(isinstance(b, dict) for b in blocks):
        raise UserError(f"{path}: {where}grid: must be a mapping (or a list of them), got {grid!r}")
    if not all(blocks):
        raise UserError(f"{path}: {where}grid: empty (leave it out for a single run per method)")
    out = []
    for block in blocks:
        axes = {str(k): _axis(path, f"{where}grid", str(k), v) for k, v in block.items()}
        clash = [k for k in axes if k in settings]
        if clash:
            raise UserError(f"{path}: {where}{clash[0]}: both in settings and in grid")
        out.append(axes)
    return out
