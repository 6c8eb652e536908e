"""Run configuration: one table of fields drives YAML parsing, CLI overrides,
validation, defaults and the run id."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from wsolbench import PROTOCOL_VERSION
from wsolbench.core.errors import UserError, where


def int_at_least(lo: int) -> Callable[[Any], int]:
    def check(v: Any) -> int:
        if isinstance(v, bool) or not isinstance(v, int):
            raise ValueError(f"must be an integer, got {v!r}")
        if v < lo:
            raise ValueError(f"must be >= {lo}, got {v}")
        return v

    return check


def number_in(lo: float, hi: float | None = None, open_lo: bool = False) -> Callable[[Any], float]:
    def check(v: Any) -> float:
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise ValueError(f"must be a number, got {v!r}")
        v = float(v)
        bad_lo = v <= lo if open_lo else v < lo
        if bad_lo or (hi is not None and v >= hi):
            left = "(" if open_lo else "["
            interval = (
                f"{left}{lo}, {hi})" if hi is not None else f"{'>' if open_lo else '>='} {lo}"
            )
            raise ValueError(f"must be in {interval}, got {v}")
        return v

    return check


def _choice(*choices: str) -> Callable[[Any], str]:
    def check(v: Any) -> str:
        if v not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}, got {v!r}")
        return v

    return check


# Evaluation frames (imaging.Frame): the SAT/TS-CAM authors' crop, the WSOL benchmark's
# resize, and the synthetic images as drawn.
FRAMES = ("crop", "resize", "native")


def non_empty_str(v: Any) -> str:
    if not isinstance(v, str) or not v:
        raise ValueError(f"must be a non-empty string, got {v!r}")
    return v


def _kshot(v: Any) -> int | str:
    if v == "full":
        return v
    if isinstance(v, str) and v.isdigit():
        v = int(v)
    return int_at_least(1)(v)


def _bool(v: Any) -> bool:
    if not isinstance(v, bool):
        raise ValueError(f"must be true or false, got {v!r}")
    return v


def mapping(v: Any) -> dict:
    if not isinstance(v, dict):
        raise ValueError(f"must be a mapping, got {v!r}")
    return dict(v)


@dataclass(frozen=True)
class Field:
    check: Callable[[Any], Any]
    default: Any = None
    identity: bool = True  # part of the run id (runtime-only knobs are not)
    help: str = ""
    # Fields added after protocol 1 enter the run id only when set, so ids of
    # earlier runs stay valid.
    id_when_set: bool = False


FIELDS: dict[str, Field] = {
    "method": Field(non_empty_str, None, help="method name (see `wsolbench list`)"),
    "dataset": Field(non_empty_str, "synthetic", help="dataset name"),
    "kshot": Field(_kshot, "full", help="training images per class, or 'full'"),
    "freeze": Field(non_empty_str, "a", help="freeze preset (Table 8: a-e)"),
    "lambda": Field(number_in(0.0, 1.0, open_lo=True), help="batch-area target (dataset default)"),
    "batch_size": Field(int_at_least(1), help="training batch size (dataset default)"),
    "seed": Field(int_at_least(0), 0, help="random seed"),
    "epochs": Field(int_at_least(1), help="training epochs (dataset default)"),
    "lr": Field(number_in(0.0, open_lo=True), help="learning rate (dataset default)"),
    "weight_decay": Field(number_in(0.0), 0.05, help="AdamW weight decay"),
    "drop_path": Field(number_in(0.0, 1.0), 0.1, help="stochastic depth rate"),
    "schedule": Field(_choice("constant", "cosine"), "constant", help="learning-rate schedule"),
    "backbone": Field(non_empty_str, help="timm model name (dataset default)"),
    "pretrained": Field(
        non_empty_str,
        identity=False,  # the path is for people; weights_sha256 is the identity
        help="starting weights: hub (the backbone's ImageNet weights from timm's hub; "
        "for the synthetic micro trunk, the weights shipped with wsolbench), none (from "
        "scratch) or a checkpoint FILE; dataset default",
    ),
    "data_sha256": Field(
        non_empty_str, None, help="digest of the dataset's annotation files (set when planned)"
    ),
    "weights_sha256": Field(
        non_empty_str, None, help="sha256 of the starting weights read (set when planned)"
    ),
    # Fractions of the run, so a schedule keeps its shape when --epochs changes.
    "loss_delay": Field(
        number_in(0.0, 1.0),
        help="share of the run before spatial losses start, 0-1 (dataset default)",
    ),
    "loss_ramp": Field(
        number_in(0.0, 1.0), help="share of the run over which spatial losses ramp in, 0-1"
    ),
    "frame": Field(
        _choice(*FRAMES),
        help="evaluation frame: crop (SAT/TS-CAM authors: resize 256, centre crop 224), "
        "resize (WSOL benchmark: whole image to 224); dataset default",
    ),
    "threshold_on": Field(
        _choice("val", "test"), "val", help="split the box threshold is picked on"
    ),
    "tencrop": Field(
        _bool, False, help="classify by the mean softmax of ten crops", id_when_set=True
    ),
    "options": Field(mapping, None, help="method-specific options"),
    "checkpoint_sha256": Field(
        non_empty_str, None, help="digest of the evaluated weights (evaluate)"
    ),
    "checkpoint": Field(non_empty_str, None, identity=False, help="trained weights to evaluate"),
    "data_root": Field(non_empty_str, None, identity=False, help="folder holding the datasets"),
    "device": Field(non_empty_str, "auto", identity=False, help="auto, cpu or cuda"),
    "workers": Field(int_at_least(0), 0, identity=False, help="DataLoader worker processes"),
    "eval_workers": Field(
        int_at_least(0),
        None,
        identity=False,
        help="processes scoring maps during inference (default: the CPUs left beside "
        "the loader's, on splits of 1,000+ ImageNet-size maps; 0: inline)",
    ),
}

# Fields a dataset plugin supplies when the user leaves them unset.
DATASET_DEFAULTED = (
    "lambda",
    "batch_size",
    "epochs",
    "lr",
    "backbone",
    "loss_delay",
    "loss_ramp",
    "frame",
    "pretrained",
)


# Filled in by ``runner.plan`` where a dataset gives no default: its first frame; none.
OPTIONAL_DEFAULTS = ("frame", "pretrained")


def check_value(name: str, value: Any, source: str | None = None) -> Any:
    if name not in FIELDS:
        known = ", ".join(FIELDS)
        raise UserError(f"{where(source, name)}: unknown key (known: {known})")
    try:
        return FIELDS[name].check(value)
    except ValueError as e:
        raise UserError(f"{where(source, name)}: {e}") from None


def read_yaml(path: str | Path) -> Any:
    """A YAML file's data (``safe_load``); unreadable or invalid files are user errors."""
    path = Path(path)
    try:
        return yaml.safe_load(path.read_text())
    except OSError as e:
        raise UserError(f"{path}: cannot read ({e.strerror})") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark else ""
        raise UserError(f"{path}:{line} is not valid YAML") from None


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a run config file; every key and value is checked."""
    data = read_yaml(path)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UserError(f"{path}: must hold a mapping of run settings")
    return {k: check_value(str(k), v, str(path)) for k, v in data.items()}


@dataclass
class RunConfig:
    values: dict[str, Any] = field(default_factory=dict)

    def __getitem__(self, name: str) -> Any:
        return self.values[name]

    @property
    def options(self) -> dict[str, Any]:
        return self.values["options"]

    def identity(self) -> dict[str, Any]:
        return {
            k: v
            for k, v in self.values.items()
            if FIELDS[k].identity and not (FIELDS[k].id_when_set and v == FIELDS[k].default)
        }

    @property
    def run_id(self) -> str:
        return make_run_id(self["method"], self["dataset"], self.identity())


def make_run_id(method: str, dataset: str, identity: Mapping[str, Any], kind: str = "") -> str:
    """``<method>-<dataset>[-<kind>]-<digest>``: a stable id from every setting that
    changes the result and the protocol version, so a run under a newer protocol
    never finds an older one's record. Every run id is made here."""
    blob = json.dumps({**identity, "protocol": PROTOCOL_VERSION}, sort_keys=True, default=str)
    digest = hashlib.sha256(blob.encode()).hexdigest()[:10]
    return "-".join(part for part in (method, dataset, kind, digest) if part)


