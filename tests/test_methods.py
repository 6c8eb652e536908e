"""The method plugins: map definitions checked step by step, class-aware selection,
loss switches, and loading published checkpoints through one key map."""

import pytest
import torch
from conftest import micro_config

from wsolbench.core.errors import UserError
from wsolbench.core.registry import METHODS
from wsolbench.models.attention import block_forward
from wsolbench.models.losses import gaussian_kernel
from wsolbench.train.checkpoints import load_checkpoint

X = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
LABELS = torch.tensor([1, 4])


def build(name, seed=0, **options):
    torch.manual_seed(seed)
    method = METHODS.get(name)()
    cfg = micro_config(name, options=options, drop_path=0.0)
    return method, method.build(cfg, 6).eval(), cfg


def cls_row_probs(block, x):
    """Step by step: the class token's post-softmax attention row, mean over heads."""
    attn = block.attn
    b, n, c = x.shape
    h = block.norm1(x)
    qkv = attn.qkv(h).reshape(b, n, 3, attn.num_heads, attn.head_dim).permute(2, 0, 3, 1, 4)
    q, k, _ = qkv.unbind(0)
    return ((q * attn.scale) @ k.transpose(-2, -1)).softmax(-1)[:, :, 0].mean(1)


def minmax(m):
    lo, hi = m.amin((-2, -1), keepdim=True), m.amax((-2, -1), keepdim=True)
    return (m - lo) / (hi - lo + 1e-6)


@torch.no_grad()
def test_tscam_map_is_summed_cls_attention_times_class_maps():
    method, net, _ = build("tscam")
    out = net(X)
    x = net.embed(X)
    attention = 0
    for block in net.blocks:
        attention = attention + cls_row_probs(block, x)[:, 1:]
        x = block(x)  # timm's own block
    class_maps = net.class_maps(net.norm(x)[:, 1:])
    expected = minmax(attention.reshape(2, 1, 8, 8) * class_maps)
    torch.testing.assert_close(out.maps, expected, atol=1e-5, rtol=0)
    torch.testing.assert_close(out.logits, class_maps.mean((2, 3)), atol=1e-5, rtol=0)
    picked = method.localization_maps(out, LABELS)
    assert torch.equal(picked[0], out.maps[0, 1]) and torch.equal(picked[1], out.maps[1, 4])


@torch.no_grad()
def test_cam_map_is_the_class_map():
    method, net, _ = build("cam")
    out = net(X)
    x = net.embed(X)
    for block in net.blocks:
        x = block(x)
    class_maps = net.class_maps(net.norm(x)[:, 1:])
    torch.testing.assert_close(out.maps, minmax(class_maps), atol=1e-6, rtol=0)
    assert method.class_aware and out.maps.shape == (2, 6, 8, 8)


@torch.no_grad()
def test_attnmap_uses_the_class_token_and_gates_like_sat():
    method, net, _ = build("attnmap")
    assert not hasattr(net, "spatial_token") and not method.class_aware
    # maps: sigmoid of the head-mean pre-softmax cls row, averaged over the last 3 blocks
    x, rows = net.embed(X), []
    for i, block in enumerate(net.blocks):
        x, logits = block_forward(block, x, row_index=0 if i >= 3 else None, gate_keys=i >= 3)
        if i >= 3:
            rows.append(torch.sigmoid(logits.mean(1))[:, 1:])
    out = net(X)
    torch.testing.assert_close(out.maps, torch.stack(rows).mean(0).reshape(2, 8, 8))
    # without the gate the logits are those of the plain network
    _, plain, _ = build("attnmap", gate=False)
    x = plain.embed(X)
    for block in plain.blocks:
        x = block(x)
    ungated = plain.class_maps(plain.norm(x)[:, 1:]).mean((2, 3))
    torch.testing.assert_close(plain(X).logits, ungated, atol=1e-5, rtol=0)
    assert not torch.allclose(out.logits, ungated, atol=1e-4)


def test_sat_loss_switches():
    method, net, cfg = build("sat")
    out = net(X)
    _, parts = method.loss(out, LABELS, cfg, 1.0)
    assert set(parts) == {"ce", "area", "norm"}
    for opts, want in (
        ({"area_loss": False}, {"ce", "norm"}),
        ({"norm_loss": False}, {"ce", "area"}),
    ):
        _, p = method.loss(out, LABELS, micro_config("sat", options=opts), 1.0)
        assert set(p) == want
    _, flat = method.loss(out, LABELS, micro_config("sat", options={"gaussian": False}), 1.0)
    assert flat["norm"] != parts["norm"]
    total, _ = method.loss(out, LABELS, cfg, 0.0)  # warm-up: spatial losses weighted 0
    assert total.item() == pytest.approx(parts["ce"], abs=1e-6)


def test_tscam_spatial_losses_option():
    method, net, _ = build("tscam")
    out = net(X)
    _, plain = method.loss(out, LABELS, micro_config("tscam"), 1.0)
    _, spatial = method.loss(
        out, LABELS, micro_config("tscam", options={"spatial_losses": True}), 1.0
    )
    assert set(plain) == {"ce"} and set(spatial) == {"ce", "area", "norm"}


def authors_sat_checkpoint(net):
    """A file laid out like the SAT authors' release, from our net's own tensors."""
    names = {"spatial_token": "loc_token", "spatial_pos_embed": "loc_embed"}
    state = {names.get(k, k): v.clone() for k, v in net.state_dict().items()}
    state["weight"] = gaussian_kernel()
    return {"model": state}


@torch.no_grad()
def test_loads_sat_authors_checkpoint(tmp_path):
    method, source, _ = build("sat", seed=1)
    path = tmp_path / "sat_authors.pth"
    torch.save(authors_sat_checkpoint(source), path)
    assert {"loc_token", "loc_embed", "weight"} <= set(torch.load(path, weights_only=True)["model"])
    _, target, _ = build("sat", seed=2)
    assert not torch.equal(target(X).logits, source(X).logits)
    load_checkpoint(target, path, method.checkpoint_keys)
    a, b = source(X), target(X)
    assert torch.equal(a.logits, b.logits) and torch.equal(a.maps, b.maps)


@torch.no_grad()
def test_loads_tscam_checkpoint_saved_from_dataparallel(tmp_path):
    method, source, _ = build("tscam", seed=1)
    path = tmp_path / "tscam.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in source.state_dict().items()}}, path)
    _, target, _ = build("tscam", seed=2)
    load_checkpoint(target, path, method.checkpoint_keys)
    assert torch.equal(source(X).maps, target(X).maps)


@pytest.mark.parametrize(
    "edit, message",
    [
        (
            lambda s: s.update({"head.weight": torch.zeros(10, 96, 3, 3)}),
            "head.weight: checkpoint (10, 96, 3, 3) vs model (6, 96, 3, 3)",
        ),
        (lambda s: s.pop("loc_token"), "key 'spatial_token' is missing (model shape (1, 1, 96))"),
        (
            lambda s: s.update({"blocks.9.attn.qkv.weight": torch.zeros(1)}),
            "key 'blocks.9.attn.qkv.weight' is not in the model (1 such keys)",
        ),
    ],
)
def test_checkpoint_that_does_not_fit(tmp_path, edit, message):
    method, net, _ = build("sat")
    ckpt = authors_sat_checkpoint(net)
    edit(ckpt["model"])
    path = tmp_path / "bad.pth"
    torch.save(ckpt, path)
    with pytest.raises(UserError) as e:
        load_checkpoint(net, path, method.checkpoint_keys)
    assert str(e.value) == f"{path}: {message}"
