"""sha256 digests of files: weights and checkpoints (a run's identity holds their
content, not their path) and a dataset's annotation files. Each file is hashed once
per size and mtime in a process: a sweep plans the same files for every run."""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

from wsolbench.core.errors import UserError


def file_digest(path: str | Path) -> str:
    """sha256 of a file, so that the same weights are the same run."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: checkpoint file not found")
    st = path.stat()
    return _sha256(str(path.resolve()), st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=4096)
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def files_digest(root: Path, patterns: tuple[str, ...]) -> str:
    """sha256 over the relative path and content digest of every file matching
    ``patterns`` under ``root``."""
    digest = hashlib.sha256()
    files = sorted({p for pattern in patterns for p in root.glob(pattern) if p.is_file()})
    for path in files:
        digest.update(f"{path.relative_to(root)}\0{file_digest(path)}\n".encode())
    return digest.hexdigest()
