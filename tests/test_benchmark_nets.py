"""The WSOL benchmark's networks (VGG16, InceptionV3, ResNet-50) and its ACoL and SPG.
Expected values come from hand-built cases, counted layer shapes and the benchmark's
stated layouts; the weights come from torchvision's own architectures (an independent
source of the ImageNet names and shapes) written into a real huggingface_hub cache."""

import json

import pytest
import torch
import torchvision
from miniature import make_cub
from safetensors.torch import save_file
from wsolbench.methods.acol import erase
from wsolbench.methods.spg import IGNORE, guidance_loss, guidance_mask

from wsolbench.core.registry import METHODS
from wsolbench.models.benchmark_nets import BenchmarkNet, scale_per_map
from wsolbench.train.plan import configure, plan
from wsolbench.train.runner import prepare

ARCHS = ("vgg16", "inception_v3", "resnet50")


def build(method: str, backbone: str, classes: int = 5, meta: bool = True, **given):
    """The method's network; on the meta device (shapes and names only) by default."""
    _, _, cfg = configure({"method": method, "backbone": backbone, "pretrained": "none", **given})
    with torch.device("meta" if meta else "cpu"):
        return METHODS.get(method)().build(cfg, classes)


# --- ACoL ---------------------------------------------------------------------------


def test_acol_erases_where_the_scaled_attention_reaches_the_threshold():
    """A 2x3 class map [[0, 1, 2], [3, 4, 10]] scales to /10: 0, .1, .2, .3, .4, 1.
    At 0.35 the cells .4 and 1 are erased (>=), the rest kept; a constant map (0/0)
    erases nothing."""
    raw = torch.tensor([[0.0, 1, 2], [3, 4, 10]])[None, None]
    attention = scale_per_map(raw)
    assert torch.allclose(attention[0, 0], torch.tensor([[0, 0.1, 0.2], [0.3, 0.4, 1.0]]))
    features = torch.arange(1.0, 13).view(1, 2, 2, 3)  # two channels
    out = erase(features, attention, 0.35)
    keep = torch.tensor([[1.0, 1, 1], [1, 0, 0]])
    assert torch.equal(out, features * keep)
    assert torch.equal(erase(features, attention, 0.4), features * keep)  # >= erases 0.4
    flat = scale_per_map(torch.full((1, 1, 2, 3), 7.0))
    assert torch.equal(erase(features, flat, 0.35), features)


def test_acol_branch_b_sees_the_labels_erasure_and_the_map_is_the_larger():
    """Branch B's input is the trunk's features erased by the label's map of branch A;
    the map is per class the larger of the two scaled maps."""
    torch.manual_seed(0)
    net = build("acol", "wsolbench_resnet_micro_64", 3, meta=False).eval()
    x, labels = torch.randn(2, 3, 64, 64), torch.tensor([2, 0])
    with torch.no_grad():
        out = net(x, labels)
        feats = net.trunk_features(x)
        maps_a = net.classifier_A(feats)
        a = maps_a[torch.arange(2), labels]
        lo, hi = a.amin((1, 2), keepdim=True), a.amax((1, 2), keepdim=True)
        attention = ((a - lo) / (hi - lo))[:, None]
        maps_b = net.classifier_B(feats * (attention < 0.7))
    assert torch.allclose(out.extras["logits_b"], maps_b.mean((2, 3)), atol=1e-5)
    assert torch.allclose(out.logits, maps_a.mean((2, 3)), atol=1e-5)
    for b in range(2):
        for k in range(3):
            sa = (maps_a[b, k] - maps_a[b, k].min()) / (maps_a[b, k].max() - maps_a[b, k].min())
            sb = (maps_b[b, k] - maps_b[b, k].min()) / (maps_b[b, k].max() - maps_b[b, k].min())
            assert torch.allclose(out.maps[b, k], torch.maximum(sa, sb), atol=1e-5)


# --- SPG ----------------------------------------------------------------------------


