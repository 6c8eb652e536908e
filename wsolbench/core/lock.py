"""One holder per piece of work: a lock file made with O_EXCL (atomic on local and
network filesystems) that holds host, pid and start time, and whose mtime a heartbeat
thread refreshes. A lock whose holder is dead (same host) or silent for longer than
``STALE_S`` is stale and taken over, so a killed run never blocks its twin for good."""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from wsolbench.core.errors import UserError
from wsolbench.core.paths import missing_folders, remove_empty

HEARTBEAT_S = 30.0
STALE_S = 600.0  # twenty missed heartbeats
POLL_S = 1.0


def _holder(path: Path) -> dict | None:
    """Who holds the lock (None: nobody, or a lock file being written or removed)."""
    try:
        data = json.loads(path.read_text())
        age = time.time() - path.stat().st_mtime
    except (OSError, ValueError):
        return None
    return {**data, "silent_s": age} if isinstance(data, dict) else None


def _alive(holder: dict) -> bool:
    if holder["silent_s"] > STALE_S:
        return False
    if holder.get("host") != socket.gethostname():
        return True  # another machine's process: only its heartbeat tells
    try:
        os.kill(int(holder.get("pid", 0)), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, ValueError):
        return True
    return True


def _try_take(path: Path) -> bool:
    try:
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
        except FileNotFoundError:  # the last holder removed the empty lock folder
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
    except FileExistsError:
        return False
    except OSError as e:
        raise UserError(f"{path}: cannot take the lock ({e.strerror})") from None
    info = {"host": socket.gethostname(), "pid": os.getpid(), "since": time.time()}
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(info, f)
    except OSError as e:  # a full disk lets the file be made, not written
        path.unlink(missing_ok=True)
        raise UserError(f"{path}: cannot take the lock ({e.strerror})") from None
    return True


def describe(holder: dict) -> str:
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(holder.get("since", 0)))
    return f"{holder.get('host')}, pid {holder.get('pid')}, since {since}"


def _acquire(path: Path, wait: bool, what: str) -> bool:
    """Take the lock; True if this process waited for another holder first."""
    waited = False
    while not _try_take(path):
        holder = _holder(path)
        if holder is not None and not _alive(holder):
            path.unlink(missing_ok=True)  # stale: its holder died; take it over
            continue
        if holder is not None and not wait:
            raise UserError(f"{what} is running elsewhere ({describe(holder)})")
        if holder is not None and not waited:
            print(f"wsolbench: waiting: {what} is running ({describe(holder)})", file=sys.stderr)
        waited = True
        time.sleep(POLL_S)
    return waited


@contextmanager
def held(path: Path, wait: bool = True, what: str = "this work") -> Iterator[bool]:
    """Hold ``path`` for the block. Yields True if the lock was free at once, False if
    this process waited for another holder first (who may have finished the work).
    ``wait=False``: a live holder is a one-line error naming it. The folders made to
    hold the lock go again when they are left empty."""
    made = missing_folders(path.parent)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        waited = _acquire(path, wait, what)
    except OSError as e:
        remove_empty(made)
        raise UserError(f"{path.parent}: cannot create ({e.strerror})") from None
    except BaseException:
        remove_empty(made)
        raise
    stop = threading.Event()
    threading.Thread(target=_heartbeat, args=(path, stop), daemon=True).start()
    try:
        yield not waited
    finally:
        stop.set()
        path.unlink(missing_ok=True)
        remove_empty(list(dict.fromkeys([path.parent, *made])))  # the lock folder too


def _heartbeat(path: Path, stop: threading.Event) -> None:
    while not stop.wait(HEARTBEAT_S):
        try:
            os.utime(path)
        except OSError:
            return
