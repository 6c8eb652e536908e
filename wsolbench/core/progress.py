"""Progress of one phase (a training epoch, scoring a split). On a terminal: a bar
per batch. Anywhere else (SLURM logs, CI, pipes): no bar lines, one line when the
phase ends, with its images/s, the numbers it was given (the loss) and, when the
caller says how many like it follow, the time left."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")


def on_terminal() -> bool:
    return sys.stderr.isatty()


class Phase(Iterable[T]):
    """Iterate ``items`` (batches); ``count(n)`` adds images, ``show(**numbers)`` the
    numbers to print. ``after``: phases of the same length still to come."""

    def __init__(self, items: Iterable[T], desc: str, unit: str = "batch", after: int = 0) -> None:
        self.items, self.desc, self.unit, self.after = items, desc, unit, after
        self.images, self.numbers = 0, {}
        self.bar = None
        if on_terminal():
            from tqdm import tqdm

            self.bar = tqdm(items, desc=desc, unit=unit, leave=False, dynamic_ncols=True)

    def __iter__(self) -> Iterator[T]:
        t0 = time.perf_counter()
        steps = 0
        for item in self.bar if self.bar is not None else self.items:
            steps += 1
            yield item
        if self.bar is None:
            print(self.line(steps, time.perf_counter() - t0), file=sys.stderr, flush=True)

    def count(self, images: int) -> None:
        self.images += images

    def show(self, **numbers: Any) -> None:
        self.numbers = numbers
        if self.bar is not None:
            self.bar.set_postfix(numbers)

    def line(self, steps: int, seconds: float) -> str:
        """``train 2/3: 150 batches, 12.4 s, 96.8 images/s, loss 0.512, about 12 s left``"""
        parts = [f"{steps} {self.unit}{'es' if self.unit.endswith('h') else 's'}"]
        parts.append(f"{seconds:.1f} s")
        if self.images:
            parts.append(f"{self.images / max(seconds, 1e-9):.1f} images/s")
        parts += [f"{k} {v}" for k, v in self.numbers.items()]
        if self.after:
            parts.append(f"about {seconds * self.after:.0f} s left")
        return f"{self.desc}: {', '.join(parts)}"


def say(line: str) -> None:
    """One progress line on stderr, at once (logs and pipes too): a phase starting or
    done, so a run is never silent for long."""
    print(line, file=sys.stderr, flush=True)
