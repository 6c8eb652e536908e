"""One holder per piece of work: a lock file linked in whole (``os.link`` of a written
draft: atomic on local and network filesystems) that holds host, pid and start time,
and whose mtime a heartbeat thread refreshes. A lock whose holder is dead (same host)
or silent for longer than ``STALE_S`` is stale and taken over, so a killed run never
blocks its twin for good."""

from __future__ import annotations

import errno
import json
import os
import socket
import sys
import threading
import time
import uuid
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


def _draft(path: Path, token: str) -> Path:
    """One attempt's draft of the lock file, beside it."""
    return path.with_name(f".{path.name}.{token}")


def _try_take(path: Path, token: str) -> bool:
    """Write the holder to a draft, then link it in as the lock (atomic, fails if the
    lock exists): a lock file is never seen half-written, so one a signal interrupted
    is still whole, and its ``token`` says which attempt made it."""
    info = {"host": socket.gethostname(), "pid": os.getpid(), "since": time.time(), "token": token}
    draft = _draft(path, token)
    try:
        try:
            draft.write_text(json.dumps(info))
        except FileNotFoundError:  # the last holder removed the empty lock folder
            path.parent.mkdir(parents=True, exist_ok=True)
            draft.write_text(json.dumps(info))
        _link_or_create(draft, path, info)
    except FileExistsError:
        return False
    except OSError as e:  # a full disk or a read-only folder
        raise UserError(f"{path}: cannot take the lock ({e.strerror})") from None
    finally:
        draft.unlink(missing_ok=True)
    return True


def _link_or_create(draft: Path, path: Path, info: dict) -> None:
    """``os.link``; where the filesystem has no hard links (FAT, some SMB mounts), an
    exclusive create and a write, as atomic though not whole at once."""
    try:
        os.link(draft, path)
    except OSError as e:
        if e.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK):
            raise
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(info, f)
        except OSError:  # made but not written (a full disk): no empty lock is left
            path.unlink(missing_ok=True)
            raise


def _release(path: Path, token: str) -> None:
    """Remove the lock if this attempt took it (whatever interrupted taking it)."""
    _draft(path, token).unlink(missing_ok=True)
    holder = _holder(path)
    if holder and holder.get("token") == token:
        path.unlink(missing_ok=True)


def describe(holder: dict) -> str:
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(holder.get("since", 0)))
    return f"{holder.get('host')}, pid {holder.get('pid')}, since {since}"


def _acquire(path: Path, wait: bool, what: str, token: str) -> bool:
    """Take the lock; True if this process waited for another holder first."""
    waited = False
    while not _try_take(path, token):
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
    stop, token = threading.Event(), uuid.uuid4().hex
    try:  # one cleanup for every point a signal can land at, taking the lock included
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            waited = _acquire(path, wait, what, token)
        except OSError as e:
            raise UserError(f"{path.parent}: cannot create ({e.strerror})") from None
        threading.Thread(target=_heartbeat, args=(path, stop), daemon=True).start()
        yield not waited
    finally:
        stop.set()
        _release(path, token)
        remove_empty(list(dict.fromkeys([path.parent, *made])))  # the lock folder too


def _heartbeat(path: Path, stop: threading.Event) -> None:
    while not stop.wait(HEARTBEAT_S):
        try:
            os.utime(path)
        except OSError:
            return
