"""Scoring in worker processes gives exactly what scoring inline gives."""

import numpy as np

from wsolbench.evaluation.maps import maps_workers
from wsolbench.evaluation.metrics import MapBatch
from wsolbench.evaluation.pool import MapScorer, scoring_workers
from wsolbench.evaluation.scores import SplitScores, TrivialBoxes
from wsolbench.evaluation.summary import summarize


def batches(n_batches: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:48, 0:48]
    for _ in range(n_batches):
        b = 16
        centre = rng.uniform(8, 40, (b, 2))
        maps = np.exp(-((xx - centre[:, :1, None]) ** 2 + (yy - centre[:, 1:, None]) ** 2) / 60)
        maps = (maps + 0.3 * rng.random((b, 48, 48))).astype(np.float32)
        maps = (maps - maps.min((1, 2), keepdims=True)) / np.ptp(maps, (1, 2), keepdims=True)
        gts = [np.array([[c[0] - 8, c[1] - 8, c[0] + 8, c[1] + 8]]) for c in centre]
        masks = (maps > 0.6).astype(np.uint8)
        scores = rng.random((b, 10))
        yield MapBatch(maps, gts, masks, scores, rng.integers(0, 10, b))


def fresh() -> SplitScores:
    from wsolbench.evaluation.metrics import PixelAP, Polarity

    return SplitScores(
        pixel=PixelAP(), polarity=Polarity(), trivial=TrivialBoxes((48, 48), (16, 16))
    )


def test_workers_count_exactly_what_inline_scoring_counts():
    inline, pooled = MapScorer(fresh(), 0), MapScorer(fresh(), 2)
    seen_inline, seen_pooled = [], []
    for batch in batches(12):
        inline.add(batch, seen_inline.append)
        pooled.add(batch, seen_pooled.append)
    a, b = inline.close(), pooled.close()
    for name in ("cls", "box", "maxbox", "pixel", "polarity", "trivial"):
        for key, value in getattr(a, name).state.items():
            np.testing.assert_array_equal(getattr(b, name).state[key], value, err_msg=name)
    assert a.box.state["n"] == 12 * 16
    # Every image's values come back (IoU curves, hits, histograms), in submission order.
    assert len(seen_pooled) == 12 and sorted(seen_pooled[0]) == ["box", "maxbox", "pixel"]
    for key in ("box", "maxbox", "pixel"):
        pooled_rows = np.concatenate([v[key] for v in seen_pooled])
        assert len(pooled_rows) == 12 * 16
        np.testing.assert_array_equal(pooled_rows, np.concatenate([v[key] for v in seen_inline]))
    assert summarize(None, b, "test")["metrics"] == summarize(None, a, "test")["metrics"]


def test_small_splits_are_scored_inline():
    assert scoring_workers(None, 0, 600 * 64 * 64) == 0
    assert scoring_workers(3, 0, 10) == 3  # asked for: given


def test_evaluate_maps_starts_workers_only_where_they_pay():
    """Measured (docs/benchmarks.md): with MaxBoxAccV2's rule alone 5,000 and 10,000
    maps took as long inline as with two workers, the pool with 1.5x the CPU: inline
    below 10,000; with the authors' rule too a map costs far more, so 2,000 go to it."""
    pool = scoring_workers(None, 0, 10**12)  # what a large split gets on this machine
    assert maps_workers(None, 2000, (224, 224), authors_rule=False) == 0
    assert maps_workers(None, 2000, (224, 224), authors_rule=True) == pool
    assert maps_workers(None, 5000, (224, 224), authors_rule=False) == 0
    assert maps_workers(None, 10000, (224, 224), authors_rule=False) == pool
    assert maps_workers(1, 10, (224, 224), authors_rule=False) == 1  # asked for: given


def test_batches_reach_the_workers_through_shared_memory_and_none_is_left(monkeypatch):
    """The workers read the maps in place (shared memory blocks, reused from batch to
    batch); every block is removed at the end, also when a batch fails. (Only this
    test's blocks are looked for: other tests' pools may have theirs meanwhile.)"""
    import os

    import pytest

    from wsolbench.evaluation import sharedbatch

    made = []
    take = sharedbatch.Blocks.take

    def counting(self, size):
        block = take(self, size)
        made.append(block.name)
        return block

    def left() -> set[str]:
        return {name.lstrip("/") for name in made} & set(os.listdir("/dev/shm"))

    monkeypatch.setattr(sharedbatch.Blocks, "take", counting)
    pooled = MapScorer(fresh(), 2)
    for batch in batches(8):
        pooled.add(batch)
    assert left()  # in use while batches are in flight
    pooled.close()
    # Maps and masks of 8 batches, at most 4 in flight: blocks taken 16 times, reused.
    assert len(made) == 16 and len(set(made)) < 16
    assert left() == set()

    made.clear()
    failing = MapScorer(fresh(), 2)
    good, bad = next(batches(1)), next(batches(1, seed=1))
    failing.add(good)
    failing.add(MapBatch(bad.maps, bad.boxes[:1], bad.masks))  # one box list for 16 maps
    with pytest.raises(ValueError, match="shorter"):  # raised in the worker
        failing.close()
    assert len(made) == 4 and left() == set()


def test_without_room_in_shared_memory_batches_go_through_the_pipe(monkeypatch):
    """A container's /dev/shm is often 64 MB: when a block cannot be made (here the
    masks' block, after the maps' one was), the batch is sent as it is and counts the
    same; the block taken is given back, and none is left."""
    import os

    from wsolbench.evaluation import sharedbatch

    take, made = sharedbatch.Blocks.take, []

    def full_after_one(self, size):
        if made:
            raise OSError(28, "No space left on device")
        made.append(take(self, size).name)
        return self.made[-1]

    monkeypatch.setattr(sharedbatch.Blocks, "take", full_after_one)
    inline, pooled = MapScorer(fresh(), 0), MapScorer(fresh(), 2)
    for batch in batches(3):
        inline.add(batch)
        pooled.add(batch)
    a, b = inline.close(), pooled.close()
    for name in ("box", "maxbox", "pixel"):
        for key, value in getattr(a, name).state.items():
            np.testing.assert_array_equal(getattr(b, name).state[key], value, err_msg=name)
    assert len(made) == 1 and not set(made) & set(os.listdir("/dev/shm"))
