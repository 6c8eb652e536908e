"""End to end on miniature real datasets through the real command line, and the
score-map exchange round trip."""

import json

import numpy as np
import pytest
import torch
from conftest import micro_config
from miniature import make_cub, make_imagenet, make_openimages

from wsolbench.core.registry import METHODS

TINY = [
    "--backbone", "wsolbench_vit_micro_patch16_224", "--epochs", "1", "--batch-size", "4",
    "--pretrained", "none",  # the micro trunk has no published weights
]  # fmt: skip


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    make_cub(root)
    make_imagenet(root, "xml", val_metadata=True)
    make_openimages(root)
    return root


def record_of(results, prefix):
    (path,) = results.glob(f"{prefix}*/record.json")
    return json.loads(path.read_text())


def test_cub_kshot_run_end_to_end(cli, data, tmp_path):
    rc, out, err = cli(
        "run", "sat", "--dataset", "cub", "--data-root", str(data), "--kshot", "1", *TINY
    )
    assert rc == 0, err
    rec = record_of(tmp_path / "results", "sat-cub-")
    ids = rec["data"]["kshot_image_ids"]
    assert len(ids) == 3 and len({i.split("/")[0] for i in ids}) == 3  # one per class
    assert rec["data"]["train_images"] == 3 and "held out" in rec["data"]["val_source"]
    for key in ("top1_cls", "gt_known_loc", "maxboxaccv2", "pxap", "piou"):
        assert 0 <= rec["metrics"][key] <= 100
    assert "PxAP" in out


def test_imagenet_run_with_tencrop(cli, data, tmp_path):
    rc, _, err = cli(
        "run",
        "sat",
        "--dataset",
        "imagenet",
        "--data-root",
        str(data),
        "--kshot",
        "1",
        "--tencrop",
        *TINY,
    )
    assert rc == 0, err
    rec = record_of(tmp_path / "results", "sat-imagenet-")
    assert rec["config"]["tencrop"] is True
    assert rec["data"]["box_source"].endswith("val/*.xml")
    assert rec["data"]["test_images"] == 6 and rec["data"]["val_images"] == 3
    assert {"top1_cls", "top5_cls", "top1_loc", "gt_known_loc"} <= set(rec["metrics"])


def test_openimages_evaluate_only_scores_masks(cli, data, tmp_path):
    model = METHODS.get("sat")().build(micro_config(backbone=TINY[1]), 3)
    torch.save({"model": model.state_dict()}, tmp_path / "weights.pt")
    rc, out, err = cli(
        "evaluate",
        "sat",
        "--dataset",
        "openimages",
        "--data-root",
        str(data),
        "--checkpoint",
        str(tmp_path / "weights.pt"),
        "--backbone",
        TINY[1],
    )
    assert rc == 0, err
    rec = record_of(tmp_path / "results", "sat-openimages-")
    assert rec["mode"] == "evaluate" and rec["threshold"] is None
    assert {"top1_cls", "pxap", "piou"} <= set(rec["metrics"])
    assert not {"gt_known_loc", "maxboxaccv2"} & set(rec["metrics"])  # no boxes to score


@pytest.mark.parametrize("frame", ["crop", "resize"])
def test_export_then_evaluate_maps_gives_the_same_metrics(cli, data, tmp_path, frame):
    rc, _, err = cli(
        "run", "sat", "--dataset", "cub", "--data-root", str(data), "--frame", frame, *TINY
    )
    assert rc == 0, err
    run = record_of(tmp_path / "results", "sat-cub-")
    assert run["protocol"]["frame"] == frame and run["config"]["frame"] == frame
    for split in ("val", "test"):
        rc, out, err = cli("export-maps", run["run_id"], "--split", split, "--out", "maps")
        assert rc == 0 and "wrote 6 maps" in out, err
    manifest = json.loads((tmp_path / "maps" / "manifest.json").read_text())
    assert manifest["frame"] == frame and manifest["run_id"] == run["run_id"]
    assert manifest["splits"] == {"val": 6, "test": 6} and manifest["protocol"] == "2"
    some = next((tmp_path / "maps").rglob("*.jpg.npy"))
    m = np.load(some)
    # What the benchmark's evaluator reads: min-max scaled, 0 and 1 attained.
    assert m.shape == (224, 224) and m.dtype == np.float32 and m.min() == 0 and m.max() == 1
    rc, _, err = cli(
        "evaluate-maps", "maps", "--dataset", "cub", "--data-root", str(data), "--name", "outside"
    )
    assert rc == 0, err
    maps = record_of(tmp_path / "results", "outside-cub-maps-")
    assert maps["mode"] == "evaluate-maps" and maps["method"] == "outside"
    assert maps["protocol"]["frame"] == frame  # from the manifest
    shared = set(maps["metrics"])
    assert {"gt_known_loc", "maxboxaccv2", "maxboxacc_iou70", "pxap", "piou"} <= shared
    assert maps["metrics"] == {k: run["metrics"][k] for k in shared}
    assert maps["threshold"] == run["threshold"]


