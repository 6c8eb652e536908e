"""The paper's tables and figures as data: declarative specs (``paper/specs.yaml``),
the published numbers (``paper/tableN.csv``), and the lookup of the runs each cell
needs in a results store.

A cell's runs are found by config, not by name: the cell's settings are completed
with the dataset's and method's defaults exactly as ``wsolbench run`` would, and a
record matches when its identity equals that config on everything but the seed
(seeds are pooled into mean, sd and n) and the starting weights. Runs started from
different weights are never pooled: a cell takes the weights most of its runs used
(``RunIndex.weights_used`` / ``weights_left_out`` say which)."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from wsolbench import PROTOCOL_VERSION
from wsolbench.core.config import check_value, identity_of, option_defaults, read_yaml
from wsolbench.core.errors import UserError
from wsolbench.core.paths import PACKAGE_DIR
from wsolbench.core.record import RunRecord
from wsolbench.core.registry import METHODS

if TYPE_CHECKING:
    import pandas as pd

PAPER = PACKAGE_DIR / "paper"
POOLED = ("seed", "pretrained", "weights_sha256", "data_sha256")
DATASET_NAMES = {
    "cub": "CUB-200",
    "imagenet": "ImageNet",
    "openimages": "OpenImages",
    "synthetic": "synthetic",
}


@dataclass
class Line:
    """A table row, a table column or a figure's series: a key, a label, settings."""

    key: str
    label: str
    settings: dict[str, Any] = field(default_factory=dict)
    metric: str | None = None
    paper_only: str | None = None  # why wsolbench cannot produce it
    free: str | None = None  # columns: a setting that may take any value
    best: bool = True  # columns: bold the best of our values
    datasets: list[str] | None = None  # columns: only on these datasets (None: every one)

    def on(self, dataset: str) -> bool:
        return self.datasets is None or dataset in self.datasets


@dataclass
class Spec:
    name: str
    kind: str  # table | line | threshold | box
    title: str
    datasets: list[str]
    base: dict[str, Any]
    rows: list[Line]
    columns: list[Line]
    sweep: str
    # Figures: for a line plot, the settings each panel sweeps on its x axis; for
    # a box plot, the categories along x.
    panels: list[Line] = field(default_factory=list)


def _line(spec: str, part: str, data: Any) -> Line:
    where = f"{PAPER / 'specs.yaml'}: {spec}.{part}"
    if not isinstance(data, dict) or "key" not in data:
        raise UserError(f"{where}: each entry needs a key")
    settings = {k: check_value(k, v, where) for k, v in (data.get("set") or {}).items()}
    return Line(
        key=str(data["key"]),
        label=str(data.get("label", data["key"])),
        settings=settings,
        metric=data.get("metric", data["key"] if part == "columns" else None),
        paper_only=data.get("paper_only"),
        free=data.get("free"),
        best=bool(data.get("best", True)),
        datasets=list(data["datasets"]) if "datasets" in data else None,
    )


def load_specs() -> dict[str, Spec]:
    raw = read_yaml(PAPER / "specs.yaml")
    specs = {}
    for name, d in raw.items():
        specs[name] = Spec(
            name=name,
            kind=d.get("kind", "table"),
            title=d["title"],
            datasets=list(d["datasets"]),
            base=dict(d.get("base") or {}),
            rows=[_line(name, "rows", r) for r in d.get("rows", [])],
            columns=[_line(name, "columns", c) for c in d.get("columns", [])],
            sweep=d.get("sweep", name),
            panels=[_line(name, "panels", p) for p in d.get("panels", [])],
        )
    return specs


def spec_named(name: str) -> Spec:
    specs = load_specs()
    if name not in specs:
        raise UserError(f"report: unknown table or figure '{name}' (known: {', '.join(specs)})")
    return specs[name]


