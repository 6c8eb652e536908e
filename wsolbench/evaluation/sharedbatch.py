"""A batch's map arrays handed to a scoring worker through shared memory: written once
by the parent, read in place by the worker. Pickled through the pool's pipe, 1,000
maps of 224x224 cost the parent about 0.7 s of CPU (copies and pipe writes), taken
from the workers on a machine whose cores they fill."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from multiprocessing.shared_memory import SharedMemory

import numpy as np

from wsolbench.evaluation.metrics import MapBatch

FIELDS = ("maps", "masks")  # the batch's large arrays; boxes and scores are small


@dataclass
class SharedBatch:
    """A ``MapBatch`` without its ``FIELDS``, and where each of them waits:
    field -> (shared memory block's name, shape, dtype)."""

    rest: MapBatch
    arrays: dict[str, tuple[str, tuple[int, ...], str]]

    def open(self) -> tuple[MapBatch, list[SharedMemory]]:
        """The batch with its arrays read in place, and the blocks to close after."""
        blocks = [SharedMemory(name=name) for name, _, _ in self.arrays.values()]
        views = {
            field: np.ndarray(shape, np.dtype(dtype), buffer=block.buf)
            for (field, (_, shape, dtype)), block in zip(self.arrays.items(), blocks, strict=True)
        }
        return dataclasses.replace(self.rest, **views), blocks


class Blocks:
    """The parent's shared memory blocks, reused from batch to batch: a fresh block's
    pages are faulted in and zeroed on first write, 18 ms per 10 MB batch here, as
    much as the copy saved. Removed by ``release``."""

    def __init__(self) -> None:
        self.free: dict[int, list[SharedMemory]] = {}
        self.made: list[SharedMemory] = []

    def take(self, size: int) -> SharedMemory:
        if self.free.get(size):
            return self.free[size].pop()
        block = SharedMemory(create=True, size=size)
        self.made.append(block)
        return block

    def give_back(self, blocks: list[SharedMemory]) -> None:
        """Blocks a worker has finished reading."""
        for block in blocks:
            self.free.setdefault(block.size, []).append(block)

    def release(self) -> None:
        """Every block, closed and removed."""
        for block in self.made:
            block.close()
            block.unlink()
        self.free, self.made = {}, []


def share(batch: MapBatch, blocks: Blocks) -> tuple[SharedBatch, list[SharedMemory]]:
    """``batch`` with its large arrays copied into shared memory blocks, and the
    blocks it holds (given back once the worker is done). OSError: no room."""
    arrays, held = {}, []
    try:
        for field in FIELDS:
            a = getattr(batch, field)
            if a is None or a.nbytes == 0:
                continue
            block = blocks.take(a.nbytes)
            held.append(block)
            np.ndarray(a.shape, a.dtype, buffer=block.buf)[...] = a
            arrays[field] = (block.name, a.shape, a.dtype.str)
    except OSError:  # no room for the next block: the ones taken go back first
        blocks.give_back(held)
        raise
    return SharedBatch(dataclasses.replace(batch, **dict.fromkeys(arrays)), arrays), held


def close(blocks: list[SharedMemory]) -> None:
    """A worker's handles, closed; one still read by a live array stays open until
    that array goes (closing it would pull the memory from under it)."""
    for block in blocks:
        try:
            block.close()
        except BufferError:
            pass
