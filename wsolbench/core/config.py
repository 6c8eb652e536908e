"""Run configuration: one table of fields drives YAML parsing, CLI overrides,
validation, defaults and the run id."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import reprlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from wsolbench import PROTOCOL_VERSION
from wsolbench.core.errors import UserError, where

# Bad values are quoted short: a value built from YAML aliases can be huge.
_SHORT = reprlib.Repr()
_SHORT.maxlevel, _SHORT.maxdict, _SHORT.maxlist = 2, 4, 4
_SHORT.maxstring = _SHORT.maxother = 40


def short(v: Any) -> str:
    """A bounded repr of a value for an error message."""
    return _SHORT.repr(v)


def int_at_least(lo: int, hi: int = 2**31 - 1) -> Callable[[Any], int]:
    def check(v: Any) -> int:
        if isinstance(v, bool) or not isinstance(v, int):
            raise ValueError(f"must be an integer, got {short(v)}")
        if v < lo:
            raise ValueError(f"must be >= {lo}, got {v}")
        if v > hi:
            raise ValueError(f"must be <= {hi}, got {short(v)}")
        return v

    return check


def number_in(lo: float, hi: float | None = None, open_lo: bool = False) -> Callable[[Any], float]:
    def check(v: Any) -> float:
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise ValueError(f"must be a number, got {short(v)}")
        v = float(v)
        if not math.isfinite(v):
            raise ValueError(f"must be a finite number, got {v}")
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
        if not isinstance(v, str) or v not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}, got {short(v)}")
        return v

    return check


# The finest cam_curve_interval accepted: a million thresholds. Finer ones are typos
# (1e-9 for 1e-3) whose grids would not fit in memory (8 GB an array at 1e-9).
FINEST_INTERVAL = 1e-6

MAX_EPOCHS = 10_000  # far beyond any recipe: a typo, not a schedule

# Evaluation frames (imaging.Frame): the SAT authors' crop, the WSOL benchmark's (and TS-CAM's)
# resize, and the synthetic images as drawn.
FRAMES = ("crop", "resize", "native")


def non_empty_str(v: Any) -> str:
    if not isinstance(v, str) or not v:
        raise ValueError(f"must be a non-empty string, got {short(v)}")
    if len(v) > 4096:
        raise ValueError(f"must be at most 4096 characters, got {len(v)}")
    return v


def _kshot(v: Any) -> int | str:
    if v == "full":
        return v
    if isinstance(v, str) and v.lstrip("-").isdigit():
        v = int(v)  # "-1" is a number below 1, not a word
    return int_at_least(1, 100_000)(v)


def _bool(v: Any) -> bool:
    if not isinstance(v, bool):
        raise ValueError(f"must be true or false, got {short(v)}")
    return v


def epoch_list(v: Any) -> list[int]:
    """Epochs (from 1), as a list or a comma-separated string: ``30,60``."""
    if isinstance(v, str):
        try:
            v = [int(x) for x in v.split(",") if x.strip()]
        except ValueError:
            raise ValueError(f"must be epochs separated by commas, got {short(v)}") from None
    if not isinstance(v, list) or not v or len(v) > 1000:
        raise ValueError(f"must be a non-empty list of epochs, got {short(v)}")
    return [int_at_least(1, MAX_EPOCHS)(e) for e in v]


def mapping(v: Any) -> dict:
    if not isinstance(v, dict):
        raise ValueError(f"must be a mapping, got {short(v)}")
    return dict(v)


def setting(
    check: Callable[[Any], Any],
    default: Any = None,
    help: str = "",
    *,
    identity: bool = True,
    id_when_set: bool = False,
    dataset_default: bool = False,
    flag: type | None = None,
    key: str | None = None,
) -> Any:
    """One run setting. ``identity``: part of the run id (runtime-only knobs are not);
    ``id_when_set``: added after protocol 1, so in the id only when set (ids of earlier
    runs stay valid); ``dataset_default``: the dataset plugin supplies it when unset;
    ``flag``: the type argparse converts ``--name VALUE`` to (None: no flag of
    ``run``); ``key``: the name in files, flags and records when the attribute cannot
    be it (``lambda``)."""
    meta = {
        "check": check,
        "help": help,
        "identity": identity,
        "id_when_set": id_when_set,
        "dataset_default": dataset_default,
        "flag": flag,
        "key": key,
    }
    return field(default=default, metadata=meta)


def added(check: Callable[[Any], Any], default: Any, help: str, *, flag: type | None = None) -> Any:
    """A setting added after protocol 1 (the recipes' training settings): in the run id
    only when it differs from ``default``, the behaviour before, so earlier ids hold."""
    return setting(check, default, help, id_when_set=True, flag=flag)


@dataclass(frozen=True)
class RunConfig:
    """Every setting of a run, one field each: the source of the YAML keys, the CLI
    flags, ``wsolbench list``'s settings table, checking and the run id. ``cfg["name"]``
    reads a setting by its file name (``cfg["lambda"]``); ``replace`` returns a copy."""

    method: str | None = setting(non_empty_str, None, "method name (see `wsolbench list`)")
    dataset: str = setting(non_empty_str, "synthetic", "dataset name", flag=str)
    kshot: int | str = setting(_kshot, "full", "training images per class, or 'full'", flag=str)
    freeze: str = setting(non_empty_str, "a", "freeze preset (Table 8: a-e)", flag=str)
    lambda_: float | None = setting(
        number_in(0.0, 1.0, open_lo=True),
        help="batch-area target (recipe default)",
        dataset_default=True,
        flag=float,
        key="lambda",
    )
    batch_size: int | None = setting(
        int_at_least(1, 1_000_000),
        help="training batch size (recipe default)",
        dataset_default=True,
        flag=int,
    )
    seed: int = setting(int_at_least(0, 2**32 - 1), 0, "random seed", flag=int)
    epochs: int | None = setting(
        int_at_least(1, MAX_EPOCHS),
        help="training epochs (recipe default)",
        dataset_default=True,
        flag=int,
    )
    lr: float | None = setting(
        number_in(0.0, open_lo=True),
        help="learning rate (recipe default)",
        dataset_default=True,
        flag=float,
    )
    weight_decay: float = setting(
        number_in(0.0, 1.0), 0.05, "weight decay (AdamW's decoupled; SGD's L2)", flag=float
    )
    drop_path: float = setting(number_in(0.0, 1.0), 0.1, "stochastic depth rate", flag=float)
    schedule: str = setting(
        _choice("constant", "cosine", "step"),
        "constant",
        "learning-rate schedule: constant, cosine (per step, to 0), or step (x lr_factor "
        "at the start of each epoch in lr_steps)",
        flag=str,
    )
    # Recipe settings added with named recipes: in the run id only when they differ
    # from the behaviour before (the field default), so earlier run ids stay valid.
    recipe: str = added(
        non_empty_str,
        "synthetic",
        "training recipe: the method's authors' for the dataset (default), 'shared' "
        "(one recipe for every method), or a name from `wsolbench recipes`",
        flag=str,
    )
    optimizer: str = added(_choice("adamw", "sgd"), "adamw", "adamw or sgd", flag=str)
    momentum: float = added(number_in(0.0, 1.0), 0.9, "SGD momentum", flag=float)
    nesterov: bool = added(_bool, False, "SGD with Nesterov momentum", flag=bool)
    decay_all: bool = added(
        _bool,
        False,
        "weight decay on every tensor (SGD's plain L2, as the WSOL benchmark); off: none "
        "on biases, norms, tokens and position embeddings",
        flag=bool,
    )
    lr_steps: list | None = added(
        epoch_list,
        None,
        "step schedule: epochs (counted from 1) at whose start the lr is multiplied by "
        "lr_factor, e.g. 30,60",
        flag=str,
    )
    lr_factor: float = added(number_in(0.0, 1.0, open_lo=True), 0.1, "step factor", flag=float)
    warmup_epochs: float = added(
        number_in(0.0, 1000.0),
        0.0,
        "epochs of linear learning-rate warm-up from 0, per step",
        flag=float,
    )
    resize: str = added(
        _choice("cv2", "pil"),
        "cv2",
        "image resize: cv2 (OpenCV bilinear, no antialiasing) or pil (PIL bilinear with "
        "antialiasing: torchvision's Resize, as every authors' loader)",
        flag=str,
    )
    classifier_init: str = added(
        _choice("torch", "normal"),
        "torch",
        "a CNN's new classifier: torch's default init, or normal (N(0, 0.01), bias 0: "
        "the WSOL benchmark's)",
        flag=str,
    )
    keep_classifier: bool = added(
        _bool,
        False,
        "keep the pretrained ImageNet classifier (ILSVRC, as the WSOL benchmark)",
        flag=bool,
    )
    large_feature_map: bool = added(
        _bool,
        False,
        "the WSOL benchmark's larger maps: 28x28 at 224 on its vgg16, inception_v3 and "
        "resnet50 (its --large_feature_map)",
        flag=bool,
    )
    fast_layers: str = added(
        _choice("fc", "benchmark"),
        "fc",
        "a CNN's layers trained at lr x lr_classifier_ratio: fc (the new head: fc, or the "
        "layers the method adds), or benchmark (the WSOL benchmark's per architecture: ResNet "
        "layer4 and fc; VGG / Inception all but the pretrained features)",
        flag=str,
    )
    lr_classifier_ratio: float = added(
        number_in(0.0, 1000.0, open_lo=True), 10.0, "lr multiplier of the fast layers", flag=float
    )
    area_per: int = added(
        int_at_least(0, 1 << 20),
        0,
        "SAT's batch-area loss over chunks of this many images, averaged (0: the whole "
        "batch; 128: the SAT authors' per-GPU loss on ILSVRC, 4 GPUs x 128)",
        flag=int,
    )
    box_rule: str = added(
        _choice("sat", "tscam"),
        "sat",
        "GT-known / Top-1 / Top-5 Loc rule: sat (the SAT authors': largest component, "
        "threshold picked on val) or tscam (TS-CAM's: largest contour area at "
        "cam_threshold, its resize frame and GT boxes)",
        flag=str,
    )
    cam_threshold: float | None = added(
        number_in(0.0, 1.0),
        None,
        "tscam box rule: its one fixed threshold (TS-CAM's MODEL.CAM_THR)",
        flag=float,
    )
    cam_curve_interval: float = added(
        number_in(FINEST_INTERVAL, 0.5),
        0.01,
        "the WSOL benchmark's threshold step for MaxBoxAccV2, PxAP and pIoU: thresholds "
        "np.arange(0, 1, interval) (its config.py default is 0.001; its README uses 0.01)",
        flag=float,
    )
    backbone: str | None = setting(
        non_empty_str, help="timm model name (recipe default)", dataset_default=True, flag=str
    )
    pretrained: str | None = setting(
        non_empty_str,
        help="starting weights: hub (the backbone's ImageNet weights from timm's hub; "
        "for the synthetic micro trunk, the weights shipped with wsolbench), none (from "
        "scratch) or a checkpoint FILE; recipe default",
        identity=False,  # the path is for people; weights_sha256 is the identity
        dataset_default=True,
        flag=str,
    )
    data_sha256: str | None = setting(
        non_empty_str, None, "digest of the dataset's annotation files (set when planned)"
    )
    weights_sha256: str | None = setting(
        non_empty_str, None, "sha256 of the starting weights read (set when planned)"
    )
    # Fractions of the run, so a schedule keeps its shape when --epochs changes.
    loss_delay: float | None = setting(
        number_in(0.0, 1.0),
        help="share of the run before spatial losses start, 0-1 (recipe default)",
        dataset_default=True,
        flag=float,
    )
    loss_ramp: float | None = setting(
        number_in(0.0, 1.0),
        help="share of the run over which spatial losses ramp in, 0-1",
        dataset_default=True,
        flag=float,
    )
    frame: str | None = setting(
        _choice(*FRAMES),
        help="evaluation frame: crop (SAT authors: resize 256, centre crop 224), resize "
        "(WSOL benchmark and TS-CAM authors: whole image to 224); recipe default",
        dataset_default=True,
        flag=str,
    )
    threshold_on: str = setting(
        _choice("val", "test"), "val", "split the box threshold is picked on", flag=str
    )
    eval_split: str = setting(
        _choice("test", "val"),
        "test",
        "split the metrics are reported on: test, or val (a tuning trial: test is never "
        "scored, and GT-known's threshold is picked on val itself)",
        id_when_set=True,
        flag=str,
    )
    tencrop: bool = setting(
        _bool, False, "classify by the mean softmax of ten crops", id_when_set=True, flag=bool
    )
    options: dict | None = setting(mapping, None, "method-specific options")
    checkpoint_sha256: str | None = setting(
        non_empty_str, None, "digest of the evaluated weights (evaluate)"
    )
    checkpoint: str | None = setting(
        non_empty_str, None, "trained weights to evaluate", identity=False
    )
    data_root: str | None = setting(
        non_empty_str, None, "folder holding the datasets", identity=False, flag=str
    )
    device: str = setting(non_empty_str, "auto", "auto, cpu or cuda", identity=False, flag=str)
    workers: int = setting(
        int_at_least(0, 512), 0, "DataLoader worker processes", identity=False, flag=int
    )
    eval_workers: int | None = setting(
        int_at_least(0, 512),
        None,
        "processes scoring maps during inference (default: the CPUs left beside "
        "the loader's, on splits of 1,000+ ImageNet-size maps, 10,000+ in evaluate-maps "
        "where only MaxBoxAccV2's rule runs; 0: inline)",
        identity=False,
        flag=int,
    )

    def __getitem__(self, key: str) -> Any:
        return getattr(self, FIELDS[key].attr)

    def replace(self, **by_key: Any) -> RunConfig:
        """A copy with settings replaced, named as in files (``lambda``), unchecked."""
        return dataclasses.replace(self, **{FIELDS[k].attr: v for k, v in by_key.items()})

    def to_dict(self) -> dict[str, Any]:
        """Settings by file name, in field order: what records and sweep tasks carry."""
        return {key: getattr(self, f.attr) for key, f in FIELDS.items()}

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> RunConfig:
        """Back from ``to_dict`` (a record's ``config``); keys it lacks take defaults."""
        unknown = [k for k in values if k not in FIELDS]
        if unknown:
            raise UserError(f"config: unknown key '{unknown[0]}'")
        return cls(**{FIELDS[k].attr: v for k, v in values.items()})

    def identity(self) -> dict[str, Any]:
        return identity_of(self.to_dict())

    @property
    def run_id(self) -> str:
        return make_run_id(self.method, self.dataset, self.identity())


@dataclass(frozen=True)
class Field:
    """A RunConfig field as files, flags and run ids see it."""

    attr: str
    check: Callable[[Any], Any]
    default: Any
    help: str
    identity: bool
    id_when_set: bool
    dataset_default: bool
    flag: type | None


# Derived from RunConfig, never written by hand: by file name, in field order.
FIELDS: dict[str, Field] = {
    (f.metadata["key"] or f.name): Field(
        attr=f.name, default=f.default, **{k: v for k, v in f.metadata.items() if k != "key"}
    )
    for f in fields(RunConfig)
}

# Fields a dataset plugin supplies when the user leaves them unset.
DATASET_DEFAULTED = tuple(k for k, f in FIELDS.items() if f.dataset_default)

# Filled in by planning where a dataset gives no default: its first frame; none.
OPTIONAL_DEFAULTS = ("frame", "pretrained")


def identity_of(config: Mapping[str, Any]) -> dict[str, Any]:
    """The settings of a config (a RunConfig's, or a record's as written then) that
    change the result: the input of its run id."""
    return {
        k: v
        for k, v in config.items()
        if k in FIELDS
        and FIELDS[k].identity
        and not (FIELDS[k].id_when_set and v == FIELDS[k].default)
    }


def check_value(name: str, value: Any, source: str | None = None) -> Any:
    if name not in FIELDS:
        known = ", ".join(FIELDS)
        raise UserError(f"{where(source, name[:60])}: unknown key (known: {known})")
    try:
        return FIELDS[name].check(value)
    except ValueError as e:
        raise UserError(f"{where(source, name)}: {e}") from None


MAX_YAML_BYTES = 1 << 20
MAX_YAML_DEPTH = 50
MAX_YAML_ALIASES = 100
# Set by planning from the files themselves; a config file naming them would claim
# an identity for content it does not have.
DIGESTS = ("data_sha256", "weights_sha256", "checkpoint_sha256")


class _Refused(Exception):
    """A YAML file outside the limits; the message says which."""


class _LimitedLoader(yaml.SafeLoader):
    """``safe_load`` with limits: nesting depth, alias count; duplicate keys refused
    (PyYAML keeps the last silently)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.depth = self.aliases = 0

    def compose_node(self, parent, index):  # PyYAML's signature
        if self.check_event(yaml.AliasEvent):
            self.aliases += 1
            if self.aliases > MAX_YAML_ALIASES:
                raise _Refused(f"more than {MAX_YAML_ALIASES} aliases")
        self.depth += 1
        try:
            if self.depth > MAX_YAML_DEPTH:
                raise _Refused(f"nested deeper than {MAX_YAML_DEPTH} levels")
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1

    def construct_mapping(self, node, deep=False):  # PyYAML's signature
        seen = set()
        for key, _ in node.value:
            if isinstance(key, yaml.ScalarNode) and key.value != "<<":
                if key.value in seen:
                    line = key.start_mark.line + 1
                    raise _Refused(f"line {line}: duplicate key '{key.value[:60]}'")
                seen.add(key.value)
        return super().construct_mapping(node, deep)


def read_yaml(path: str | Path) -> Any:
    """A YAML file's data (safe: no tags run, bounded size, depth and aliases, UTF-8,
    no duplicate keys); anything else is a one-line user error naming the file."""
    path = Path(path)
    try:
        with open(path, "rb") as f:  # at most one byte past the limit: /dev/zero ends too
            raw = f.read(MAX_YAML_BYTES + 1)
    except OSError as e:
        raise UserError(f"{path}: cannot read ({e.strerror})") from None
    if len(raw) > MAX_YAML_BYTES:
        raise UserError(f"{path}: larger than {MAX_YAML_BYTES >> 20} MiB; not a config file")
    try:
        # _LimitedLoader is a SafeLoader: no tag constructs an object.
        return yaml.load(raw.decode("utf-8"), Loader=_LimitedLoader)
    except UnicodeDecodeError as e:
        raise UserError(f"{path}: not UTF-8 text (byte {e.start})") from None
    except (_Refused, RecursionError) as e:
        raise UserError(f"{path}: {e or 'nested too deep'}") from None
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
    for key in data:
        if key in DIGESTS:
            raise UserError(f"{path}: {key}: set by wsolbench from the files read, not by a file")
    return {k: check_value(str(k), v, str(path)) for k, v in data.items()}


def make_run_id(method: str, dataset: str, identity: Mapping[str, Any], kind: str = "") -> str:
    """``<method>-<dataset>[-<kind>]-<digest>``: a stable id from every setting that
    changes the result and the protocol version, so a run under a newer protocol
    never finds an older one's record. Every run id is made here."""
    blob = json.dumps({**identity, "protocol": PROTOCOL_VERSION}, sort_keys=True, default=str)
    digest = hashlib.sha256(blob.encode()).hexdigest()[:10]
    return "-".join(part for part in (method, dataset, kind, digest) if part)


def build_config(
    given: Mapping[str, Any],
    recipe: Mapping[str, Any],
    method_options: Mapping[str, Any],
) -> RunConfig:
    """Merge user settings over the recipe's values over field defaults, and check
    the method options against what the method declares."""
    values = {name: recipe.get(name) for name in DATASET_DEFAULTED}
    values.update({k: check_value(k, v, "recipe") for k, v in recipe.items() if k in FIELDS})
    values.update(
        {k: check_value(k, v) for k, v in given.items() if v is not None and k != "options"}
    )
    values["options"] = resolve_options(given.get("options") or {}, method_options)
    missing = [n for n in DATASET_DEFAULTED if values[n] is None and n not in OPTIONAL_DEFAULTS]
    if missing:
        raise UserError(f"the recipe gives no value for {', '.join(missing)}; set it explicitly")
    return RunConfig.from_dict(values)


@dataclass(frozen=True)
class Option:
    """A method option: its default (whose type is the option's), what it does, and
    for numbers the closed range it must lie in."""

    default: Any
    help: str = ""
    low: float | None = None
    high: float | None = None

    def check(self, key: str, value: Any) -> Any:
        if type(value) is not type(self.default) and not (
            isinstance(self.default, float)
            and isinstance(value, int)
            and not isinstance(value, bool)
        ):
            kind = type(self.default).__name__
            raise UserError(f"options: {key} must be of type {kind}, got {short(value)}")
        if isinstance(value, float) and not math.isfinite(value):
            raise UserError(f"options: {key} must be a finite number, got {value}")
        if (self.low is not None and value < self.low) or (
            self.high is not None and value > self.high
        ):
            raise UserError(f"options: {key} must be in {self.range_text()}, got {short(value)}")
        return value

    def range_text(self) -> str:
        low = "-inf" if self.low is None else f"{self.low:g}"
        high = "inf" if self.high is None else f"{self.high:g}"
        return f"[{low}, {high}]"

    def describe(self) -> str:
        """Help text with the default and the range, for ``run METHOD --help``."""
        limits = (
            f", in {self.range_text()}" if self.low is not None or self.high is not None else ""
        )
        return f"{self.help} (default {self.default}{limits})".strip()


def as_option(declared: Any) -> Option:
    """A declared option: an ``Option``, or a bare default (an older plugin's)."""
    return declared if isinstance(declared, Option) else Option(declared)


def option_defaults(declared: Mapping[str, Any]) -> dict[str, Any]:
    return {k: as_option(v).default for k, v in declared.items()}


def resolve_options(given: Mapping[str, Any], declared: Mapping[str, Any]) -> dict[str, Any]:
    out = option_defaults(declared)
    for key, value in given.items():
        if key not in declared:
            known = ", ".join(declared) or "none"
            raise UserError(f"options: unknown option '{key}' for this method (known: {known})")
        out[key] = as_option(declared[key]).check(key, value)
    return out
