"""What a method may change and declare: its training step (told the epoch and step),
its optimizer parameter groups (freeze presets still apply, the record lists them),
and its options with help and range."""

import json

import pytest
import torch
from conftest import micro_config
from torch.utils.data import DataLoader, Subset

from wsolbench.cli import main
from wsolbench.core.registry import DATASETS, METHODS
from wsolbench.data.splits import collate
from wsolbench.models.method import Step
from wsolbench.train.freeze import apply_freeze
from wsolbench.train.trainer import build_groups, describe_groups, train

CAM = METHODS.get("cam")


class HideHalf(CAM):
    """A training step that hides the left half of every image and logs it."""

    calls: list

    def train_step(self, model, batch, step: Step):
        self.calls.append((step.epoch, step.index, step.steps, step.epochs))
        images = batch["image"].clone()
        images[..., : images.shape[-1] // 2] = 0
        loss, parts = self.loss(model(images), batch["label"], step.cfg, step.spatial_weight)
        return loss, {**parts, "hidden": 0.5}


class TenTimesHead(CAM):
    def param_groups(self, model, cfg):
        head = list(model.head.parameters())
        rest = [p for n, p in model.named_parameters() if not n.startswith("head.")]
        return [{"params": head, "lr_scale": 10.0}, {"params": rest, "weight_decay": 0.0}]


def loader(n: int = 8) -> DataLoader:
    splits = DATASETS.get("synthetic")().load(micro_config("cam"))
    return DataLoader(Subset(splits.train, range(n)), batch_size=4, collate_fn=collate)


def test_a_method_overrides_the_training_step_and_is_told_where_it_is():
    method = HideHalf()
    method.calls = []
    cfg = micro_config("cam", epochs=2)
    model = method.build(cfg, 6)
    history = train(method, model, cfg, loader(), torch.device("cpu"))
    assert method.calls == [(0, 0, 2, 2), (0, 1, 2, 2), (1, 0, 2, 2), (1, 1, 2, 2)]
    assert [h["hidden"] for h in history] == [0.5, 0.5] and [h["epoch"] for h in history] == [1, 2]


def test_a_method_sets_its_parameter_groups_and_freezing_still_applies():
    method, cfg = TenTimesHead(), micro_config("cam", lr=1e-3)
    model = method.build(cfg, 6)
    groups = build_groups(method, model, cfg)
    assert [g["lr"] for g in groups] == [pytest.approx(1e-2), pytest.approx(1e-3)]
    assert groups[1]["weight_decay"] == 0.0 and "weight_decay" not in groups[0]
    everything = sum(p.numel() for p in model.parameters())
    assert sum(d["parameters"] for d in describe_groups(groups, cfg)) == everything
    apply_freeze(model, "d")  # all but the last 3 blocks
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    described = describe_groups(build_groups(method, model, cfg), cfg)
    assert sum(d["parameters"] for d in described) == trainable < everything
    assert described[0] == {
        "tensors": 2,
        "parameters": sum(p.numel() for p in model.head.parameters()),
        "lr": pytest.approx(1e-2),
        "weight_decay": cfg.weight_decay,
    }


def test_the_record_lists_the_groups(tiny_runs):
    rec = json.loads((tiny_runs["sat"] / "record.json").read_text())
    groups = rec["param_groups"]
    assert [g["weight_decay"] for g in groups] == [0.05, 0.0]  # decay, then no decay
    assert all(g["lr"] == rec["config"]["lr"] for g in groups)


def test_run_method_help_shows_that_methods_options_with_help_and_range(capsys):
    with pytest.raises(SystemExit):
        main(["run", "sat", "--help"])
    out = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    assert "--sat-blocks" in out and "in [1, 12]" in out and "(Eq. 7)" in out
    assert "--gate" not in out and "--spatial-losses" not in out  # other methods'


def test_an_option_out_of_range_is_one_line_naming_it(capsys, tmp_path):
    code = main(["run", "sat", "--sat-blocks", "20", "--results", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 2 and err == "wsolbench: error: options: sat_blocks must be in [1, 12], got 20\n"
    assert not (tmp_path / "r").exists()
