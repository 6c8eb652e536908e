"""The results store: one folder per run, files written atomically."""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import torch

from wsolbench.core.errors import UserError
from wsolbench.core.record import RunRecord

RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def atomic_write(path: Path, write: Callable[[IO[bytes]], None]) -> None:
    """Write to a temporary file beside ``path``, flush to disk, then rename over it,
    so readers see the old file or the new one, never a partial one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, data: Any) -> None:
    atomic_write(path, lambda f: f.write(json.dumps(data, indent=1, default=str).encode()))


def save_torch(path: Path, obj: Any) -> None:
    atomic_write(path, lambda f: torch.save(obj, f))


class Store:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def run_dir(self, run_id: str) -> Path:
        """The folder of a run; ids that could leave the store are refused."""
        if not RUN_ID.match(run_id) or ".." in run_id:
            raise UserError(f"run id '{run_id}' is not valid (letters, digits, . _ - only)")
        return self.root / run_id

    def record(self, run_id: str) -> RunRecord | None:
        path = self.run_dir(run_id) / "record.json"
        return read_record(path) if path.is_file() else None

    def records(self) -> list[RunRecord]:
        """Every finished run, derived by scanning (no shared index to corrupt)."""
        if not self.root.is_dir():
            return []
        return [read_record(p) for p in sorted(self.root.glob("*/record.json"))]

    def write_record(self, record: RunRecord) -> None:
        """Written last of a run's files: its presence means the run is done."""
        write_json(self.run_dir(record.run_id) / "record.json", record.to_dict())


def read_record(path: Path) -> RunRecord:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise UserError(f"{path}: not a readable run record ({e})") from None
    return RunRecord.from_dict(data, path)
