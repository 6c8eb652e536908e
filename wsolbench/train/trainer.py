"""The training loop shared by every method, as each recipe sets it up: AdamW with
no decay on 1-D tensors and tokens (SAT, TS-CAM) or SGD with Nesterov momentum and L2
on every tensor (the WSOL benchmark); a constant, cosine or step learning rate with an
optional linear warm-up; spatial-loss warm-up; and per-epoch checkpoints that a
resumed run continues from exactly."""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from wsolbench.core.config import RunConfig
from wsolbench.core.errors import UserError
from wsolbench.core.progress import Phase
from wsolbench.core.store import save_torch
from wsolbench.models.method import Method, Step

# What a per-epoch checkpoint holds (``train``), so a resumed run continues exactly.
CHECKPOINT_KEYS = frozenset({"model", "optimizer", "scheduler", "rng", "history", "epoch"})


def param_groups(model: nn.Module, weight_decay: float, decay_all: bool = False) -> list[dict]:
    """No weight decay on 1-D parameters, biases, tokens and position embeddings (timm's
    and the SAT authors' rule), unless ``decay_all``: decay on every tensor."""
    skip = model.no_weight_decay() if hasattr(model, "no_weight_decay") else set()
    decay, plain = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        no_decay = not decay_all and (p.ndim <= 1 or name.endswith(".bias") or name in skip)
        (plain if no_decay else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": plain, "weight_decay": 0.0}]


SPATIAL_PARTS = {"area", "norm"}  # the loss parts of models.losses.spatial_losses


def spatial_weight(progress: float, delay: float, ramp: float) -> float:
    """0 before ``delay`` (a share of the run), then a linear ramp to 1 over ``ramp``."""
    if progress < delay:
        return 0.0
    return 1.0 if ramp <= 0 else min(1.0, (progress - delay) / ramp)


def warm_up_warning(cfg: RunConfig) -> str | None:
    """A warning when the run's epochs leave the spatial losses under one epoch."""
    if cfg["loss_delay"] is None:
        return None  # the method trains without spatial losses
    on = cfg["epochs"] * (1 - cfg["loss_delay"])
    if on >= 1:
        return None
    return (
        f"wsolbench: warning: the spatial losses start after {cfg['loss_delay']:.0%} of "
        f"{cfg['epochs']} epoch(s) and are on for {on:.2f} epoch; the map may not form "
        "(raise --epochs or lower --loss-delay)"
    )


def train(
    method: Method,
    model: nn.Module,
    cfg: RunConfig,
    loader: DataLoader,
    device: torch.device,
    checkpoint: Path | None = None,
) -> list[dict]:
    """Train for ``cfg.epochs``; returns per-epoch mean losses. With ``checkpoint``
    the state is saved after every epoch and a run that finds one resumes from it."""
    warning = warm_up_warning(cfg)
    model.to(device)
    opt, sched = optimizer(build_groups(method, model, cfg), cfg, len(loader))
    history, start = resume(checkpoint, model, opt, sched)
    for epoch in range(start, cfg.epochs):
        if loader.generator is not None:  # shuffling independent of resume
            loader.generator.manual_seed(cfg.seed * 100_003 + epoch)
        means = train_epoch(method, model, cfg, loader, device, (opt, sched), epoch)
        history.append(means | {"epoch": epoch + 1})
        # Told once the first epoch shows the method computes spatial losses at all: a
        # plugin trained on cross-entropy alone never sees it.
        if warning and epoch == start and SPATIAL_PARTS & set(means):
            print(warning, file=sys.stderr)
        if checkpoint is not None:
            state = {
                "model": model.state_dict(),
                "optimizer": opt.state_dict(),
                "scheduler": sched.state_dict(),
                "rng": torch.get_rng_state(),
                "history": history,
                "epoch": epoch + 1,
            }
            save_torch(checkpoint, state)
    return history


def build_groups(method: Method, model: nn.Module, cfg: RunConfig) -> list[dict]:
    """The method's parameter groups (or the default ones), trainable parameters
    only, each with its own learning rate: the run's times its ``lr_scale``."""
    groups = method.param_groups(model, cfg) or param_groups(model, cfg.weight_decay, cfg.decay_all)
    out = []
    for g in groups:
        params = [p for p in g["params"] if p.requires_grad]
        if params:
            extra = {k: v for k, v in g.items() if k not in ("params", "lr_scale")}
            out.append({**extra, "params": params, "lr": cfg.lr * g.get("lr_scale", 1.0)})
    return out


def describe_groups(groups: list[dict], cfg: RunConfig) -> list[dict]:
    """What the record says of each group: its size, learning rate and decay."""
    return [
        {
            "tensors": len(g["params"]),
            "parameters": sum(p.numel() for p in g["params"]),
            "lr": g["lr"],
            "weight_decay": g.get("weight_decay", cfg.weight_decay),
        }
        for g in groups
    ]


def lr_factor(step: int, steps_per_epoch: int, cfg: RunConfig) -> float:
    """The learning rate at optimizer step ``step`` (from 0), as a factor of the
    recipe's. ``step``: x ``lr_factor`` for each epoch of ``lr_steps`` (counted from 1,
    as TS-CAM's and the benchmark's loops count) that has started; ``cosine``: half a
    cosine over every step; then a linear warm-up over ``warmup_epochs``."""
    total = cfg.epochs * steps_per_epoch
    if cfg.schedule == "cosine":
        factor = 0.5 * (1 + math.cos(math.pi * step / total))
    elif cfg.schedule == "step":
        epoch = step // steps_per_epoch + 1
        factor = cfg.lr_factor ** sum(1 for e in cfg.lr_steps or () if e <= epoch)
    else:
        factor = 1.0
    warm = cfg.warmup_epochs * steps_per_epoch
    return factor * min(1.0, (step + 1) / warm) if warm > 0 else factor


def optimizer(groups: list[dict], cfg: RunConfig, steps_per_epoch: int) -> tuple[Any, Any]:
    """The recipe's optimizer over the groups, and its learning-rate schedule. The SAT
    authors build a cosine schedule but never step it: their rate is constant."""
    if cfg.optimizer == "sgd":
        opt = torch.optim.SGD(
            groups,
            lr=cfg.lr,
            momentum=cfg.momentum,
            nesterov=cfg.nesterov,
            weight_decay=cfg.weight_decay,
        )
    else:
        opt = torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return opt, torch.optim.lr_scheduler.LambdaLR(
        opt, lambda step: lr_factor(step, steps_per_epoch, cfg)
    )


def resume(checkpoint: Path | None, model: nn.Module, opt: Any, sched: Any) -> tuple[list, int]:
    """Load a checkpoint's state when there is one; returns (history, next epoch)."""
    if checkpoint is None or not checkpoint.is_file():
        return [], 0
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["optimizer"])
    sched.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["rng"])
    return state["history"], state["epoch"]


