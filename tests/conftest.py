from __future__ import annotations

import os

# No test reaches the Hugging Face hub: weights come from caches the tests write.
os.environ["HF_HUB_OFFLINE"] = "1"
import subprocess
import sys
from pathlib import Path

import pytest

from wsolbench.core.config import RunConfig, build_config
from wsolbench.core.registry import METHODS

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def cli(tmp_path):
    """Run the real `wsolbench` command; returns (exit code, stdout, stderr)."""

    def run(*args: str, cwd: Path | None = None, env: dict | None = None):
        proc = subprocess.run(
            [sys.executable, "-m", "wsolbench.cli", *args],
            capture_output=True,
            text=True,
            cwd=cwd or tmp_path,
            env={**os.environ, "TQDM_DISABLE": "1", **(env or {})},
            timeout=900,
        )
        return proc.returncode, proc.stdout, proc.stderr

    return run


MICRO_RECIPE = {
    "backbone": "wsolbench_vit_micro_patch8_64",
    "lambda": 0.2,
    "batch_size": 4,
    "epochs": 1,
    "lr": 1e-3,
    "loss_delay": 0.0,
    "loss_ramp": 0.0,
}


def micro_config(method: str = "sat", **given) -> RunConfig:
    """A run config on the small synthetic backbone, without loading any data."""
    return build_config({"method": method, **given}, MICRO_RECIPE, METHODS.get(method).options)


@pytest.fixture
def empty_datasets(tmp_path, monkeypatch):
    """WSOLBENCH_DATA with an empty folder per real dataset: enough to plan runs (the
    annotation digest of no files), never to load them."""
    root = tmp_path / "empty-data"
    for name in ("cub", "imagenet", "openimages", "wsol"):
        (root / name).mkdir(parents=True)
    monkeypatch.setenv("WSOLBENCH_DATA", str(root))
    return root
