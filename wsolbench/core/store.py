"""The results store: one folder per run, files written atomically."""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import torch

from wsolbench.core.errors import UserError
from wsolbench.core.paths import missing_folders, remove_empty
from wsolbench.core.record import RunRecord

RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


# Files get the permissions the umask allows (group-readable on a shared cluster store),
# not mkstemp's 0600. Read once: os.umask can only be read by setting it.
_UMASK = os.umask(0o022)
os.umask(_UMASK)


def atomic_write(path: Path, write: Callable[[IO[bytes]], None]) -> None:
    """Write to a temporary file beside ``path``, flush to disk, then rename over it,
    so readers see the old file or the new one, never a partial one. A folder that
    cannot be written (read-only, full, a file where a folder should be) is a one-line
    error naming the path, and nothing is left behind."""
    made = missing_folders(path.parent)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:
        remove_empty(made)
        raise UserError(f"{path.parent}: cannot write there ({e.strerror})") from None
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        remove_empty(made)  # the folders this write made go with it
        if isinstance(e, OSError):
            raise UserError(f"{path}: cannot write ({e.strerror})") from None
        raise


def write_json(path: Path, data: Any) -> None:
    """Strict JSON (no NaN or Infinity, which JSON does not have), atomically."""
    try:
        text = json.dumps(data, indent=1, default=str, allow_nan=False)
    except ValueError:
        raise UserError(f"{path}: a value is NaN or infinite; not written") from None
    atomic_write(path, lambda f: f.write(text.encode()))


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

    def lock_path(self, run_id: str) -> Path:
        """The lock of a run (or a scored folder of maps) while it is being made; kept
        beside the runs, so taking it creates no run folder."""
        self.run_dir(run_id)  # the id is checked
        return self.root / ".locks" / f"{run_id}.lock"

    def record(self, run_id: str) -> RunRecord | None:
        path = self.run_dir(run_id) / "record.json"
        return store_record(path) if path.is_file() else None

    def records(self) -> list[RunRecord]:
        """Every finished run, derived by scanning (no shared index to corrupt). A record
        that cannot be read is skipped with a one-line warning naming it."""
        if not self.root.is_dir():
            return []
        out = []
        for path in sorted(self.root.glob("*/record.json")):
            try:
                out.append(store_record(path))
            except UserError as e:
                print(f"wsolbench: warning: skipped: {e.one_line()}", file=sys.stderr)
        return out

    def disk_state(self, run_id: str) -> tuple[str | None, str | None]:
        """What the run's folder says of it: ``done``, ``corrupt`` (a record that
        cannot be read), ``failed`` (with its error's last line), ``interrupted`` (a
        checkpoint to resume), or None (nothing yet); the scheduler and the locks
        say the rest."""
        folder = self.run_dir(run_id)
        if (folder / "record.json").is_file():
            try:
                store_record(folder / "record.json")
            except UserError:
                return "corrupt", None
            return "done", None
        if (folder / "error.txt").is_file():
            return "failed", last_line(folder / "error.txt")
        if (folder / "checkpoint.pt").is_file():
            return "interrupted", None
        return None, None

    def write_record(self, record: RunRecord) -> None:
        """Written last of a run's files: its presence means the run is done."""
        write_json(self.run_dir(record.run_id) / "record.json", record.to_dict())


def read_record(path: Path) -> RunRecord:
    """A run's record, checked."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise UserError(f"{path}: not a readable run record ({type(e).__name__})") from None
    return RunRecord.from_dict(data, path)


def store_record(path: Path) -> RunRecord:
    """A record of the store: it must name the folder it lies in (one claiming another
    id, ``../../etc`` say, is not that run's)."""
    record = read_record(path)
    if record.run_id != path.parent.name:
        raise UserError(f"{path}: run_id '{record.run_id[:80]}' is not its folder's name")
    return record


def last_line(path: Path) -> str | None:
    """A text file's last non-blank line (an error's message, a log's end)."""
    if not path.is_file():
        return None
    lines = [ln.strip() for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    return lines[-1] if lines else None


def read_jobs(path: Path) -> dict[str, dict]:
    """A sweep's ``jobs.jsonl``: the latest submission of each run id. A line cut short
    (a submission killed mid-write) is skipped with a one-line warning naming it."""
    if not path.is_file():
        return {}
    latest: dict[str, dict] = {}
    for n, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
            latest[entry["run_id"]] = entry
        except (ValueError, KeyError, TypeError):
            print(f"wsolbench: warning: {path}:{n}: not a job entry; skipped", file=sys.stderr)
    return latest


def results_root(path: str | None, must_exist: bool = False) -> Path:
    """``--results`` (default ./results). ``must_exist``: a reader's store; a folder
    that is not there is a one-line error, not an empty table."""
    root = Path(path) if path else Path("results")
    if must_exist and path and not root.is_dir():
        raise UserError(f"--results {root}: no such folder")
    return root
