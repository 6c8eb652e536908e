"""The trivial task of ``wsolbench bench slurm``, in a module that imports nothing heavy,
so the measured time is the harness's (sbatch, scheduling, submitit), not torch's import."""

from __future__ import annotations

import time


def trivial(i: int) -> float:
    """Returns its own work in seconds (next to nothing)."""
    t0 = time.perf_counter()
    _ = sum(range(1000 + i))
    return time.perf_counter() - t0
