"""Scoring maps on every core while the model computes the next batch.

Box evaluation is CPU work; inference is GPU work. ``MapScorer`` hands each batch of
maps to a pool of worker processes and returns at once, so the next forward pass
overlaps the scoring. Each worker fills an empty copy of the split's accumulators
and sends back its counts, merged at the end (counts add, so the order batches
finish in does not matter). At most two batches per worker are in flight, so memory
stays bounded by the batch size, as when scoring inline.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from multiprocessing import get_context
from typing import Any, Protocol

from wsolbench.evaluation.metrics import MapBatch
from wsolbench.evaluation.scores import SplitScores
from wsolbench.evaluation.sharedbatch import Blocks, SharedBatch, close, share


class Loadable(Protocol):
    """Work that reads its own maps (files), so that reading runs on every core."""

    def load(self) -> tuple[MapBatch, Any]: ...


# Below this many map pixels a split is scored inline: starting workers (a second
# each) would cost more than they save. 1,000 maps of 224 x 224 is about 50M.
INLINE_PIXELS = 50_000_000
# The same where only MaxBoxAccV2's rule (and PxAP) runs: its boxes then cost about
# 0.5 ms a map, reading and hashing the file more. On 2 cores evaluate-maps took
# 12.7-13.3 s inline and 12.5-13.4 s with two workers at 5,000 such maps, 19.8-21.8
# and 19.3-20.8 s at 10,000, the pool with 1.5x the CPU: about 10,000 maps.
INLINE_PIXELS_CONTOUR_ONLY = 500_000_000


def available_cpus() -> int:
    """CPUs this process may use (a SLURM task's allocation, a container's limit)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def scoring_workers(
    requested: int | None, loader_workers: int, pixels: int, inline_below: int = INLINE_PIXELS
) -> int:
    """Worker processes for a split: ``requested`` when given, else the CPUs left to
    this process minus the data loader's workers (0: score inline, as below
    ``inline_below`` map pixels)."""
    if requested is not None:
        return requested
    if pixels < inline_below:
        return 0
    spare = available_cpus() - loader_workers
    return spare if spare >= 2 else 0


def _ready() -> None:
    """A worker's first task: load the compiled kernels, then hold the worker long
    enough that the next task goes to another one."""
    import time

    from wsolbench.evaluation import componenttree, histogram

    componenttree.warm_up()
    histogram.warm_up()
    time.sleep(0.3)


def score_batch(
    empty: SplitScores, batch: MapBatch | SharedBatch | Loadable
) -> tuple[SplitScores, dict]:
    """Feed one batch into ``empty``; returns it and the per-image values
    (``SplitScores.update``). A batch of files is read here first, in the worker, and
    what its ``load`` says of them is in the values under ``"files"``."""
    if isinstance(batch, MapBatch):
        return empty, empty.update(batch)
    if isinstance(batch, SharedBatch):
        maps, blocks = batch.open()
        try:
            return empty, empty.update(maps)
        finally:
            del maps
            close(blocks)
    maps, files = batch.load()
    return empty, {**empty.update(maps), "files": files}


class MapScorer:
    """Feed a split's accumulators batch by batch, inline or in ``workers`` processes;
    ``then`` (per batch) receives the per-image values once they are known."""

    def __init__(
        self, scores: SplitScores, workers: int = 0, pool: ProcessPoolExecutor | None = None
    ) -> None:
        """``pool``: workers started already (by ``start_workers``), kept open at close."""
        self.scores = scores
        self.pool, self.own_pool = pool, pool is None
        if pool is None and workers > 0:
            self.pool = start_workers(workers)
        self.pending: deque[tuple[Future, Callable | None, list]] = deque()
        self.workers = workers
        self.limit = 2 * max(workers, 1)
        self.blocks = Blocks()  # where batches wait for the workers

    def warm(self) -> None:
        """Start every worker and load its kernels now (benchmarks time what follows)."""
        if self.pool is not None:
            for future in [self.pool.submit(_ready) for _ in range(self.workers)]:
                future.result()

    def add(self, batch: MapBatch | Loadable, then: Callable[[dict], None] | None = None) -> None:
        if self.pool is None:
            _, values = score_batch(self.scores, batch)
            if then is not None:
                then(values)
            return
        while len(self.pending) >= self.limit:
            self._collect()
        blocks: list = []
        if isinstance(batch, MapBatch):
            batch, blocks = self._share(batch)
        future = self.pool.submit(score_batch, self.scores.empty_copy(), batch)
        self.pending.append((future, then, blocks))

    def _share(self, batch: MapBatch) -> tuple[MapBatch | SharedBatch, list]:
        """The batch through shared memory, or as it is (pickled through the pipe) where
        none can be had: a container's /dev/shm is often 64 MB."""
        try:
            return share(batch, self.blocks)
        except OSError:
            return batch, []

    def _collect(self) -> None:
        future, then, blocks = self.pending.popleft()
        try:
            part, values = future.result()
        finally:
            self.blocks.give_back(blocks)
        self.scores.merge(part)
        if then is not None:
            then(values)

    def close(self) -> SplitScores:
        """Wait for every batch; returns the split's accumulators with all counts."""
        try:
            self.drain()
        finally:
            if self.pool is not None and self.own_pool:
                self.pool.shutdown(cancel_futures=True)
            self.pending.clear()  # a batch failed: the rest were cancelled
            self.blocks.release()
        return self.scores

    def drain(self) -> SplitScores:
        """Wait for every batch, leaving the workers up (and no shared memory)."""
        while self.pending:
            self._collect()
        self.blocks.release()
        return self.scores


def start_workers(workers: int) -> ProcessPoolExecutor | None:
    """A pool of ``workers`` scoring processes to share between splits (None: 0)."""
    # spawn: the parent holds torch's threads, which fork would copy mid-state. The
    # command line imports nothing heavy until a command runs, so a spawned worker
    # re-importing the main module stays light.
    return ProcessPoolExecutor(workers, mp_context=get_context("spawn")) if workers else None
