"""Recipes against their sources, in hand-written tables: every value a run takes on a
real dataset, the schedules epoch by epoch, the benchmark's parameter groups, one
SGD-Nesterov step by its formula, and the dry run that shows it all."""

import math

import pytest
import torch
from torch import nn

from wsolbench.core.errors import UserError
from wsolbench.core.recipe import TRUST
from wsolbench.core.registry import METHODS
from wsolbench.models.cnn import WSOLCNN
from wsolbench.models.losses import batch_area_loss
from wsolbench.train.plan import configure
from wsolbench.train.trainer import build_groups, optimizer

# What each authors' code runs, read off the files named (see the recipes' sources).
SOURCES = {
    # vasgaowei/TS-CAM: configs/CUB/deit_tscam_small_patch16_224.yaml, train_val_cub.sh,
    # lib/config/default.py (argparse), lib/datasets/cub.py, lib/cams_deit.py
    ("tscam", "cub"): {
        "recipe": "tscam-cub", "backbone": "deit_small_patch16_224", "epochs": 60,
        "batch_size": 128, "lr": 5e-5, "optimizer": "adamw", "weight_decay": 0.05,
        "drop_path": 0.1, "schedule": "step", "lr_steps": [30, 60], "lr_factor": 0.1,
        "resize": "pil", "frame": "resize", "box_rule": "tscam", "cam_threshold": 0.1,
        "pretrained": "hub", "lambda": None,
    },
    # configs/ILSVRC/deit_tscam_small_patch16_224.yaml (LR_STEPS [10, 12] over 20
    # epochs: decays at 10, 12 and 20), train_val_ilsvrc.sh
    ("tscam", "imagenet"): {
        "recipe": "tscam-imagenet", "epochs": 20, "batch_size": 256, "lr": 5e-4,
        "lr_steps": [10, 12, 20], "cam_threshold": 0.12, "frame": "resize",
        "weight_decay": 0.05,
    },
    # wpy1999/SAT train.py, DataLoader/CUB_200_2011.py
    ("sat", "cub"): {
        "recipe": "sat-cub", "backbone": "deit_small_patch16_224", "epochs": 30,
        "batch_size": 256, "lr": 1e-4, "optimizer": "adamw", "weight_decay": 0.05,
        "drop_path": 0.1, "schedule": "constant", "lambda": 0.25, "resize": "pil",
        "frame": "crop", "box_rule": "sat",
    },
    # wpy1999/SAT train_ImageNet.py
    ("sat", "imagenet"): {
        "recipe": "sat-imagenet", "epochs": 5, "batch_size": 512, "lr": 1.5e-5,
        "lambda": 0.35, "resize": "pil",
    },
    # clovaai/wsolevaluation main.py, config.py, README.md, data_loaders.py, wsol/util.py
    ("cam", "cub"): {
        "recipe": "benchmark-cub", "backbone": "resnet50.tv_in1k", "optimizer": "sgd",
        "momentum": 0.9, "nesterov": True, "decay_all": True, "batch_size": 32,
        "epochs": 50, "schedule": "step", "lr_steps": [15, 30, 45], "lr_factor": 0.1,
        "fast_layers": "benchmark", "lr_classifier_ratio": 10.0, "resize": "pil",
        "frame": "resize", "classifier_init": "normal", "keep_classifier": False,
        "lr": 2.3222617e-4, "weight_decay": 1e-4,  # CUB ResNet-50 CAM (third-party)
    },
    ("has", "cub"): {"recipe": "benchmark-cub", "lr": 0.01, "weight_decay": 1e-4},  # untuned
    ("cam", "imagenet"): {
        "recipe": "benchmark-imagenet", "epochs": 10, "lr_steps": [3, 6, 9],
        "keep_classifier": True, "lr": 0.01,
    },
    ("cam", "openimages"): {"recipe": "benchmark-openimages", "epochs": 10, "lr": 0.01},
    ("adl", "openimages"): {"recipe": "benchmark-openimages", "lr_steps": [3, 6, 9]},
}  # fmt: skip


