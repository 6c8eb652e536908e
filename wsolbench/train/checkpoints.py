"""Reading checkpoints (always ``weights_only=True``) and loading pretrained weights."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file
from timm.layers import resample_abs_pos_embed
from torch import nn

from wsolbench.core.errors import UserError

CLASSIFIER_PREFIXES = ("head.", "head_dist.", "fc.", "classifier.")


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """A state dict from a safetensors file, or a torch file holding it plainly or under
    ``model`` / ``state_dict``."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: checkpoint file not found")
    try:
        if path.suffix == ".safetensors":
            return load_file(path)
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for corrupt or unsafe files
        # torch's own message can suggest weights_only=False; wsolbench never runs a
        # pickle, so the reason is told in its words.
        raise UserError(
            f"{path}: not a readable checkpoint ({type(e).__name__}: not a torch or "
            "safetensors file of tensors, or truncated; pickled objects are never loaded)"
        ) from None
    for key in ("model", "state_dict"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise UserError(f"{path}: holds no state dict of tensors")
    return obj


def load_pretrained(model: nn.Module, path: str | Path) -> dict[str, Any]:
    """Load a DeiT/timm checkpoint file where names match (see ``load_state``)."""
    return load_state(model, read_state_dict(path), str(path))


def load_state(model: nn.Module, given: dict[str, torch.Tensor], source: str) -> dict[str, Any]:
    """Load tensors where names and shapes match; the classifier is dropped; a position
    embedding made for another patch grid is resampled to the model's with timm's own
    function. Returns what was (not) loaded, for the run record."""
    given = {k: v for k, v in given.items() if not k.startswith(CLASSIFIER_PREFIXES)}
    given = _under_trunk(model, given)
    rename = getattr(model, "rename_pretrained", None)
    if rename is not None:  # the WSOL benchmark's networks move some layers
        given = rename(given)
    own = model.state_dict()
    resampled = _resample_pos_embed(model, given, own)
    take = {k: v for k, v in given.items() if k in own and own[k].shape == v.shape}
    mismatched = [
        f"{k}: checkpoint {tuple(v.shape)} vs model {tuple(own[k].shape)}"
        for k, v in given.items()
        if k in own and own[k].shape != v.shape
    ]
    if not take:
        first = mismatched[0] if mismatched else "no parameter name in common"
        raise UserError(f"{source}: does not fit the model (first mismatch: {first})")
    model.load_state_dict(take, strict=False)
    return {
        "file": source,
        "loaded": len(take),
        "missing": sorted(k for k in own if k not in take),
        "unexpected": sorted(k for k in given if k not in own),
        "mismatched": mismatched,
        "resampled": resampled,
    }


def _under_trunk(model: nn.Module, given: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Backbone tensors under the network's names: a CNN network keeps timm's model
    under ``trunk.`` (its ``trunk_prefix``); names already there stay as they are."""
    prefix = getattr(model, "trunk_prefix", "")
    if not prefix or any(k.startswith(prefix) for k in given):
        return given
    return {prefix + k: v for k, v in given.items()}


def _resample_pos_embed(model: nn.Module, given: dict, own: dict) -> list[str]:
    """``pos_embed`` of another grid -> the model's grid (class token kept as is)."""
    old, new = given.get("pos_embed"), own.get("pos_embed")
    grid = getattr(model, "grid", None)
    if old is None or new is None or grid is None or old.shape == new.shape:
        return []
    if old.ndim != 3 or old.shape[-1] != new.shape[-1]:
        return []  # another width: a real mismatch, reported as such
    prefix = old.shape[1] - int(round((old.shape[1] - 1) ** 0.5)) ** 2
    given["pos_embed"] = resample_abs_pos_embed(old, list(grid), num_prefix_tokens=prefix)
    return [f"pos_embed: {tuple(old.shape)} -> {tuple(given['pos_embed'].shape)}"]


def load_checkpoint(model: nn.Module, path: str | Path, key_map: dict[str, str | None]) -> None:
    """Load a full trained model strictly: a method's published checkpoint (its names
    translated by ``key_map``, the one place that knows them), a DataParallel one
    (``module.`` prefix) or our own ``model.pt``. Any key or shape that does not fit
    is an error naming the first such key."""
    state: dict[str, torch.Tensor] = {}
    for key, value in read_state_dict(path).items():
        key = key.removeprefix("module.")
        target = key_map.get(key, key)
        if target is not None:
            state[target] = value
    own = model.state_dict()
    for key, value in own.items():
        if key not in state:
            raise UserError(f"{path}: key '{key}' is missing (model shape {tuple(value.shape)})")
        if state[key].shape != value.shape:
            raise UserError(
                f"{path}: {key}: checkpoint {tuple(state[key].shape)} vs model {tuple(value.shape)}"
            )
    extra = [k for k in state if k not in own]
    if extra:
        raise UserError(f"{path}: key '{extra[0]}' is not in the model ({len(extra)} such keys)")
    model.load_state_dict(state)
