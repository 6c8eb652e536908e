"""The WSOL benchmark's CNN methods: each one's distinctive operation on hand-built
tensors (expected values worked out by hand from the papers' definitions), the CNN
trunk's class activation maps, and what a CNN backbone refuses."""

import math

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from wsolbench.methods.adl import ADL, drop_mask, find_block
from wsolbench.methods.cutmix import cut_box, cutmix
from wsolbench.methods.has import hide_patches

from wsolbench.core.errors import UserError
from wsolbench.core.registry import METHODS
from wsolbench.models.cnn import WSOLCNN, backbone_family
from wsolbench.models.method import Step
from wsolbench.models.trunk import ModelOutput
from wsolbench.train.checkpoints import load_pretrained
from wsolbench.train.plan import configure

MICRO_CNN = "wsolbench_resnet_micro_64"


# --- HaS ---------------------------------------------------------------------------


def test_has_hides_exactly_the_sampled_cells():
    images = torch.ones(2, 3, 10, 10)
    gen = torch.Generator().manual_seed(5)
    hidden_out, hidden = hide_patches(images, 4, 0.5, gen)
    assert hidden.shape == (2, 3, 3)  # 10 px in cells of 4: 4 + 4 + 2
    for b in range(2):
        for y in range(10):
            for x in range(10):
                want = 0.0 if hidden[b, y // 4, x // 4] else 1.0
                assert (hidden_out[b, :, y, x] == want).all()
    assert 0 < int(hidden.sum()) < hidden.numel()  # this seed hides some cells, not all
    assert torch.equal(images, torch.ones(2, 3, 10, 10))  # the input is left as it was


def test_has_drop_rate_is_the_chance_of_a_cell():
    images = torch.ones(64, 1, 64, 64)
    assert torch.equal(hide_patches(images, 4, 0.0)[0], images)
    assert not hide_patches(images, 4, 1.0)[0].any()
    _, hidden = hide_patches(images, 4, 0.3, torch.Generator().manual_seed(0))
    assert abs(float(hidden.float().mean()) - 0.3) < 0.02  # 16384 cells: sd 0.0036


# --- CutMix ------------------------------------------------------------------------


def test_cutmix_pastes_the_box_and_weights_labels_by_its_area():
    images = torch.arange(4.0).view(4, 1, 1, 1).expand(4, 1, 8, 8)  # image i is all i
    partner = torch.tensor([1, 2, 3, 0])
    mixed, own = cutmix(images, (2, 6, 1, 5), partner)
    assert own == 1 - 16 / 64
    for i in range(4):
        inside = mixed[i, 0, 2:6, 1:5]
        assert (inside == float(partner[i])).all()
        outside = mixed[i, 0].clone()
        outside[2:6, 1:5] = float(i)
        assert (outside == float(i)).all()


def test_cutmix_box_sides_follow_lambda_and_stay_in_the_image():
    gen = torch.Generator().manual_seed(1)
    sides = []
    for _ in range(200):
        y0, y1, x0, x1 = cut_box(10, 10, 0.64, gen)  # sqrt(1 - 0.64) = 0.6: cut 6 px
        assert 0 <= y0 <= y1 <= 10 and 0 <= x0 <= x1 <= 10
        assert y1 - y0 <= 6 and x1 - x0 <= 6
        sides.append(y1 - y0)
    assert 6 in sides and min(sides) < 6  # whole when the centre allows, clipped near edges


class FixedLogits(torch.nn.Module):
    """Records its input and returns the same logits whatever it is given."""

    def __init__(self, logits):
        super().__init__()
        self.logits, self.seen = logits, None

    def forward(self, images):
        self.seen = images
        return ModelOutput(logits=self.logits, maps=torch.zeros(len(images), 2, 2))


def test_cutmix_step_mixes_the_loss_by_the_pasted_area():
    torch.manual_seed(3)
    method = METHODS.get("cutmix")()
    _, _, cfg = configure({"method": "cutmix", "pretrained": "none"})
    images = torch.arange(8.0).view(8, 1, 1, 1).expand(8, 3, 16, 16).contiguous()
    labels = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    logits = torch.randn(8, 3)
    model = FixedLogits(logits)
    step = Step(0, 0, 1, 1, 1.0, torch.device("cpu"), cfg)
    loss, parts = method.train_step(model, {"image": images, "label": labels}, step)
    seen = model.seen[:, 0]
    moved = [i for i in range(8) if (seen[i] != i).any()]
    assert moved, "this seed pairs some image with another"
    i = moved[0]
    pasted = float((seen[i] != i).float().mean())
    assert parts["own_label_weight"] == pytest.approx(1 - pasted)
    # Every image's partner is the one whose value fills its box (none moved: itself).
    partner_labels = torch.stack(
        [
            labels[int(seen[j][seen[j] != j][0])] if (seen[j] != j).any() else labels[j]
            for j in range(8)
        ]
    )
    own = 1 - pasted
    want = own * F.cross_entropy(logits, labels) + (1 - own) * F.cross_entropy(
        logits, partner_labels
    )
    assert float(loss) == pytest.approx(float(want), rel=1e-6)


# --- ADL ---------------------------------------------------------------------------


def hand_features():
    # Two channels whose mean is [[1, 2], [3, 4]].
    return torch.tensor([[[[0.0, 2.0], [2.0, 4.0]], [[2.0, 2.0], [4.0, 4.0]]]])


def test_adl_drop_mask_and_importance_map_follow_the_definition():
    feats = hand_features()
    # threshold 0.8 of the peak 4 is 3.2: only the 4 is dropped.
    assert drop_mask(feats.mean(1, keepdim=True), 0.8).tolist() == [[[[1.0, 1.0], [1.0, 0.0]]]]
    # At 0.75 the cut is exactly 3: the benchmark keeps only what lies strictly below.
    assert drop_mask(feats.mean(1, keepdim=True), 0.75).tolist() == [[[[1.0, 1.0], [0.0, 0.0]]]]
    layer = ADL(drop_rate=1.0, threshold=0.8).train()
    dropped = layer(feats)
    assert dropped[0, :, 1, 1].tolist() == [0.0, 0.0] and torch.equal(
        dropped[0, :, 0, 0], feats[0, :, 0, 0]
    )
    stressed = ADL(drop_rate=0.0, threshold=0.8).train()(feats)
    sig = [
        [1 / (1 + math.exp(-1)), 1 / (1 + math.exp(-2))],
        [1 / (1 + math.exp(-3)), 1 / (1 + math.exp(-4))],
    ]
    want = feats * torch.tensor(sig)
    assert torch.allclose(stressed, want)
    assert torch.equal(ADL(1.0, 0.8).eval()(feats), feats)  # nothing at test time


def test_adl_hooks_the_blocks_at_names_on_a_timm_cnn():
    """On a timm CNN that is not one of the benchmark's networks, ADL follows the
    blocks ``at`` names (the default: layer3.0, layer4.0 and layer4.-1, the benchmark's
    ResNet-50 positions); the micro ResNet has one block per stage."""
    method = METHODS.get("adl")()
    micro = method.build(configure({"method": "adl", "pretrained": "none"})[2], 5)
    assert {n for n, m in micro.trunk.named_modules() if m._forward_hooks} == {
        "layer3.0",
        "layer4.0",
    }
    with pytest.raises(UserError, match="layer9"):
        find_block(micro.trunk, "layer9.0")


def test_adl_changes_training_features_only():
    torch.manual_seed(0)
    method = METHODS.get("adl")()
    _, _, cfg = configure({"method": "adl", "pretrained": "none", "options": {"drop_rate": 1.0}})
    model = method.build(cfg, 5)
    plain = WSOLCNN(MICRO_CNN, 5)
    plain.load_state_dict(model.state_dict())
    x = torch.randn(2, 3, 64, 64)
    model.eval(), plain.eval()
    assert torch.equal(model(x).logits, plain(x).logits)
    model.train(), plain.train()
    assert not torch.allclose(model(x).logits, plain(x).logits)


# --- the CNN trunk -----------------------------------------------------------------


def test_cam_on_a_cnn_is_the_classifier_weights_over_the_last_feature_map():
    torch.manual_seed(0)
    net = WSOLCNN(MICRO_CNN, 3).eval()
    x = torch.randn(2, 3, 64, 64)
    feats = net.features(x)
    assert feats.shape == (2, 256, 8, 8)  # output stride 8: the micro ViT's grid
    out = net(x)
    assert torch.allclose(out.logits, feats.mean((2, 3)) @ net.fc.weight.T + net.fc.bias, atol=1e-5)
    for b in range(2):
        for k in range(3):
            cam = sum(net.fc.weight[k, c] * feats[b, c] for c in range(256)) / 256
            scaled = (cam - cam.min()) / (cam.max() - cam.min() + 1e-6)
            assert torch.allclose(out.maps[b, k], scaled, atol=1e-5)


def test_benchmark_cnns_keep_a_14x14_map_at_224():
    for name in ("resnet50", "vgg16"):
        with torch.no_grad():
            feats = WSOLCNN(name, 2).eval().features(torch.randn(1, 3, 224, 224))
        assert feats.shape[-2:] == (14, 14), name


def test_timm_weights_load_into_the_cnn_trunk(tmp_path):
    import timm

    source = timm.create_model(MICRO_CNN, num_classes=7)
    save_file(source.state_dict(), tmp_path / "trunk.safetensors")
    net = WSOLCNN(MICRO_CNN, 3)
    report = load_pretrained(net, tmp_path / "trunk.safetensors")
    assert report["missing"] == ["fc.bias", "fc.weight"] and report["unexpected"] == []
    for name, tensor in source.state_dict().items():
        if not name.startswith("fc."):
            assert torch.equal(net.state_dict()["trunk." + name], tensor)


def test_backbone_families_and_refusals():
    assert backbone_family("resnet50") == backbone_family(MICRO_CNN) == "cnn"
    assert backbone_family("deit_small_patch16_224") == "vit"
    with pytest.raises(UserError, match="is a CNN; method sat needs a ViT"):
        configure({"method": "sat", "backbone": "resnet50"})
    with pytest.raises(UserError, match="method adl needs a CNN"):
        configure({"method": "adl", "backbone": "wsolbench_vit_micro_patch8_64"})
    with pytest.raises(UserError, match="freeze: preset 'b' freezes transformer blocks"):
        configure({"method": "cam", "freeze": "b"})
    _, _, vit_cam = configure({"method": "cam", "backbone": "wsolbench_vit_micro_patch8_64"})
    assert vit_cam.drop_path == 0.1  # the ViT keeps its stochastic depth; a CNN has none
    assert configure({"method": "cam"})[2].drop_path is None
