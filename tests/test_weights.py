"""Starting weights: ``hub`` through a real huggingface_hub cache layout written here
(``HF_HUB_OFFLINE=1``, no network), ``none``, and files; the run id follows the
weights' content, not their path."""

import hashlib
import json
import shutil

import pytest
import timm
import torch
from miniature import make_cub
from safetensors.torch import save_file

from wsolbench.core.registry import METHODS
from wsolbench.train.checkpoints import load_pretrained
from wsolbench.train.plan import plan
from wsolbench.train.runner import prepare
from wsolbench.train.weights import hub_file

BACKBONE = "vit_tiny_patch16_224"  # DeiT-T's shape: 5.7M parameters, written here at random
REPO = "timm/vit_tiny_patch16_224.augreg_in21k_ft_in1k"
REVISION = "0123456789abcdef0123456789abcdef01234567"
TINY = ["--backbone", BACKBONE, "--epochs", "1", "--batch-size", "4"]


def write_hub_cache(home, seed: int = 0, backbone: str = BACKBONE, hub_repo: str = REPO):
    """huggingface_hub's own layout: models--timm--<name>.<tag>/snapshots/<rev>/ with
    refs/main naming the revision."""
    repo = home / "hub" / ("models--" + hub_repo.replace("/", "--"))
    snap = repo / "snapshots" / REVISION
    snap.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(REVISION)
    torch.manual_seed(seed)
    state = timm.create_model(backbone, pretrained=False).state_dict()
    save_file({k: v.contiguous() for k, v in state.items()}, str(snap / "model.safetensors"))
    return snap / "model.safetensors", state


@pytest.fixture
def cub(tmp_path):
    return make_cub(tmp_path / "data")


def env_for(home):
    return {"HF_HOME": str(home), "HF_HUB_OFFLINE": "1"}