def test_spg_mask_from_hand_set_thresholds():
    """A 10x10 map: 40 pixels at 0.9, 30 at 0.5, 30 at 0.05. With high 0.7 and low 0.1:
    the 40 are foreground (1), the 30 at 0.05 background (0), the rest ignored."""
    att = torch.cat([torch.full((40,), 0.9), torch.full((30,), 0.5), torch.full((30,), 0.05)])
    mask = guidance_mask(att.view(1, 1, 10, 10), 0.7, 0.1).flatten()
    assert torch.equal(mask[:40], torch.ones(40))
    assert torch.equal(mask[40:70], torch.full((30,), IGNORE))
    assert torch.equal(mask[70:], torch.zeros(30))


def test_spg_mask_falls_back_to_0_7_of_the_maximum_under_30_pixels():
    """10 pixels at 0.8 (< 30 above high 0.9... none above it): the foreground becomes
    everything above 0.7 x 0.8 = 0.56: the 10 at 0.8 and the 20 at 0.6, not the 0.5s;
    below low 0.55 is background, which wins over nothing here."""
    att = torch.cat([torch.full((10,), 0.8), torch.full((20,), 0.6), torch.full((70,), 0.5)])
    mask = guidance_mask(att.view(1, 1, 10, 10), 0.9, 0.55).flatten()
    assert torch.equal(mask[:30], torch.ones(30))
    assert torch.equal(mask[30:], torch.zeros(70))
    # Background wins where both hold: low above the fallback foreground.
    both = guidance_mask(att.view(1, 1, 10, 10), 0.9, 0.7).flatten()
    assert torch.equal(both[:10], torch.ones(10)) and torch.equal(both[10:], torch.zeros(90))


def test_spg_guidance_loss_is_bce_over_the_pixels_not_ignored():
    """Side logits 0 everywhere: BCE is log 2 per counted pixel, whatever the mask; a
    logit of 2 on the foreground and -2 on the background gives log(1 + e^-2)."""
    att = torch.cat([torch.full((40,), 0.9), torch.full((30,), 0.5), torch.full((30,), 0.05)])
    att = att.view(1, 1, 10, 10)
    assert float(guidance_loss(torch.zeros(1, 1, 10, 10), att, 0.7, 0.1)) == pytest.approx(
        0.6931472, abs=1e-6
    )
    logits = torch.where(att > 0.7, 2.0, -2.0)
    logits[att == 0.5] = 100.0  # ignored pixels count for nothing
    want = float(torch.log1p(torch.exp(torch.tensor(-2.0))))
    assert float(guidance_loss(logits, att, 0.7, 0.1)) == pytest.approx(want, abs=1e-6)


# --- the networks -------------------------------------------------------------------


@pytest.mark.parametrize("method", ["cam", "acol", "spg", "adl"])
@pytest.mark.parametrize("arch", ARCHS)
def test_map_sizes_at_224_and_with_large_feature_map(method, arch):
    """14x14 at 224, 28x28 with large_feature_map: shapes only (the meta device)."""
    for large, side in ((False, 14), (True, 28)):
        net = build(method, arch, 3, large_feature_map=large).eval()
        with torch.device("meta"):
            images, labels = torch.empty(1, 3, 224, 224), torch.tensor([1])
            out = METHODS.get(method)().forward_labelled(net, images, labels)
        assert out.maps.shape == (1, 3, side, side), (method, arch, large)


def test_vgg16_gains_the_benchmarks_conv6():
    """conv6 (3x3, 512 -> 1024) is 512 * 1024 * 9 + 1024 = 4,719,616 parameters on top
    of torchvision's 14,714,688 VGG16 conv layers; the classifier 1024 x 5 + 5."""
    net = build("cam", "vgg16")
    tv = sum(p.numel() for p in torchvision.models.vgg16().features.parameters())
    assert tv == 14_714_688
    assert sum(p.numel() for p in net.parameters()) == tv + 4_719_616 + 5 * 1024 + 5


