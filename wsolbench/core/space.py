"""Search spaces for ``wsolbench tune``: one dimension per run setting or method
option, sampled with a seeded generator, so the same seed gives the same trials."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from wsolbench.core.config import read_yaml
from wsolbench.core.errors import UserError

KINDS = ("log", "uniform", "int", "choice")


@dataclass(frozen=True)
class Dim:
    """``log``: log-uniform on [low, high]; ``uniform``: uniform on [low, high];
    ``int``: an integer in [low, high]; ``choice``: one of ``choices``."""

    kind: str
    low: float | None = None
    high: float | None = None
    choices: tuple = ()

    def sample(self, rng: np.random.Generator) -> Any:
        if self.kind == "choice":
            return self.choices[int(rng.integers(len(self.choices)))]
        if self.kind == "int":
            return int(rng.integers(int(self.low), int(self.high) + 1))
        if self.kind == "log":
            value = math.exp(rng.uniform(math.log(self.low), math.log(self.high)))
        else:
            value = rng.uniform(self.low, self.high)
        return float(f"{value:.4g}")  # 4 significant digits: readable ids and tables

    def to_dict(self) -> dict[str, Any]:
        return {self.kind: list(self.choices) if self.kind == "choice" else [self.low, self.high]}


def log(low: float, high: float) -> Dim:
    return Dim("log", low, high)


def uniform(low: float, high: float) -> Dim:
    return Dim("uniform", low, high)


def sample_trials(space: dict[str, Dim], budget: int, seed: int) -> list[dict[str, Any]]:
    """``budget`` settings drawn from ``space``: names in sorted order per trial, so
    the draws depend on the space and the seed only."""
    rng = np.random.default_rng(seed)
    return [{name: space[name].sample(rng) for name in sorted(space)} for _ in range(budget)]


def read_space(path: str | Path) -> dict[str, Dim]:
    """A YAML space: ``name: {log: [low, high]}`` (or uniform, int, choice: [...])."""
    data = read_yaml(path)
    if not isinstance(data, dict) or not data:
        raise UserError(f"{path}: must map setting names to {{kind: values}}")
    return {str(name): _dim(f"{path}: {name}", spec) for name, spec in data.items()}


def _dim(where: str, spec: Any) -> Dim:
    if not isinstance(spec, dict) or len(spec) != 1 or next(iter(spec)) not in KINDS:
        kinds = "{log|uniform|int: [low, high]} or {choice: [...]}"
        raise UserError(f"{where}: must be {kinds}")
    kind, values = next(iter(spec.items()))
    if not isinstance(values, list) or not values:
        raise UserError(f"{where}: {kind}: must be a non-empty list")
    if kind == "choice":
        return Dim("choice", choices=tuple(values))
    numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
    if len(values) != 2 or not numbers or values[0] > values[1]:
        raise UserError(f"{where}: {kind}: must be [low, high] numbers, low <= high")
    if kind == "log" and values[0] <= 0:
        raise UserError(f"{where}: log: low must be > 0, got {values[0]}")
    return Dim(kind, float(values[0]), float(values[1]))
