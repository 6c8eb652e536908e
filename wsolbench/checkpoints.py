"""Reading checkpoints (always ``weights_only=True``) and loading pretrained weights."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from .errors import UserError

CLASSIFIER_PREFIXES = ("head.", "head_dist.", "fc.", "classifier.")


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """A state dict from a file holding it plainly or under ``model`` / ``state_dict``."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: checkpoint file not found")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for corrupt or unsafe files
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserError(f"{path}: not a readable checkpoint ({first})") from None
    for key in ("model", "state_dict"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise UserError(f"{path}: holds no state dict of tensors")
    return obj


def load_pretrained(model: nn.Module, path: str | Path) -> dict[str, list[str]]:
    """Load a DeiT/timm checkpoint where names and shapes match; the classifier is
    dropped. Returns what was not loaded, for the run record."""
    given = {
        k: v for k, v in read_state_dict(path).items() if not k.startswith(CLASSIFIER_PREFIXES)
    }
    own = model.state_dict()
    take = {k: v for k, v in given.items() if k in own and own[k].shape == v.shape}
    mismatched = [
        f"{k}: checkpoint {tuple(v.shape)} vs model {tuple(own[k].shape)}"
        for k, v in given.items()
        if k in own and own[k].shape != v.shape
    ]
    if not take:
        first = mismatched[0] if mismatched else "no parameter name in common"
        raise UserError(f"{path}: does not fit the model (first mismatch: {first})")
    model.load_state_dict(take, strict=False)
    return {
        "file": str(path),
        "loaded": len(take),
        "missing": sorted(k for k in own if k not in take),
        "unexpected": sorted(k for k in given if k not in own),
        "mismatched": mismatched,
    }
