from collections import Counter

import pytest
import torch

from wsolbench.core.registry import DATASETS
from wsolbench.data.splits import WSOLSplit


@pytest.fixture(scope="module")
def splits():
    return DATASETS.get("synthetic")().load(None)


def test_generation_is_deterministic(splits):
    again = DATASETS.get("synthetic")().load(None)
    assert torch.equal(splits.test.images, again.test.images)
    assert splits.test.labels == again.test.labels
    assert not torch.equal(splits.val.images[:10], splits.test.images[:10])


def test_box_is_the_tight_box_of_the_mask(splits):
    for i in range(0, 600, 37):
        ys, xs = torch.nonzero(splits.test.masks[i], as_tuple=True)
        want = [xs.min(), ys.min(), xs.max(), ys.max()]
        assert splits.test.boxes[i].tolist() == [float(v) for v in want]
        item = splits.test[i]
        assert item["image"].shape == (3, 64, 64) and item["mask"].sum() == len(xs)


def test_box_sizes_from_annotations_equal_loading_every_item(splits):
    assert torch.equal(splits.val.box_sizes(), WSOLSplit.box_sizes(splits.val))


def test_classes_are_balanced(splits):
    assert Counter(splits.train.labels) == {c: 400 for c in range(6)}
    assert Counter(splits.test.labels) == {c: 100 for c in range(6)}


def test_drawn_splits_are_kept_between_processes(tmp_path, monkeypatch):
    """The cache holds exactly what drawing gives; a truncated file is drawn again and
    rewritten; a folder that cannot be written costs nothing but the cache."""
    import importlib

    syn = importlib.import_module("wsolbench.datasets.synthetic")
    monkeypatch.setenv("WSOLBENCH_CACHE", str(tmp_path / "cache"))
    fresh = syn._draw_split("val", 3, None)
    syn._drawn.cache_clear()
    first = syn._drawn("val", 3, None)
    path = syn.cache_file("val", 3, None)
    assert path.is_file() and path.parent == tmp_path / "cache" / "synthetic"
    syn._drawn.cache_clear()
    read = syn._drawn("val", 3, None)
    for got in (first, read):
        assert got[0] == fresh[0]
        assert all(torch.equal(a, b) for a, b in zip(got[1:], fresh[1:], strict=True))
    path.write_bytes(path.read_bytes()[:100])  # truncated
    syn._drawn.cache_clear()
    assert torch.equal(syn._drawn("val", 3, None)[1], fresh[1]) and path.stat().st_size > 100
    (tmp_path / "file").write_text("not a folder")
    monkeypatch.setenv("WSOLBENCH_CACHE", str(tmp_path / "file"))
    syn._drawn.cache_clear()
    assert torch.equal(syn._drawn("val", 3, None)[1], fresh[1])
    syn._drawn.cache_clear()
