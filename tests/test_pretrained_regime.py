"""The synthetic pretrained regime: the shipped trunk, its manifest, its pretraining,
and the loss warm-up expressed as a share of the run."""

import hashlib
import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import micro_config
from safetensors.torch import load_file

from wsolbench.core.errors import UserError
from wsolbench.core.registry import METHODS
from wsolbench.evaluation.metrics import MapBatch, Polarity
from wsolbench.train import weights as weights_module
from wsolbench.train.plan import plan
from wsolbench.train.pretrain import RECIPE, pretrain
from wsolbench.train.trainer import spatial_weight, warm_up_warning
from wsolbench.train.weights import SHIPPED, load_weights, resolve

TRUNK = "wsolbench_vit_micro_patch8_64"


def test_the_shipped_file_matches_its_manifest():
    path = SHIPPED / f"{TRUNK}.safetensors"
    manifest = json.loads(path.with_suffix(".json").read_text())
    assert hashlib.sha256(path.read_bytes()).hexdigest() == manifest["sha256"]
    assert manifest["recipe"]["backbone"] == TRUNK and manifest["file"] == path.name
    assert 0 < manifest["source_val_top1"] <= 100
    # The head was removed: every tensor is the trunk's.
    assert not [k for k in load_file(path) if k.startswith("head")]


def test_the_synthetic_default_is_the_shipped_trunk():
    p = plan({"method": "sat"})
    manifest = json.loads((SHIPPED / f"{TRUNK}.json").read_text())
    assert p.cfg["pretrained"] == "hub" and p.weights.source == "shipped"
    assert p.cfg["weights_sha256"] == manifest["sha256"]
    model = METHODS.get("sat")().build(p.cfg, 6)
    entry = load_weights(model, p.weights, p.cfg["backbone"])
    assert entry["source"] == "shipped" and entry["sha256"] == manifest["sha256"]
    # Every trunk tensor lands; only the new method's own parts start fresh.
    assert entry["loaded"] == manifest["tensors"] and entry["unexpected"] == []
    assert torch.equal(
        model.state_dict()["blocks.0.attn.qkv.weight"],
        load_file(SHIPPED / f"{TRUNK}.safetensors")["blocks.0.attn.qkv.weight"],
    )


def test_from_scratch_is_another_run_that_loads_nothing():
    p = plan({"method": "sat", "pretrained": "none"})
    assert p.weights.source == "none" and p.cfg["weights_sha256"] == "none"
    assert p.cfg.run_id != plan({"method": "sat"}).cfg.run_id
    model = METHODS.get("sat")().build(p.cfg, 6)
    assert load_weights(model, p.weights, p.cfg["backbone"])["loaded"] == 0


def test_a_shipped_file_that_differs_from_its_manifest_is_refused(tmp_path, monkeypatch):
    for suffix in (".safetensors", ".json"):
        shutil.copy(SHIPPED / f"{TRUNK}{suffix}", tmp_path / f"{TRUNK}{suffix}")
    with open(tmp_path / f"{TRUNK}.safetensors", "ab") as f:
        f.write(b"\0")
    monkeypatch.setattr(weights_module, "SHIPPED", tmp_path)
    with pytest.raises(UserError, match="differs from its manifest's"):
        resolve("hub", TRUNK)


def test_a_miniature_pretraining_writes_loadable_weights(tmp_path):
    recipe = {**RECIPE, "train_per_class": 3, "val_per_class": 2, "epochs": 1, "batch_size": 12}
    manifest = pretrain(tmp_path, recipe)
    path = tmp_path / f"{TRUNK}.safetensors"
    on_disk = json.loads(path.with_suffix(".json").read_text())
    assert on_disk == manifest
    for key in ("file", "sha256", "recipe", "source_task", "source_val_top1", "tensors"):
        assert key in manifest, key
    assert (
        manifest["recipe"] == recipe and "seeds 101 (train) / 102 (val)" in manifest["source_task"]
    )
    assert manifest["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    # 12 source classes x 2 val images: accuracy is a multiple of 1/24.
    assert round(manifest["source_val_top1"] * 24 / 100, 6).is_integer()
    # The file is what --pretrained FILE reads.
    weights = resolve(str(path), TRUNK)
    model = METHODS.get("tscam")().build(micro_config("tscam"), 6)
    entry = load_weights(model, weights, TRUNK)
    assert entry["loaded"] == manifest["tensors"] and entry["mismatched"] == []
    with pytest.raises(UserError, match="exists; pass --force"):
        pretrain(tmp_path, recipe)


def test_the_warm_up_is_a_share_of_the_run():
    assert spatial_weight(0.2, 0.4, 0.4) == 0.0
    assert spatial_weight(0.6, 0.4, 0.4) == pytest.approx(0.5)
    assert spatial_weight(0.9, 0.4, 0.4) == 1.0
    assert spatial_weight(0.4, 0.4, 0.0) == 1.0
    long = micro_config("sat", epochs=3, loss_delay=0.5)
    short = micro_config("sat", epochs=1, loss_delay=0.5)
    assert warm_up_warning(long) is None  # on for 1.5 epochs
    assert "on for 0.50 epoch" in warm_up_warning(short)
    assert warm_up_warning(micro_config("cam", epochs=1, loss_delay=None)) is None


def test_polarity_counts_maps_brighter_outside_the_object():
    mask = np.zeros((4, 4), bool)
    mask[1:3, 1:3] = True
    right = np.where(mask, 0.9, 0.1)
    flipped = 1 - right
    p = Polarity()
    for m in (right, flipped, flipped, right):
        p.update(MapBatch.one(m, mask=mask))
    p.update(MapBatch.one(right, mask=np.zeros((4, 4), bool)))  # no object: not counted
    assert p.compute() == {"flipped_maps": 50.0}


def test_a_plugin_module_imports_on_its_own():
    code = "import wsolbench.datasets.synthetic as s; print(s.SourceTask().num_classes)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "12"