def train_epoch(
    method: Method,
    model: nn.Module,
    cfg: RunConfig,
    loader: DataLoader,
    device: torch.device,
    stepper: tuple[Any, Any],
    epoch: int,
) -> dict[str, float]:
    """One epoch; returns the mean of each loss part over its steps."""
    opt, sched = stepper
    model.train()
    steps, sums = len(loader), {}
    phase = Phase(loader, f"train {epoch + 1}/{cfg.epochs}", after=cfg.epochs - epoch - 1)
    # None: the method uses no spatial loss, so the weight is never read.
    delay, ramp = cfg.loss_delay or 0.0, cfg.loss_ramp or 0.0
    for i, batch in enumerate(phase):
        w = spatial_weight((epoch + i / steps) / cfg.epochs, delay, ramp)
        loss, parts = method.train_step(
            model, batch, Step(epoch, i, steps, cfg.epochs, w, device, cfg)
        )
        if not torch.isfinite(loss):
            raise UserError(
                f"training diverged: loss {float(loss)} at epoch {epoch + 1}, step {i + 1} "
                f"(lr {cfg.lr:g}); nothing was recorded"
            )
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        parts["loss"] = float(loss.detach())
        for k, v in parts.items():
            sums[k] = sums.get(k, 0.0) + v
        phase.count(len(batch["label"]))
        phase.show(loss=f"{sums['loss'] / (i + 1):.3f}")
    return {k: round(v / steps, 5) for k, v in sums.items()}