def paper_numbers(spec: Spec) -> pd.DataFrame:
    """The published numbers for a table (columns: row, label, dataset, column, value);
    empty for figures, whose values the paper's text does not give."""
    import pandas as pd  # here: the command line reads specs without pandas

    path = PAPER / f"{spec.name}.csv"
    if not path.is_file():
        return pd.DataFrame(columns=["table", "row", "label", "dataset", "column", "value"])
    return pd.read_csv(path, dtype={"row": str, "column": str})


def _unpooled(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if k not in POOLED}


def _match_key(values: dict[str, Any]) -> str:
    return json.dumps(_unpooled(values), sort_keys=True)


def cell_config(given: dict[str, Any]) -> dict[str, Any]:
    """The identity a run made from ``given`` would have (``wsolbench run`` defaults)."""
    from wsolbench.train.plan import configure  # the runner's own completion of a config

    return configure(given)[2].identity()


class RunIndex:
    """Finished runs grouped by their config without the pooled settings."""

    def __init__(self, records: list[RunRecord]) -> None:
        self.groups: dict[str, list[RunRecord]] = defaultdict(list)
        self.configs: dict[str, dict[str, Any]] = {}  # each group's config, parsed once
        # Numbers under another protocol version are never pooled with today's.
        self.other_protocol = [r for r in records if protocol_version(r) != PROTOCOL_VERSION]
        self.weights_used: set[str] = set()  # sha256 of the weights the cells found used
        self.weights_left_out: set[str] = set()
        self.data_left_out = 0  # runs of the same cell on other data (another folder)
        for r in records:
            if protocol_version(r) != PROTOCOL_VERSION:
                continue
            config = _unpooled(_identity(r.config))
            key = _match_key(config)
            self.groups[key].append(r)
            self.configs[key] = config

    def find(self, given: dict[str, Any], free: str | None = None) -> list[RunRecord]:
        """Records for ``given``; with ``free``, that setting may take any value."""
        want = _unpooled(cell_config(given))
        if free is None:
            found = self.groups.get(_match_key(want), [])
            return sorted(self._one_weights(found), key=lambda r: r.seed)
        want.pop(free, None)
        found = []
        for key, config in self.configs.items():
            if {k: v for k, v in config.items() if k != free} == want:
                found += self.groups[key]
        found = self._one_weights(found)
        return sorted(found, key=lambda r: (str(r.config[free]), r.seed))

    def _one_weights(self, found: list[RunRecord]) -> list[RunRecord]:
        """The runs of the starting weights and data most of ``found`` used (ties: the
        first digests in order), so that one cell never mixes weights or data."""
        groups: dict[tuple[str, str], list[RunRecord]] = defaultdict(list)
        for r in found:
            c = r.config
            groups[(str(c.get("weights_sha256")), str(c.get("data_sha256")))].append(r)
        if not groups:
            return []
        pick = max(sorted(groups), key=lambda k: len(groups[k]))
        self.weights_used.add(pick[0])
        self.weights_left_out.update(w for w, d in groups if w != pick[0])
        self.data_left_out += sum(len(g) for k, g in groups.items() if k[1] != pick[1])
        return groups[pick]


def protocol_version(record: RunRecord) -> str:
    return record.protocol_version


def _identity(config: dict[str, Any]) -> dict[str, Any]:
    return identity_of(config)


def run_command(given: dict[str, Any]) -> str:
    """The ``wsolbench run`` line that makes the run ``given`` describes."""
    parts = ["wsolbench", "run", given["method"]]
    for key, value in given.items():
        if key in ("method", "options"):
            continue
        parts += [f"--{key.replace('_', '-')}", str(value)]
    declared = option_defaults(METHODS.get(given["method"]).options)
    for key, value in (given.get("options") or {}).items():
        flag = key.replace("_", "-")
        if isinstance(value, bool):
            if value != declared[key]:
                parts.append(f"--{flag}" if value else f"--no-{flag}")
        else:
            parts += [f"--{flag}", str(value)]
    return " ".join(parts)


def dataset_title(name: str) -> str:
    return DATASET_NAMES.get(name, name)