@pytest.mark.parametrize("method, dataset", list(SOURCES))
def test_each_recipe_value_is_its_source(method, dataset):
    _, _, cfg = configure({"method": method, "dataset": dataset})
    for key, want in SOURCES[(method, dataset)].items():
        assert cfg[key] == want, f"{method} on {dataset}: {key}"


def test_tuned_sets_apply_to_their_pair_only():
    vgg = configure({"method": "cam", "dataset": "openimages", "backbone": "vgg16.tv_in1k"})[2]
    assert (vgg.lr, vgg.weight_decay) == (0.00227913316, 5e-4)  # the benchmark README
    resnet = configure({"method": "cam", "dataset": "openimages"})[2]
    assert (resnet.lr, resnet.weight_decay) == (0.01, 1e-4)


def test_every_value_names_a_source_and_trust_is_known():
    from wsolbench.cli.tools import all_recipes

    for (name, _), (recipe, _) in all_recipes().items():
        assert recipe.trust in TRUST, name
        for key, value in recipe.values.items():
            assert value.source.strip(), f"{name}: {key}"


def test_shared_recipe_keeps_the_earlier_values_and_ids():
    """--recipe shared: today's one recipe for every method; on synthetic the recipe
    adds nothing to the id, so every earlier synthetic run id is still valid."""
    tscam = configure({"method": "tscam", "dataset": "cub", "recipe": "shared"})[2]
    assert (tscam.epochs, tscam.lr, tscam.batch_size, tscam.frame) == (30, 1e-4, 256, "crop")
    assert (tscam.resize, tscam.optimizer, tscam.box_rule) == ("cv2", "adamw", "sat")
    syn = configure({"method": "sat"})[2]
    assert "recipe" not in syn.identity() and syn.recipe == "synthetic"
    assert configure({"method": "sat", "recipe": "shared"})[2].run_id == syn.run_id
    cub = configure({"method": "sat", "dataset": "cub"})[2]
    assert cub.identity()["recipe"] == "sat-cub"


def test_unknown_recipe_is_one_line():
    with pytest.raises(UserError, match="'sat-cub' is not a recipe of tscam on cub"):
        configure({"method": "tscam", "dataset": "cub", "recipe": "sat-cub"})


def lr_per_epoch(cfg, steps_per_epoch: int = 3) -> list[float]:
    """The learning rate of the first step of each epoch, through the real scheduler."""
    p = nn.Parameter(torch.zeros(1))
    opt, sched = optimizer([{"params": [p], "lr": cfg.lr}], cfg, steps_per_epoch)
    out = []
    for _ in range(cfg.epochs):
        for step in range(steps_per_epoch):
            if step == 0:
                out.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
    return out


def test_tscam_cub_lr_at_every_epoch():
    """TS-CAM counts epochs from 1 and multiplies the lr by 0.1 at the start of every
    epoch that is a multiple of 30: 5e-5 for 1-29, 5e-6 for 30-59, 5e-7 for 60."""
    cfg = configure({"method": "tscam", "dataset": "cub"})[2]
    want = [5e-5] * 29 + [5e-6] * 30 + [5e-7]
    got = lr_per_epoch(cfg)
    assert len(got) == 60
    for epoch, (g, w) in enumerate(zip(got, want, strict=True), 1):
        assert math.isclose(g, w, rel_tol=1e-9), epoch


def test_tscam_ilsvrc_and_benchmark_cub_schedules():
    ilsvrc = lr_per_epoch(configure({"method": "tscam", "dataset": "imagenet"})[2])
    assert ilsvrc == pytest.approx([5e-4] * 9 + [5e-5] * 2 + [5e-6] * 8 + [5e-7], rel=1e-9)
    bench = lr_per_epoch(configure({"method": "has", "dataset": "cub"})[2])
    want = [0.01] * 14 + [1e-3] * 15 + [1e-4] * 15 + [1e-5] * 6  # x0.1 at 15, 30, 45
    assert bench == pytest.approx(want, rel=1e-9)