def test_adl_sits_where_the_benchmark_puts_it():
    """VGG16: after pool 3 (index 17), conv4_3's ReLU (24) and conv5_3's ReLU (32) of
    the plan; ResNet-50: after blocks layer3.0, layer4.0 and layer4.2, each shifting
    the blocks after it by one; InceptionV3: after Mixed_5d, Mixed_6e and SPG_A3_2b."""
    vgg = build("adl", "vgg16")
    assert [i for i, m in enumerate(vgg.features) if type(m).__name__ == "ADL"] == [17, 24, 32]
    resnet = build("adl", "resnet50")
    adl = {n for n, m in resnet.named_modules() if type(m).__name__ == "ADL"}
    assert adl == {"layer3.1", "layer4.1", "layer4.4"}  # blocks 0, 1, 2 at 0, 2, 3
    assert len(resnet.layer3) == 7 and len(resnet.layer4) == 5
    inception = build("adl", "inception_v3")
    adl = {n for n, m in inception.named_modules() if type(m).__name__ == "ADL"}
    assert adl == {"Mixed_5d.adl_layer", "Mixed_6e.adl_layer", "SPG_A3_2b.adl_layer"}


def test_the_benchmarks_faster_layers_by_architecture():
    """main.py: on ResNet-50 the names with 'layer4.' or 'fc.' are fast (so SPG's and
    ACoL's new heads are not); on VGG16 and InceptionV3 everything but the pretrained
    feature layers is."""

    def fast_names(net):
        fast = {id(p) for p in net.fast_parameters()}
        return {n.split(".")[0] for n, p in net.named_parameters() if id(p) in fast}

    assert fast_names(build("spg", "resnet50")) == {"layer4"}
    assert fast_names(build("acol", "resnet50")) == {"layer4"}
    assert fast_names(build("cam", "resnet50")) == {"layer4", "fc"}
    assert fast_names(build("spg", "vgg16")) == {
        "SPG_A_1", "SPG_A_2", "SPG_A_3", "SPG_A_4", "SPG_B_1a", "SPG_B_2a", "SPG_B_shared",
        "SPG_C",
    }  # fmt: skip
    assert fast_names(build("acol", "inception_v3")) == {"classifier_A", "classifier_B"}


# --- ImageNet weights from a real hub cache -----------------------------------------


def torchvision_state(arch: str) -> dict[str, torch.Tensor]:
    """torchvision's ImageNet architecture at random: its names and shapes are what
    timm's ``<arch>.tv_in1k`` files hold for the layers the benchmark keeps."""
    torch.manual_seed(1)
    if arch == "vgg16":
        return {
            f"features.{k}": v for k, v in torchvision.models.vgg16().features.state_dict().items()
        }
    if arch == "inception_v3":
        net = torchvision.models.inception_v3(init_weights=False, aux_logits=False)
    else:
        net = torchvision.models.resnet50()
    return {k: v for k, v in net.state_dict().items() if "num_batches_tracked" not in k}


def write_cache(home, arch: str) -> dict[str, torch.Tensor]:
    repo = home / "hub" / f"models--timm--{arch}.tv_in1k"
    snap = repo / "snapshots" / ("ab" * 20)
    snap.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("ab" * 20)
    state = torchvision_state(arch)
    save_file({k: v.contiguous() for k, v in state.items()}, str(snap / "model.safetensors"))
    return state


@pytest.fixture
def hub(tmp_path, monkeypatch):
    from huggingface_hub import constants

    from wsolbench.train.weights import hub_file

    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    hub_file.cache_clear()
    yield tmp_path / "hf"
    hub_file.cache_clear()


# Where a torchvision tensor lands in each network (the benchmark's loaders' renames).
MOVES = {
    ("spg", "vgg16"): {"features.17": "SPG_A_1.0", "features.19": "SPG_A_1.2",
                       "features.21": "SPG_A_1.4", "features.24": "SPG_A_2.0",
                       "features.26": "SPG_A_2.2", "features.28": "SPG_A_2.4"},
    ("adl", "vgg16"): {"features.17": "features.18", "features.19": "features.20",
                       "features.21": "features.22", "features.24": "features.26",
                       "features.26": "features.28", "features.28": "features.30"},
    ("spg", "resnet50"): {"layer3.0.": "SPG_A1.0.", "layer3.1.": "SPG_A2.0.",
                          "layer3.2.": "SPG_A2.1.", "layer3.3.": "SPG_A2.2.",
                          "layer3.4.": "SPG_A2.3.", "layer3.5.": "SPG_A2.4."},
    ("adl", "resnet50"): {"layer3.1.": "layer3.2.", "layer3.2.": "layer3.3.",
                          "layer3.3.": "layer3.4.", "layer3.4.": "layer3.5.",
                          "layer3.5.": "layer3.6.", "layer4.1.": "layer4.2.",
                          "layer4.2.": "layer4.3."},
}  # fmt: skip