@pytest.mark.slow
def test_hub_weights_load_through_timm_from_the_cache(
    cli_process, cli, tmp_path, cub, empty_hub_cache
):
    path, state = write_hub_cache(empty_hub_cache)
    rc, out, err = cli_process(
        "run", "sat", "--dataset", "cub", "--data-root", str(cub), *TINY,
        env=env_for(empty_hub_cache),
    )  # fmt: skip
    assert rc == 0, err
    (rec_path,) = (tmp_path / "results").glob("sat-cub-*/record.json")
    rec = json.loads(rec_path.read_text())
    w = rec["pretrained"]
    assert w["source"] == "hub" and w["repo"] == REPO
    assert w["revision"] == REVISION and w["file"] == str(path)
    assert w["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert rec["config"]["weights_sha256"] == w["sha256"] and rec["config"]["pretrained"] == "hub"
    # Every trunk tensor came from the file; what is left is SAT's own and the head.
    assert w["loaded"] == len(state) - 2  # all but the classifier's weight and bias
    assert all(k.startswith(("head.", "loc_", "spatial")) for k in w["missing"]), w["missing"]
    # The listing reads the same cache (in this process, pointed at it).
    rc, out, _ = cli("weights", "list")
    assert rc == 0 and REPO[5:] in out and w["sha256"] in out


@pytest.fixture
def empty_hub_cache(tmp_path, monkeypatch):
    """This process's huggingface_hub pointed at an empty cache (the constants are
    read when huggingface_hub is imported, so they are set here, not in the env)."""
    from huggingface_hub import constants

    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    hub_file.cache_clear()
    yield tmp_path / "hf"
    hub_file.cache_clear()


def test_empty_cache_is_one_line_naming_the_ways_out(cli, tmp_path, cub, empty_hub_cache):
    rc, out, err = cli("run", "sat", "--dataset", "cub", "--data-root", str(cub), *TINY)
    assert rc == 2 and err.count("\n") == 1, err
    for part in (REPO, f"wsolbench weights fetch {BACKBONE}", "HF_HOME", "--pretrained FILE"):
        assert part in err
    assert not (tmp_path / "results").exists()


@pytest.fixture
def unreachable_hub(empty_hub_cache, monkeypatch):
    """Online mode with a hub endpoint nothing listens on (a closed local port)."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")
    return empty_hub_cache


def test_an_unreachable_hub_fails_once_in_one_line(cli, cub, unreachable_hub, monkeypatch):
    """No retry storm: one connection attempt, no download tried, then the same
    one-line answer as an empty offline cache."""
    import socket

    import huggingface_hub

    attempts = []
    real = socket.create_connection
    monkeypatch.setattr(
        socket, "create_connection", lambda *a, **k: attempts.append(a) or real(*a, **k)
    )
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", lambda *a, **k: pytest.fail("download"))
    rc, _, err = cli("run", "sat", "--dataset", "cub", "--data-root", str(cub), *TINY)
    assert rc == 2 and err.count("\n") == 1 and "cannot be downloaded here" in err, err
    assert attempts == [(("127.0.0.1", 9),)]


def test_the_datasets_own_problem_comes_before_the_weights(cli, tmp_path, unreachable_hub):
    """An ILSVRC folder without train/: named at once, before any weights are sought."""
    (tmp_path / "data" / "imagenet").mkdir(parents=True)
    rc, _, err = cli("run", "sat", "--dataset", "imagenet", "--data-root", str(tmp_path / "data"))
    assert rc == 2 and err.count("\n") == 1, err
    assert f"{tmp_path / 'data' / 'imagenet' / 'train'}: missing" in err


def test_none_trains_from_scratch_and_says_so(cli, tmp_path, cub, empty_hub_cache):
    args = ("run", "sat", "--dataset", "cub", "--data-root", str(cub), "--pretrained", "none")
    rc, out, err = cli(*args, *TINY)
    assert rc == 0 and "trained from scratch (--pretrained none)" in out, err
    (rec_path,) = (tmp_path / "results").glob("sat-cub-*/record.json")
    rec = json.loads(rec_path.read_text())
    assert rec["pretrained"]["source"] == "none" and rec["config"]["weights_sha256"] == "none"


def test_one_file_at_two_paths_is_one_run(tmp_path):
    torch.save({"model": {"pos_embed": torch.zeros(1, 65, 96)}}, tmp_path / "a.pt")
    (tmp_path / "copy").mkdir()
    shutil.copy(tmp_path / "a.pt", tmp_path / "copy" / "a.pt")
    torch.save({"model": {"pos_embed": torch.ones(1, 65, 96)}}, tmp_path / "b.pt")
    ids = [
        plan({"method": "sat", "pretrained": str(p)}).cfg.run_id
        for p in (tmp_path / "a.pt", tmp_path / "copy" / "a.pt", tmp_path / "b.pt")
    ]
    assert ids[0] == ids[1] != ids[2]
    assert plan({"method": "sat"}).cfg.run_id not in ids  # from scratch: another run


MICRO224 = "wsolbench_vit_micro_patch16_224"  # no weights of its own, shipped or hub


def test_position_embedding_of_another_grid_is_resampled(tmp_path):
    # A ViT with our micro trunk's widths made for 160x160 (10x10 patches); the model
    # is at 224 (14x14). The grid is resampled with timm's function, not skipped.
    src = timm.create_model(
        "vit_tiny_patch16_224", img_size=160, embed_dim=96, depth=6, num_heads=3, num_classes=0
    )
    torch.save({"model": src.state_dict()}, tmp_path / "vit160.pt")
    model = METHODS.get("sat")().build(
        plan({"method": "sat", "backbone": MICRO224, "pretrained": "none"}).cfg, 3
    )
    report = load_pretrained(model, tmp_path / "vit160.pt")
    assert report["resampled"] == ["pos_embed: (1, 101, 96) -> (1, 197, 96)"]
    assert "pos_embed" not in report["missing"] and not report["mismatched"]
    expected = timm.layers.resample_abs_pos_embed(src.pos_embed, [14, 14], num_prefix_tokens=1)
    assert torch.equal(model.pos_embed.detach(), expected.detach())
    assert torch.equal(model.pos_embed[0, 0], src.pos_embed[0, 0])  # the class token's own


def test_hub_file_prefers_the_cache_without_a_request(tmp_path, monkeypatch):
    path, _ = write_hub_cache(tmp_path / "hf")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    hub_file.cache_clear()
    assert hub_file(BACKBONE, cached_only=True) == (REPO, path)
    hub_file.cache_clear()


def test_hub_weights_load_into_a_cnn_trunk(cub, empty_hub_cache):
    """A CNN method on real data starts from the hub's weights for its timm CNN: every
    trunk tensor of the cached file lands under ``trunk.``; only the classifier is new."""
    path, state = write_hub_cache(empty_hub_cache, 1, "resnet18", "timm/resnet18.tv_in1k")
    p = plan({"method": "cam", "dataset": "cub", "data_root": str(cub),
              "backbone": "resnet18.tv_in1k"})  # fmt: skip
    prep = prepare(p)
    w = prep.pretrained
    assert w["source"] == "hub" and w["repo"] == "timm/resnet18.tv_in1k"
    assert w["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert w["loaded"] == len(state) - 2 and sorted(w["missing"]) == ["fc.bias", "fc.weight"]
    own = prep.model.state_dict()
    for name, tensor in state.items():
        if not name.startswith("fc."):
            assert torch.equal(own["trunk." + name], tensor), name


def test_kept_classifier_comes_from_the_hub_cache(empty_hub_cache):
    """The benchmark on ILSVRC keeps the pretrained 1000-class classifier: with
    ``keep_classifier`` the cached file's fc lands in the network's fc, exactly; a
    network of another class count is refused in one line."""
    from wsolbench.core.errors import UserError
    from wsolbench.models.cnn import WSOLCNN
    from wsolbench.train.weights import load_weights, resolve

    _, state = write_hub_cache(empty_hub_cache, 2, "resnet18", "timm/resnet18.tv_in1k")
    weights = resolve("hub", "resnet18.tv_in1k", cached_only=True)
    model = WSOLCNN("resnet18.tv_in1k", 1000, "normal")
    report = load_weights(model, weights, "resnet18.tv_in1k", keep_classifier=True)
    assert torch.equal(model.fc.weight, state["fc.weight"])
    assert torch.equal(model.fc.bias, state["fc.bias"])
    assert report["classifier"] == "kept: (1000, 512) from the pretrained weights"
    assert torch.equal(model.trunk.conv1.weight, state["conv1.weight"])
    with pytest.raises(UserError, match=r"classifier is \(1000, 512\), this network's \(3, 512\)"):
        load_weights(WSOLCNN("resnet18.tv_in1k", 3), weights, "resnet18.tv_in1k", True)
    plain = WSOLCNN("resnet18.tv_in1k", 1000, "normal")
    load_weights(plain, weights, "resnet18.tv_in1k")
    assert not torch.equal(plain.fc.weight, state["fc.weight"])
