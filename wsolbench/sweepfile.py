"""Sweep files: fixed settings plus a grid of lists, expanded into checked runs.

    name: kshot-demo            # optional, default: the file name
    method: [sat, tscam]        # one name or a list
    dataset: synthetic          # one name or a list
    settings: {epochs: 2}       # the same for every run
    grid: {kshot: [1, 5], seed: [0, 1, 2]}
    profile: mycluster          # optional: slurm/<profile>.yaml
    slurm: {time_min: 30}       # optional: profile fields to override

Every run is planned (values, dataset defaults, method options) before anything
is submitted, so a bad value fails the whole sweep at once."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import FIELDS, check_value, read_yaml
from .errors import UserError
from .runner import Plan, plan
from .store import RUN_ID

KEYS = ("name", "method", "dataset", "settings", "grid", "profile", "slurm")
# Chosen by the sweep's own keys or by the command line, never per run.
NOT_IN_SETTINGS = ("method", "dataset", "checkpoint", "checkpoint_sha256")
# Built-in sweeps ship with the package and are named without ".yaml".
BUILTIN = Path(__file__).resolve().parent / "sweeps"


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


def _axis(path: Path, key: str, values: Any) -> list[Any]:
    where = f"{path}: grid.{key}"
    if key not in FIELDS or key in NOT_IN_SETTINGS or key == "options":
        raise UserError(f"{where}: not a run setting that can be swept")
    if not isinstance(values, list):
        raise UserError(f"{where}: must be a list of values, got {values!r}")
    if not values:
        raise UserError(f"{where}: empty list (a grid axis needs at least one value)")
    checked = [check_value(key, v, f"{path}: grid") for v in values]
    dupes = [v for i, v in enumerate(checked) if v in checked[:i]]
    if dupes:
        raise UserError(f"{where}: value {dupes[0]!r} appears twice")
    return checked


def load_sweep(name_or_path: str, overrides: dict[str, Any] | None = None) -> Sweep:
    """Read and expand a sweep; ``overrides`` (e.g. ``--dataset``) replace file keys."""
    path = find_sweep(name_or_path)
    data = read_yaml(path)
    if not isinstance(data, dict):
        raise UserError(f"{path}: must hold a mapping (keys: {', '.join(KEYS)})")
    data.update({k: v for k, v in (overrides or {}).items() if v is not None})
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
    settings = data.get("settings") or {}
    grid = data.get("grid") if "grid" in data else {}
    for key, value in (("settings", settings), ("grid", grid), ("slurm", data.get("slurm"))):
        if value is not None and not isinstance(value, dict):
            raise UserError(f"{path}: {key}: must be a mapping, got {value!r}")
    if "grid" in data and not grid:
        raise UserError(f"{path}: grid: empty (leave it out for a single run per method)")
    for key in settings:
        if key in NOT_IN_SETTINGS:
            raise UserError(f"{path}: settings.{key}: set it at the top of the sweep file")
        check_value(str(key), settings[key], f"{path}: settings")
    axes = {str(k): _axis(path, str(k), v) for k, v in grid.items()}
    clash = [k for k in axes if k in settings]
    if clash:
        raise UserError(f"{path}: {clash[0]}: both in settings and in grid")

    runs, seen = [], set()
    for method, dataset, *combo in itertools.product(methods, datasets, *axes.values()):
        given = {
            "method": method,
            "dataset": dataset,
            **settings,
            **dict(zip(axes, combo, strict=True)),
        }
        try:
            p = plan(given)
        except UserError as e:
            label = ", ".join(f"{k}={v}" for k, v in given.items() if k not in settings)
            raise UserError(f"{path}: run {label}: {e}") from None
        if p.cfg.run_id not in seen:
            seen.add(p.cfg.run_id)
            runs.append(p)
    return Sweep(name, path, runs, list(axes), data.get("profile"), dict(data.get("slurm") or {}))
