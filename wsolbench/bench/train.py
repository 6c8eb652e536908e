"""``wsolbench bench train``: one training step (forward + loss + backward) of SAT
against plain timm DeiT with the same conv head, and against a step-by-step SAT
(explicit softmax, gate multiply and matmul in every block, as the authors' code
does), all sharing one set of weights. Equal outputs are checked before timing."""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
from torch import nn

from wsolbench.core.config import RunConfig, build_config
from wsolbench.core.registry import METHODS
from wsolbench.methods.sat import RECIPES as SAT_RECIPES
from wsolbench.models.losses import cross_entropy_only
from wsolbench.models.trunk import ModelOutput, WSOLViT

NUM_CLASSES = 200  # CUB's head


class PlainViT(WSOLViT):
    """timm's own blocks (fused attention) and the same conv head: no spatial token."""

    def forward(self, images: torch.Tensor) -> ModelOutput:
        x = self.blocks(self.embed(images))
        maps = self.class_maps(self.norm(x)[:, 1:])
        return ModelOutput(logits=maps.mean(dim=(2, 3)), maps=maps)


class StepByStepSAT(nn.Module):
    """SAT written out step by step over the weights of a ``SATNet``: every block's
    attention matrix materialised, the spatial token's row taken from it, the gate
    multiplied into the post-softmax matrix in the last blocks."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, images: torch.Tensor) -> ModelOutput:
        net = self.net
        x = net.embed(images)
        spatial = (net.spatial_token + net.spatial_pos_embed).expand(x.shape[0], -1, -1)
        x = torch.cat([x, spatial], dim=1)
        first_sat, gates = net.depth - net.sat_blocks, []
        for i, block in enumerate(net.blocks):
            a, h = block.attn, block.norm1(x)
            b, n, c = h.shape
            q, k, v = a.qkv(h).reshape(b, n, 3, a.num_heads, -1).permute(2, 0, 3, 1, 4)
            logits = (q * a.scale) @ k.transpose(-2, -1)
            attn = logits.softmax(dim=-1)
            if i >= first_sat:
                gate = torch.sigmoid(logits[:, :, -1].mean(dim=1))  # spatial token's row
                attn = attn * gate[:, None, None, :]
                gates.append(gate[:, 1:-1])
            out = a.proj((attn @ v).transpose(1, 2).reshape(b, n, c))
            x = x + block.drop_path1(block.ls1(out))
            x = x + block.drop_path2(block.ls2(block.mlp(block.norm2(x))))
        maps = torch.stack(gates).mean(dim=0).reshape(x.shape[0], *net.grid)
        class_maps = net.class_maps(net.norm(x)[:, 1:-1])
        return ModelOutput(logits=class_maps.mean(dim=(2, 3)), maps=maps)


def _models(cfg: RunConfig) -> dict[str, nn.Module]:
    torch.manual_seed(0)
    sat = METHODS.get("sat")().build(cfg, NUM_CLASSES)
    plain = PlainViT(cfg["backbone"], NUM_CLASSES, cfg["drop_path"])
    plain.load_state_dict(sat.state_dict(), strict=False)  # all but the spatial token
    return {
        "timm DeiT, same head": plain,
        "SAT (ours)": sat,
        "SAT step by step": StepByStepSAT(sat),
    }


def check_equal(models: dict[str, nn.Module], images: torch.Tensor) -> float:
    """Largest difference between ours and the step-by-step SAT (logits and maps)."""
    with torch.no_grad():
        a, b = models["SAT (ours)"](images), models["SAT step by step"](images)
    diff = max((a.logits - b.logits).abs().max().item(), (a.maps - b.maps).abs().max().item())
    if diff > 1e-3:
        raise RuntimeError(f"SAT and its step-by-step reference differ by {diff:.2e}")
    return diff


def _step(model: nn.Module, loss: Callable, images: torch.Tensor, labels, amp: bool) -> None:
    with torch.autocast(images.device.type, dtype=torch.bfloat16, enabled=amp):
        total, _ = loss(model(images), labels)
    total.backward()
    model.zero_grad(set_to_none=True)


def _losses(cfg: RunConfig) -> dict[str, Callable]:
    """Each model's training loss: SAT's own for both SATs, cross-entropy for timm's."""
    sat = METHODS.get("sat")()
    sat_loss = lambda out, y: sat.loss(out, y, cfg, 1.0)  # noqa: E731
    return {"timm DeiT, same head": cross_entropy_only, "SAT (ours)": sat_loss,
            "SAT step by step": sat_loss}  # fmt: skip


def _interleaved(fns: dict[str, Callable[[], None]], rounds: int, steps: int, gpu: bool):
    """Seconds per call of each function, best of ``rounds``; the functions take turns
    within each round so that drift in clock speed or load hits all of them alike."""
    sync = torch.cuda.synchronize if gpu else (lambda: None)
    for fn in fns.values():
        fn()  # warm-up: kernels chosen, memory pools filled
    sync()
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(rounds):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            for _ in range(steps):
                fn()
            sync()
            best[name] = min(best[name], (time.perf_counter() - t0) / steps)
    return best


def _peak_gib(fn: Callable[[], None]) -> float:
    """Peak GPU memory of one call, measured on its own."""
    torch.cuda.synchronize()
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    fn()
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated() / 2**30


def train_step(
    images: int = 0, device: str | None = None, batch: int | None = None, **_
) -> list[tuple]:
    """Images/s of one training step per model, and peak GPU memory on a GPU
    (bf16 autocast there, fp32 on the CPU)."""
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    gpu = dev.type == "cuda"
    batch = batch or (128 if gpu else 8)
    cfg = build_config(
        {"method": "sat", "drop_path": 0.0},
        SAT_RECIPES["cub"].settings(),
        METHODS.get("sat").options,
    )
    models = {k: m.to(dev) for k, m in _models(cfg).items()}
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch, 3, 224, 224, generator=gen).to(dev)
    y = torch.randint(0, NUM_CLASSES, (batch,), generator=gen).to(dev)
    for m in models.values():
        m.eval()
    diff = check_equal(models, x[:2])
    for m in models.values():
        m.train()
    losses = _losses(cfg)
    fns = {
        name: (lambda m=model, f=losses[name]: _step(m, f, x, y, gpu))
        for name, model in models.items()
    }
    seconds = _interleaved(fns, rounds=3, steps=10 if gpu else 2, gpu=gpu)
    rates = {name: batch / s for name, s in seconds.items()}
    peaks = {name: _peak_gib(fn) if gpu else None for name, fn in fns.items()}
    where = f"{torch.cuda.get_device_name()} bf16" if gpu else f"CPU {torch.get_num_threads()} thr"
    ours = rates["SAT (ours)"]
    rows = []
    for name, rate in rates.items():
        mem = f", peak {peaks[name]:.2f} GiB" if gpu else ""
        ratio = "1.00x" if name == "SAT (ours)" else f"ours / this = {ours / rate:.2f}x"
        rows.append(
            (f"train step: {name}", f"{rate:.1f} img/s{mem}", ratio, f"{where}, batch {batch}")
        )
    rows.append(
        ("train step: equal outputs", f"max abs difference {diff:.1e}", "ours vs step by step", "")
    )
    return rows
