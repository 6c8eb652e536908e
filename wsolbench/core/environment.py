"""What ran where: package versions, git commit, device."""

from __future__ import annotations

import platform
import subprocess
from importlib.metadata import PackageNotFoundError, version

import torch

from wsolbench.core.errors import UserError
from wsolbench.core.paths import SOURCE_DIR

PACKAGES = ("wsolbench", "torch", "torchvision", "timm", "numpy", "scipy", "opencv-python-headless")


def _version(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def git_commit() -> dict[str, str | bool]:
    """Commit of the wsolbench source tree, and whether it had local changes."""
    src = SOURCE_DIR
    try:
        head = subprocess.run(
            ["git", "-C", str(src), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10
        )
        dirty = subprocess.run(
            ["git", "-C", str(src), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return {"commit": "unknown", "dirty": False}
    if head.returncode != 0:
        return {"commit": "unknown", "dirty": False}
    return {"commit": head.stdout.strip(), "dirty": bool(dirty.stdout.strip())}


def describe_device(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def environment(device: torch.device) -> dict:
    return {
        "python": platform.python_version(),
        "packages": {p: _version(p) for p in PACKAGES},
        "git": git_commit(),
        "device": describe_device(device),
        "host": platform.node(),
    }


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"device: '{name}' asked for, but no CUDA device is available")
    try:
        return torch.device(name)
    except RuntimeError:
        raise UserError(f"device: '{name}' is not a device name") from None
