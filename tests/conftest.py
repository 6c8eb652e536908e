from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

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
