"""--pretrained: DeiT/timm checkpoints load where names and shapes match."""

import pytest
import timm
import torch
from conftest import micro_config

from wsolbench.core.errors import UserError
from wsolbench.core.registry import METHODS
from wsolbench.train.checkpoints import load_pretrained


def sat_net():
    sat = METHODS.get("sat")()
    return sat.build(micro_config(), 6)


@pytest.mark.parametrize("wrap", [True, False])
def test_timm_checkpoint_loads_and_classifier_is_dropped(tmp_path, wrap):
    torch.manual_seed(5)
    vit = timm.create_model("wsolbench_vit_micro_patch8_64", num_classes=10)
    sd = vit.state_dict()
    path = tmp_path / "deit.pth"
    torch.save({"model": sd, "epoch": 300} if wrap else sd, path)
    net = sat_net()
    info = load_pretrained(net, path)
    own = net.state_dict()
    for key in (
        "pos_embed",
        "cls_token",
        "patch_embed.proj.weight",
        "blocks.5.mlp.fc2.weight",
        "norm.bias",
    ):
        assert torch.equal(own[key], sd[key]), key
    assert info["missing"] == ["head.bias", "head.weight", "spatial_pos_embed", "spatial_token"]
    assert info["unexpected"] == [] and info["mismatched"] == []
    assert info["loaded"] == len(sd) - 2  # everything but the linear classifier


def test_partial_shape_mismatch_is_listed(tmp_path):
    sd = timm.create_model("wsolbench_vit_micro_patch8_64", num_classes=0).state_dict()
    sd["pos_embed"] = torch.zeros(1, 65, 64)  # another width: cannot be resampled
    sd["extra.thing"] = torch.zeros(2)
    path = tmp_path / "odd.pth"
    torch.save(sd, path)
    info = load_pretrained(sat_net(), path)
    assert info["mismatched"] == ["pos_embed: checkpoint (1, 65, 64) vs model (1, 65, 96)"]
    assert info["unexpected"] == ["extra.thing"]
    assert "pos_embed" in info["missing"] and info["resampled"] == []
    sd["pos_embed"] = torch.zeros(1, 50, 96)  # a 7x7 grid: resampled to the model's 8x8
    torch.save(sd, path)
    info = load_pretrained(sat_net(), path)
    assert info["resampled"] == ["pos_embed: (1, 50, 96) -> (1, 65, 96)"]
    assert not info["mismatched"] and "pos_embed" not in info["missing"]


def test_pickled_objects_are_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"model": {"w": torch.zeros(1)}, "obj": object()}, path)
    with pytest.raises(UserError, match="not a readable checkpoint"):
        load_pretrained(sat_net(), path)