@pytest.mark.slow
def test_cnn_methods_run_on_the_miniature_cub(cli, data, tmp_path):
    """The benchmark's CNN methods on the miniature CUB: CAM on the real-dataset
    default, ResNet-50 (from scratch: no hub weights here), the others on the micro
    ResNet at 224 (a 28x28 map) to keep the suite short."""
    for method in ("cam", "has", "cutmix", "adl"):
        backbone = [] if method == "cam" else ["--backbone", "wsolbench_resnet_micro_64"]
        rc, _, err = cli(
            "run", method, "--dataset", "cub", "--data-root", str(data), "--kshot", "1",
            "--epochs", "1", "--batch-size", "4", "--pretrained", "none", *backbone,
        )  # fmt: skip
        assert rc == 0, err
        rec = record_of(tmp_path / "results", f"{method}-cub-")
        want = backbone[1] if backbone else "resnet50.tv_in1k"
        assert rec["config"]["backbone"] == want and rec["class_aware"]
        assert rec["config"]["drop_path"] is None and rec["frozen_percent"] == 0
        for key in ("top1_cls", "gt_known_loc", "maxboxaccv2", "pxap"):
            assert 0 <= rec["metrics"][key] <= 100


@pytest.mark.parametrize(
    "method, backbone, recipe",
    [
        ("sat", "wsolbench_vit_micro_patch16_224", "sat-cub"),
        ("tscam", "wsolbench_vit_micro_patch16_224", "tscam-cub"),
        ("has", "wsolbench_resnet_micro_64", "benchmark-cub"),
    ],
)
def test_each_recipe_family_runs_on_the_miniature_cub(
    cli, data, tmp_path, method, backbone, recipe
):
    """A run of each recipe family end to end: the record names its recipe, the source
    of each value and what the flags changed, and trains and scores as it says."""
    rc, _, err = cli(
        "run", method, "--dataset", "cub", "--data-root", str(data), "--kshot", "1",
        "--epochs", "1", "--batch-size", "4", "--pretrained", "none", "--backbone", backbone,
    )  # fmt: skip
    assert rc == 0, err
    rec = record_of(tmp_path / "results", f"{method}-cub-")
    assert rec["recipe"]["name"] == recipe == rec["config"]["recipe"]
    over = rec["recipe"]["overridden"]
    assert over["epochs"]["run"] == 1 and over["batch_size"]["run"] == 4
    assert rec["config"]["resize"] == "pil"
    metrics = rec["metrics"]
    if recipe == "tscam-cub":
        assert rec["config"]["frame"] == "resize" and "contourArea" in rec["protocol"]["loc_rule"]
        for key in ("gt_known_loc", "top1_loc", "top5_loc", "sat_gt_known_loc", "maxboxaccv2"):
            assert 0 <= metrics[key] <= 100, key
        assert "vasgaowei/TS-CAM" in rec["recipe"]["sources"]["cam_threshold"]
    elif recipe == "benchmark-cub":
        assert rec["config"]["optimizer"] == "sgd" and rec["config"]["nesterov"]
        lrs = [g["lr"] for g in rec["param_groups"]]
        assert lrs == pytest.approx([0.01, 0.1]) and rec["recipe"]["trust"] == "untuned"
    else:
        assert rec["config"]["frame"] == "crop" and "sat_gt_known_loc" not in metrics
        assert "wpy1999/SAT" in rec["recipe"]["sources"]["lr"]