def build_config(
    given: Mapping[str, Any],
    dataset_defaults: Mapping[str, Any],
    method_options: Mapping[str, Any],
) -> RunConfig:
    """Merge user settings over dataset defaults over field defaults, and check
    the method options against what the method declares."""
    values = {name: f.default for name, f in FIELDS.items()}
    for name in DATASET_DEFAULTED:
        values[name] = dataset_defaults.get(name)
    values.update(
        {k: check_value(k, v) for k, v in given.items() if v is not None and k != "options"}
    )
    values["options"] = resolve_options(given.get("options") or {}, method_options)
    missing = [n for n in DATASET_DEFAULTED if values[n] is None and n not in OPTIONAL_DEFAULTS]
    if missing:
        raise UserError(f"dataset gives no default for {', '.join(missing)}; set it explicitly")
    return RunConfig(values)


def resolve_options(given: Mapping[str, Any], declared: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(declared)
    for key, value in given.items():
        if key not in declared:
            known = ", ".join(declared) or "none"
            raise UserError(f"options: unknown option '{key}' for this method (known: {known})")
        if type(value) is not type(declared[key]) and not (
            isinstance(declared[key], float)
            and isinstance(value, int)
            and not isinstance(value, bool)
        ):
            kind = type(declared[key]).__name__
            raise UserError(f"options: {key} must be of type {kind}, got {value!r}")
        out[key] = value
    return out
