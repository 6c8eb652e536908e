"""Real-dataset plugins read miniature copies in their own file formats."""

import shutil

import numpy as np
import pytest
import torch
from miniature import WNIDS, layout, make_cub, make_imagenet, make_openimages, write_metadata

from wsolbench.core.config import build_config
from wsolbench.core.errors import UserError
from wsolbench.core.registry import DATASETS, METHODS
from wsolbench.data.imagefiles import IGNORE
from wsolbench.data.imaging import boxes_to_frame, centre_frame


def load(name, root, **given):
    plugin = DATASETS.get(name)()
    cfg = build_config(
        {"method": "sat", "dataset": name, "data_root": str(root), **given},
        plugin.defaults,
        METHODS.get("sat").options,
    )
    return plugin.load(cfg)


def test_cub_splits_labels_boxes_and_masks(tmp_path):
    splits = load("cub", make_cub(tmp_path))
    assert splits.num_classes == 3 and splits.image_size == (224, 224)
    # 4 training images per class, half held out for threshold selection.
    assert len(splits.train) == 6 and len(splits.val) == 6 and len(splits.test) == 6
    assert not set(splits.train.image_ids) & set(splits.val.image_ids)
    assert "held out" in splits.val_source
    assert sorted(splits.test.labels) == [0, 0, 1, 1, 2, 2]
    # The first test image: class 0, 5th of its class in layout(6).
    label, w, h, (x0, y0, x1, y1) = layout(6)[4]
    item = splits.test[0]
    assert item["label"] == label
    expected = boxes_to_frame(np.array([[x0, y0, x1 + 1, y1 + 1]], float), centre_frame(w, h))
    assert item["boxes"].tolist() == expected.tolist()
    # The segmentation mask covers the box: its extent matches to within a pixel.
    ys, xs = np.nonzero(item["mask"].numpy())
    assert np.abs(np.array([xs.min(), ys.min(), xs.max(), ys.max()]) - expected[0]).max() <= 1
    assert splits.test.has_masks and not splits.train.has_masks


def test_cub_tarball_folder_and_benchmark_val_metadata(tmp_path):
    make_cub(tmp_path / "x")
    (tmp_path / "cub").mkdir()
    shutil.move(tmp_path / "x" / "cub", tmp_path / "cub" / "CUB_200_2011")
    rel = "001.Bird_0/extra.jpg"
    shutil.copy(
        next((tmp_path / "cub/CUB_200_2011/images/001.Bird_0").iterdir()),
        tmp_path / "cub/CUB_200_2011/images" / rel,
    )
    write_metadata(tmp_path / "cub/CUB_200_2011/metadata/val", [(rel, 0, 40, 32, ["4,6,23,21"])])
    splits = load("cub", tmp_path)
    assert splits.val.image_ids == [rel] and "train-fullsup" in splits.val_source
    assert len(splits.train) == 12  # nothing held out


def imagenet_test_items(root):
    splits = load("imagenet", root, threshold_on="test")
    return splits, [(s["label"], s["boxes"].tolist()) for s in splits.test]


@pytest.mark.parametrize("source", ["csv", "val_gt", "metadata"])
def test_imagenet_box_sources_agree_with_devkit_xml(tmp_path, source):
    ref_splits, ref = imagenet_test_items(make_imagenet(tmp_path / "xml", "xml"))
    splits, got = imagenet_test_items(make_imagenet(tmp_path / source, source))
    assert got == ref
    assert len(ref[0][1]) == 2  # several boxes on one image
    assert [label for label, _ in ref] == [0, 0, 1, 1, 2, 2]
    assert splits.num_classes == 3 and splits.val is None
    assert source in splits.notes["box_source"].replace("LOC_val_solution.csv", "csv")


def test_imagenet_classes_are_sorted_wnids(tmp_path):
    root = make_imagenet(tmp_path, "xml", val_metadata=True)
    splits = load("imagenet", root)
    assert [splits.train.image_ids[i].split("/")[1] for i in (0, 2, 4)] == sorted(WNIDS)
    assert splits.train.labels == [0, 0, 1, 1, 2, 2]
    assert len(splits.val) == 3 and "train-fullsup" in splits.val_source


def test_imagenet_needs_a_val_split_to_pick_the_threshold_on(tmp_path):
    with pytest.raises(UserError, match="--threshold-on test"):
        load("imagenet", make_imagenet(tmp_path, "xml"))


def test_openimages_masks_union_with_ignore_region(tmp_path):
    splits = load("openimages", make_openimages(tmp_path))
    assert not splits.test.has_boxes and splits.test.has_masks
    mask = splits.test[0]["mask"].numpy()
    assert set(np.unique(mask)) == {0, 1, IGNORE}
    # The ignore band lies right below the object and never overlaps it.
    rows_fg = np.nonzero((mask == 1).any(axis=1))[0]
    rows_ig = np.nonzero((mask == IGNORE).any(axis=1))[0]
    assert rows_ig.min() > rows_fg.max()
    # Targets without decoding the image equal those of the full item.
    assert torch.equal(splits.test.target(1)["mask"], splits.test[1]["mask"])


def test_wsol_metadata_brings_your_own_boxes(tmp_path):
    from miniature import photo

    for split, n in (("train", 2), ("val", 1), ("test", 1)):
        entries = []
        for i, (c, w, h, box) in enumerate(layout(n)):
            rel = f"img/{split}_{i}.png"
            photo(tmp_path / "wsol" / rel, w, h, box, c)
            entries.append((rel, c, w, h, [",".join(map(str, box))]))
        write_metadata(tmp_path / "wsol" / "metadata" / split, entries)
    splits = load("wsol", tmp_path)
    assert splits.num_classes == 3 and len(splits.train) == 6 and len(splits.test) == 3
    assert splits.test.has_boxes and not splits.test.has_masks
    label, w, h, box = layout(1)[0]
    expected = boxes_to_frame(np.array([box], float), centre_frame(w, h))
    assert splits.test[0]["boxes"].tolist() == expected.tolist()