def test_warm_up_is_linear_per_step():
    cfg = configure({"method": "sat", "warmup_epochs": 1.0, "epochs": 2})[2]
    p = nn.Parameter(torch.zeros(1))
    opt, sched = optimizer([{"params": [p], "lr": 1.0}], cfg, 4)
    lrs = []
    for _ in range(8):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs == pytest.approx([0.25, 0.5, 0.75, 1, 1, 1, 1, 1])


def test_benchmark_resnet50_groups_and_their_sizes():
    """The benchmark's main.py: names with 'layer4.' or 'fc.' at 10x. ResNet-50's
    layer4 is three bottlenecks, counted by hand: block 0 (1x1 1024->512, 3x3 512->512,
    1x1 512->2048, downsample 1024->2048, four BNs) 6,039,552; blocks 1-2 4,462,592
    each. The fc for 200 classes 2048 x 200 + 200. The rest of the trunk 8,543,296."""
    _, _, cfg = configure({"method": "cam", "dataset": "cub", "pretrained": "none"})
    model = WSOLCNN("resnet50", 200)
    groups = build_groups(METHODS.get("cam")(), model, cfg)
    counts = [sum(p.numel() for p in g["params"]) for g in groups]
    assert counts == [8_543_296, 14_964_736 + 409_800]
    assert [g["lr"] for g in groups] == pytest.approx([cfg.lr, 10 * cfg.lr])
    fast = {id(p) for p in groups[1]["params"]}
    names = [n for n, p in model.named_parameters() if id(p) in fast]
    assert all(n.startswith(("trunk.layer4.", "fc.")) for n in names)
    assert len(names) == 12 + 9 + 9 + 2  # layer4's blocks' tensors, then fc's
    shared = configure({"method": "cam", "dataset": "cub", "recipe": "shared"})[2]
    only_fc = build_groups(METHODS.get("cam")(), model, shared)
    assert sum(p.numel() for p in only_fc[1]["params"]) == 409_800


def test_benchmark_classifier_init():
    torch.manual_seed(0)
    net = WSOLCNN("wsolbench_resnet_micro_64", 200, "normal")
    assert torch.count_nonzero(net.fc.bias) == 0
    assert abs(float(net.fc.weight.detach().std()) - 0.01) < 0.0005
    assert abs(float(net.fc.weight.detach().mean())) < 0.0005


def test_one_sgd_nesterov_step_by_its_formula():
    """torch's SGD with Nesterov and L2 (the benchmark's optimizer), two steps, against
    the update written out: g' = g + wd p; v = mu v + g'; p -= lr (g' + mu v)."""
    cfg = configure({"method": "cam", "dataset": "cub", "pretrained": "none"})[2]
    w = nn.Parameter(torch.tensor([1.0, -2.0]))
    opt, _ = optimizer([{"params": [w], "lr": 0.1, "weight_decay": cfg.weight_decay}], cfg, 1)
    lr, mu, wd = 0.1, 0.9, 1e-4
    p, v = [1.0, -2.0], [0.0, 0.0]
    for grad in ([0.5, 0.25], [-1.0, 2.0]):
        w.grad = torch.tensor(grad)
        opt.step()
        for i in range(2):
            g = grad[i] + wd * p[i]
            v[i] = mu * v[i] + g
            p[i] -= lr * (g + mu * v[i])
    assert w.detach().tolist() == pytest.approx(p, rel=1e-6)


def test_adamw_skips_decay_on_biases_unless_decay_all():
    sat = configure({"method": "sat"})[2]
    model = METHODS.get("sat")().build(sat, 5)
    groups = build_groups(METHODS.get("sat")(), model, sat)
    assert [g["weight_decay"] for g in groups] == [0.05, 0.0]
    every = build_groups(METHODS.get("sat")(), model, sat.replace(decay_all=True))
    assert sum(len(g["params"]) for g in every if g["weight_decay"] == 0.05) == len(
        [p for p in model.parameters() if p.requires_grad]
    )


