"""K images per class, drawn with the run seed."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from wsolbench.core.errors import UserError


def kshot_indices(labels: Sequence[int], k: int, seed: int) -> list[int]:
    """Indices of ``k`` images per class: the same for the same seed, and never more
    than a class has (that is an error)."""
    labels = np.asarray(labels)
    classes, counts = np.unique(labels, return_counts=True)
    if counts.min() < k:
        c = int(classes[np.argmin(counts)])
        raise UserError(f"kshot: {k} is more than class {c} has ({counts.min()} training images)")
    rng = np.random.default_rng([seed, 0x6B53])
    chosen = [rng.choice(np.flatnonzero(labels == c), size=k, replace=False) for c in classes]
    return sorted(int(i) for i in np.concatenate(chosen))


def held_out_indices(labels: Sequence[int], per_class: int, seed: int) -> list[int]:
    """Up to ``per_class`` images of each class (at most half of it), drawn with a
    fixed seed so every run holds out the same images."""
    labels = np.asarray(labels)
    rng = np.random.default_rng([seed, 0x7641])
    chosen = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        chosen.append(rng.choice(members, size=min(per_class, len(members) // 2), replace=False))
    return sorted(int(i) for i in np.concatenate(chosen))
