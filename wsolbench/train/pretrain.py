"""``wsolbench pretrain``: the synthetic micro-trunks' pretraining, reproducible.

Every result in the SAT paper fine-tunes a backbone pretrained on a large, disjoint
task. The embedded synthetic data mirrors that regime with a source task drawn by the
synthetic plugin (``SourceTask``: shape kind x hue band, its own labels and seeds),
learned by plain classification (class token or pooled features -> linear head). The
trunk (head removed) is written as safetensors with a manifest saying how it was made;
the copy in ``wsolbench/pretrained/`` is what ``--pretrained hub`` loads on synthetic.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import timm
import torch
from safetensors.torch import save
from torch.utils.data import DataLoader

from wsolbench import __version__
from wsolbench.core.digests import file_digest
from wsolbench.core.environment import git_commit
from wsolbench.core.errors import UserError
from wsolbench.core.store import atomic_write, write_json
from wsolbench.models import backbones  # noqa: F401  (registers the micro trunks with timm)
from wsolbench.train.checkpoints import CLASSIFIER_PREFIXES
from wsolbench.train.trainer import param_groups

# The recipe measured for the shipped trunks (README, "Pretrained regime"): the ViT's,
# and the same for the micro ResNet of the CNN methods.
RECIPE: dict[str, Any] = {
    "backbone": "wsolbench_vit_micro_patch8_64",
    "bands": 4,
    "train_per_class": 667,
    "val_per_class": 100,
    "epochs": 6,
    "batch_size": 128,
    "lr": 1e-3,
    "weight_decay": 0.05,
    "warmup_epochs": 1,
    "drop_path": 0.0,
    "seed": 0,
}
RECIPES: dict[str, dict[str, Any]] = {
    RECIPE["backbone"]: RECIPE,
    "wsolbench_resnet_micro_64": {**RECIPE, "backbone": "wsolbench_resnet_micro_64"},
}


def lr_factor(step: int, warmup: int, total: int) -> float:
    """Linear warm-up over ``warmup`` steps, then cosine to 0 at ``total``."""
    if step < warmup:
        return (step + 1) / warmup
    return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(total - warmup, 1)))


def _splits(recipe: dict) -> tuple[Any, Any]:
    from wsolbench.datasets import synthetic  # a plugin module, importable on its own

    task = synthetic.SourceTask(bands=recipe["bands"])
    train = synthetic.SyntheticSplit("train", recipe["train_per_class"], True, task)
    val = synthetic.SyntheticSplit("val", recipe["val_per_class"], False, task)
    return train, val


def _accuracy(model: torch.nn.Module, ds: Any) -> float:
    model.eval()
    right = 0
    with torch.no_grad():
        for batch in DataLoader(ds, batch_size=256):
            right += int((model(batch["image"]).argmax(1) == batch["label"]).sum())
    return 100.0 * right / len(ds)


def train_trunk(recipe: dict) -> tuple[torch.nn.Module, float]:
    """Train the classifier of ``recipe``; returns it and its source val top-1 (%)."""
    torch.manual_seed(recipe["seed"])
    train, val = _splits(recipe)
    model = timm.create_model(
        recipe["backbone"],
        num_classes=recipe["bands"] * 3,
        drop_path_rate=recipe["drop_path"],
    )
    opt = torch.optim.AdamW(param_groups(model, recipe["weight_decay"]), lr=recipe["lr"])
    gen = torch.Generator().manual_seed(recipe["seed"])
    loader = DataLoader(
        train, batch_size=recipe["batch_size"], shuffle=True, drop_last=True, generator=gen
    )
    total, warmup = recipe["epochs"] * len(loader), recipe["warmup_epochs"] * len(loader)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, warmup, total))
    loss_fn = torch.nn.CrossEntropyLoss()
    for _ in range(recipe["epochs"]):
        model.train()
        for batch in loader:  # SyntheticSplit flips training images itself
            loss = loss_fn(model(batch["image"]), batch["label"])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    return model, _accuracy(model, val)


def trunk_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The trunk's tensors: everything but the classification head."""
    return {
        k: v.detach().contiguous()
        for k, v in model.state_dict().items()
        if not k.startswith(CLASSIFIER_PREFIXES)
    }


def pretrain(out: Path, recipe: dict, force: bool = False) -> dict:
    """Train, then write ``<backbone>.safetensors`` and ``<backbone>.json`` (manifest)
    in ``out``; an existing pair is kept unless ``force``."""
    weights = out / f"{recipe['backbone']}.safetensors"
    manifest_path = weights.with_suffix(".json")
    if not force and (weights.exists() or manifest_path.exists()):
        raise UserError(f"{weights}: exists; pass --force to replace it")
    start = time.perf_counter()
    model, accuracy = train_trunk(recipe)
    out.mkdir(parents=True, exist_ok=True)
    state = trunk_state(model)
    atomic_write(weights, lambda f: f.write(save(state, metadata={"format": "pt"})))
    manifest = {
        "file": weights.name,
        "sha256": file_digest(weights),
        "recipe": recipe,
        "source_task": f"{recipe['bands'] * 3} classes = 3 shape kinds x {recipe['bands']} "
        "hue bands, drawn by the synthetic plugin from seeds 101 (train) / 102 (val)",
        "source_val_top1": round(accuracy, 2),
        "tensors": len(state),
        "wall_s": round(time.perf_counter() - start, 1),
        "torch": torch.__version__,
        "wsolbench": __version__,
        "git": git_commit(),
    }
    write_json(manifest_path, manifest)
    return manifest