def test_area_loss_per_chunk_by_hand():
    """SAT's ILSVRC code: each GPU's |mean area - lambda| over its own images."""
    maps = torch.tensor([0.1, 0.3, 0.6, 0.2])[:, None, None].expand(4, 2, 2)
    assert float(batch_area_loss(maps, 0.25)) == pytest.approx(0.05)
    assert float(batch_area_loss(maps, 0.25, per=2)) == pytest.approx((0.05 + 0.15) / 2)


def test_dry_run_shows_tscams_recipe_with_sources_and_writes_nothing(cli, tmp_path):
    rc, out, err = cli("run", "tscam", "--dataset", "cub", "--dry-run")
    assert rc == 0, err
    assert "lr: 5.0e-05  # recipe tscam-cub: vasgaowei/TS-CAM train_val_cub.sh" in out
    assert "lr_steps: [30, 60]  # recipe tscam-cub" in out
    assert "cam_threshold: 0.1  # recipe tscam-cub: vasgaowei/TS-CAM train_val_cub.sh" in out
    assert "frame: resize  # recipe tscam-cub" in out and "box_rule: tscam" in out
    assert not (tmp_path / "results").exists()


def test_dry_run_shows_the_benchmarks_groups_and_kept_classifier(cli):
    rc, out, err = cli("run", "cam", "--dataset", "imagenet", "--dry-run", "--lr", "0.02")
    assert rc == 0, err
    assert "fast_layers: benchmark  # recipe benchmark-imagenet" in out
    assert "'layer4.', 'fc.'" in out
    assert "keep_classifier: true  # recipe benchmark-imagenet" in out
    assert "lr: 0.02  # flag --lr" in out and "optimizer: sgd" in out


def test_dry_run_output_reruns_as_the_same_run(cli, tmp_path):
    rc, out, _ = cli("run", "tscam", "--dataset", "cub", "--epochs", "7", "--dry-run")
    assert rc == 0
    saved = tmp_path / "saved.yaml"
    saved.write_text(out)
    rc, again, _ = cli("run", "--config", str(saved), "--dry-run")
    assert rc == 0
    first = configure({"method": "tscam", "dataset": "cub", "epochs": 7})[2]
    from wsolbench.core.config import load_yaml

    assert configure(load_yaml(saved))[2].identity() == first.identity()
    assert f"epochs: 7  # config {saved}" in again


def test_recipes_lists_every_recipe_with_sources(cli):
    rc, out, _ = cli("recipes")
    assert rc == 0
    for name in ("sat-cub", "sat-imagenet", "tscam-cub", "tscam-imagenet", "benchmark-cub",
                 "benchmark-imagenet", "benchmark-openimages", "shared", "synthetic"):  # fmt: skip
        assert f"## {name} (" in out
    assert "clovaai/wsolevaluation README.md example, --lr 0.00227913316" in out
    rc, _, err = cli("recipes", "nope")
    assert rc == 2 and "recipes: no recipe 'nope'" in err


def test_sweep_dry_run_shows_each_cells_recipe(cli, tmp_path):
    """table1 on the miniature CUB: each cell a run config document, TS-CAM's with its
    authors' schedule and box rule, SAT's with theirs, CAM's with the benchmark's."""
    from miniature import make_cub

    make_cub(tmp_path / "data")
    rc, out, err = cli(
        "sweep", "table1", "--dataset", "cub", "--pretrained", "none", "--dry-run",
        env={"WSOLBENCH_DATA": str(tmp_path / "data")},
    )  # fmt: skip
    assert rc == 0, err
    docs = out.split("--- # ")[1:]
    assert [d.split("-", 1)[0] for d in docs] == ["sat", "tscam", "cam"]
    assert "lr_steps: [30, 60]  # recipe tscam-cub: vasgaowei/TS-CAM" in docs[1]
    assert "box_rule: tscam  # recipe tscam-cub" in docs[1]
    assert "lr: 0.0001  # recipe sat-cub: wpy1999/SAT train.py: --lr default 1e-4" in docs[0]
    assert "optimizer: sgd  # recipe benchmark-cub" in docs[2]
    assert "pretrained: none  # the sweep" in docs[0]
    assert not (tmp_path / "results").exists()
