"""What a wsolbench process does once, while it loads torch, timm and the plugins."""

from __future__ import annotations

import gc
import sys
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cyclic collector paused while the heavy modules load, then everything
    loaded so far frozen (never scanned again). Loading torch, timm and the plugins
    makes about half a million objects, and the collector scanned them over and over
    as they came: 1.5-3 s of a 7-12 s start. Only in a process that has not loaded
    torch yet, so a caller's own objects (a test's, a notebook's) are never frozen."""
    if "torch" in sys.modules or not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.enable()