def moved(key: str, moves: dict[str, str]) -> str:
    for old, new in moves.items():
        if key.startswith(old + ("" if old.endswith(".") else ".")):
            return new + key[len(old) :]
    return key


@pytest.mark.parametrize("arch", ARCHS)
def test_hub_weights_load_into_each_network(hub, tmp_path, arch):
    """Every trunk tensor of the cached file lands in each method's network under the
    benchmark's name for it; the new layers are all that is missing; the ImageNet
    classifier is dropped (CUB)."""
    state = write_cache(hub, arch)
    cub = make_cub(tmp_path / "data")
    for method in ("cam", "acol", "spg", "adl"):
        p = plan({"method": method, "dataset": "cub", "data_root": str(cub), "backbone": arch})
        prep = prepare(p)
        assert isinstance(prep.model, BenchmarkNet)
        w = prep.pretrained
        assert w["source"] == "hub" and w["repo"] == f"timm/{arch}.tv_in1k"
        own = prep.model.state_dict()
        moves = MOVES.get((method, arch), {})
        trunk = {
            k: v for k, v in state.items() if not k.startswith(("fc.", "Mixed_7", "AuxLogits"))
        }
        for key, tensor in trunk.items():
            assert torch.equal(own[moved(key, moves)], tensor), (method, key)
        head = {n for n, _ in prep.model.named_parameters()} - {moved(k, moves) for k in trunk}
        assert all(not n.startswith(("layer", "Mixed", "Conv2d_")) for n in head), head
        assert w["loaded"] == len(trunk)


# --- end to end ---------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("method", ["acol", "spg"])
def test_acol_and_spg_run_one_epoch_on_the_synthetic_data(cli, tmp_path, method):
    # Scored on val (300 images) in test's place, as a tuning trial is: the whole path
    # runs, at a third of the scoring.
    args = ("--epochs", "1", "--kshot", "2", "--seed", "3", "--eval-split", "val")
    rc, _, err = cli("run", method, *args)
    assert rc == 0, err
    (path,) = (tmp_path / "results").glob(f"{method}-synthetic-*/record.json")
    rec = json.loads(path.read_text())
    assert rec["network"]["class"] == {"acol": "ACoLNet", "spg": "SPGNet"}[method]
    parts = set(rec["history"][0])
    assert {"ce", "ce_b"} <= parts if method == "acol" else {"b1_b2", "c_fused"} <= parts
    assert 0 <= rec["metrics"]["maxboxaccv2"] <= 100


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["vgg16", "inception_v3"])
def test_acol_and_spg_run_on_the_miniature_cub(cli, tmp_path, arch):
    """The two networks new to wsolbench end to end (ResNet-50's layout runs end to end
    on the synthetic data's micro ResNet, and its weights load in the hub test)."""
    data = make_cub(tmp_path / "data", 2, 1)
    for method in ("acol", "spg"):
        rc, _, err = cli(
            "run", method, "--dataset", "cub", "--data-root", str(data), "--epochs", "1",
            "--batch-size", "3", "--kshot", "1", "--pretrained", "none", "--backbone", arch,
        )  # fmt: skip
        assert rc == 0, err
        (path,) = (tmp_path / "results").glob(f"{method}-cub-*/record.json")
        rec = json.loads(path.read_text())
        assert rec["network"]["built_as"] == f"WSOL benchmark {arch}"
        assert rec["config"]["optimizer"] == "sgd" and rec["recipe"]["name"] == "benchmark-cub"
        for key in ("top1_cls", "gt_known_loc", "maxboxaccv2", "pxap"):
            assert 0 <= rec["metrics"][key] <= 100
        path.parent.rename(tmp_path / f"done-{method}")
