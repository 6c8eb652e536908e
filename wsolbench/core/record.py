"""The run record: what ``run``, ``evaluate`` and ``evaluate-maps`` write as
``record.json`` and what every reader gets back, checked, as a ``RunRecord``.

Schema 1 is the record as written since protocol 2; records written before the
schema was stamped carry no ``schema`` field and read as schema 1 (their fields
are a subset). Fields a kind of run does not have stay None and are not written.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from wsolbench.core.errors import UserError

SCHEMA_VERSION = 1

# Written only when set: runs have the first seven, evaluate-maps the last two.
KIND_FIELDS = (
    "frozen_percent",
    "class_aware",
    "pretrained",
    "history",
    "resumed_from_epoch",
    "timing",
    "per_image",
    "maps",
    "notes",
    "param_groups",
    "recipe",
    "network",
)

# field -> the JSON types it may hold (None is allowed for every optional field)
_TYPES: dict[str, tuple[type, ...]] = {
    "run_id": (str,),
    "method": (str,),
    "dataset": (str,),
    "config": (dict,),
    "metrics": (dict,),
    "mode": (str,),
    "seed": (int,),
    "protocol": (dict,),
    "threshold": (dict,),
    "curve": (dict,),
    "data": (dict,),
    "frozen_percent": (int, float),
    "class_aware": (bool,),
    "pretrained": (dict,),
    "history": (list,),
    "resumed_from_epoch": (int,),
    "timing": (dict,),
    "per_image": (dict,),
    "maps": (dict,),
    "notes": (list,),
    "param_groups": (list,),
    "recipe": (dict,),
    "network": (dict,),
    "wall_time_s": (int, float),
    "environment": (dict,),
    "finished": (str,),
    "schema": (int,),
}


@dataclass(frozen=True)
class RunRecord:
    """One finished run (or scored folder of maps)."""

    run_id: str
    method: str
    dataset: str
    config: dict[str, Any]
    metrics: dict[str, float]
    mode: str | None = None  # train+evaluate | evaluate | evaluate-maps
    seed: int | None = None
    protocol: dict | None = None  # the rules in words, the frame, the version
    threshold: dict | None = None  # GT-known's box threshold and the split it was picked on
    curve: dict | None = None  # GT-known per threshold, val and test
    data: dict | None = None  # image counts, sources, k-shot ids
    frozen_percent: float | None = None
    class_aware: bool | None = None
    pretrained: dict | None = None  # starting weights: source, sha256, path
    history: list | None = None  # per-epoch training log
    resumed_from_epoch: int | None = None
    timing: dict | None = None
    per_image: dict | None = None  # the per_image.npz beside the record
    maps: dict | None = None  # evaluate-maps: folder, sha256 per split, manifest
    notes: list | None = None
    param_groups: list | None = None  # the optimizer's groups: size, lr, weight decay
    recipe: dict | None = None  # the recipe: name, trust, each value's source, overrides
    network: dict | None = None  # the network built: its class, what it follows, size
    wall_time_s: float | None = None
    environment: dict | None = None  # package versions, git commit, device
    finished: str | None = None
    schema: int = SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        """The JSON object written: every field records have always carried (null
        when empty, e.g. no threshold without boxes), and the fields of one kind of
        run only where this record has them."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        return {k: v for k, v in out.items() if v is not None or k not in KIND_FIELDS}

    @classmethod
    def from_dict(cls, data: Any, source: str | Path = "record") -> RunRecord:
        """Check a record's fields and types; one line naming the file and field when
        something is wrong."""
        if not isinstance(data, dict):
            raise UserError(f"{source}: a run record must be a JSON object")
        for key, value in data.items():
            if key not in _TYPES:
                raise UserError(f"{source}: {key}: not a run record field")
            if value is not None and not _is(value, _TYPES[key]):
                kinds = " or ".join(t.__name__ for t in _TYPES[key])
                raise UserError(f"{source}: {key}: must be {kinds}, got {type(value).__name__}")
        missing = [f.name for f in fields(cls)[:5] if f.name not in data]
        if missing:
            raise UserError(f"{source}: {missing[0]}: missing")
        if data.get("schema", SCHEMA_VERSION) > SCHEMA_VERSION:
            raise UserError(
                f"{source}: schema {data['schema']} is newer than this wsolbench reads "
                f"({SCHEMA_VERSION}); upgrade wsolbench"
            )
        return cls(**{"schema": SCHEMA_VERSION, **data})

    @property
    def protocol_version(self) -> str:
        """Records from before the version was recorded are protocol 1."""
        return str((self.protocol or {}).get("version", "1"))


def _is(value: Any, kinds: tuple[type, ...]) -> bool:
    if isinstance(value, bool) and bool not in kinds:
        return False  # JSON true is no number here
    return isinstance(value, kinds)
