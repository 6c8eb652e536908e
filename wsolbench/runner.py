"""One run = method x dataset x settings: check everything, train, evaluate, record.

Every check that can fail on user input happens before the run folder is created,
so bad input leaves nothing in the results store."""

from __future__ import annotations

import functools
import math
import shutil
import time
import traceback
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, Subset

from . import PROTOCOL_VERSION
from .checkpoints import load_checkpoint
from .config import RunConfig, build_config
from .data import DatasetPlugin, Splits, collate
from .environment import environment
from .errors import UserError
from .evaluation.evaluate import evaluate_split, summarize
from .evaluation.perimage import PerImage
from .evaluation.pool import scoring_workers
from .evaluation.scores import SplitScores, TrivialBoxes
from .freeze import PRESETS, apply_freeze
from .kshot import kshot_indices
from .method import Method
from .models.trunk import create_vit
from .registry import DATASETS, METHODS
from .store import Store, save_torch, write_json
from .trainer import train
from .weights import Weights, load_weights, resolve

PROTOCOL = {
    "version": PROTOCOL_VERSION,
    "maps": "the method's grid map resized to the frame (bilinear; bicubic in the resize "
    "frame, as the benchmark's inference), then min-max scaled to [0, 1]; this map is "
    "what export-maps writes and every metric below reads",
    "box_rule": "GT-known / Top-1 / Top-5 Loc, SAT/TS-CAM authors: map min-max scaled "
    "(+1e-5), foreground = map > t, largest 8-connected component, box to max+1, no "
    "foreground = whole frame; IoU +1; GT-known = best IoU over GT boxes >= 0.5; one "
    "threshold of 0.00..0.99 step 0.01, picked as box_threshold_on says",
    "maxboxacc": "MaxBoxAccV2, WSOL benchmark (multi_contour_eval, multi_iou_eval): uint8 "
    "map, cv2.threshold at int(t * max) (strictly above) for t in np.arange(0, 1, 0.01), "
    "EVERY RETR_TREE contour's boundingRect (x, y, x+w, y+h) with x1, y1 clipped to "
    "W-1, H-1; best IoU over contours and GT boxes; best threshold per IoU 0.3 / 0.5 / "
    "0.7 on the split scored; their mean",
    "pxap": "PxAP, WSOL benchmark: histograms of map values at object / background "
    "pixels, right edges np.arange(0, 1, 0.01) then 1, 2, 3; AP = sum of "
    "precision[1:] * diff(recall); pIoU = best IoU of the binarised map over those edges",
    "masks": "WSOL benchmark: each instance mask resized nearest to the frame, grey > 0 "
    "is object, instances united; ignore = ignore mask minus object, counted for neither",
}


@dataclass
class Plan:
    method: Method
    dataset: DatasetPlugin
    cfg: RunConfig
    weights: Weights


def plan(given: dict[str, Any], cached_only: bool = False) -> Plan:
    """Check a run's settings and resolve its weights (``cached_only``: never download,
    as in a sweep task, whose weights the submitting machine resolved)."""
    method, dataset, cfg = configure(given)
    check_backbone(cfg["backbone"])  # a wrong name is named before weights are sought
    cfg.values["data_sha256"] = dataset.fingerprint(cfg)
    return Plan(method, dataset, cfg, plan_weights(cfg, cached_only))


@functools.lru_cache(maxsize=32)
def check_backbone(name: str) -> None:
    """Refuse a backbone timm does not know or that is no ViT with a class token."""
    create_vit(name, 0.0)


def configure(given: dict[str, Any]) -> tuple[Method, DatasetPlugin, RunConfig]:
    """The run's full config, as every run id and every table cell sees it: defaults
    filled in, checked, and the settings the method does not use cleared (so that
    they are neither in its id nor shown for it)."""
    if not given.get("method"):
        raise UserError("no method given (see `wsolbench list`)")
    method = METHODS.get(given["method"])()
    dataset = DATASETS.get(given.get("dataset") or "synthetic")()
    cfg = build_config(given, dataset.defaults, method.options)
    if cfg["freeze"] not in PRESETS:
        raise UserError(f"freeze: unknown preset '{cfg['freeze']}' (known: {', '.join(PRESETS)})")
    check_frame(cfg, dataset)
    for name in method.unused_settings(cfg):
        cfg.values[name] = None
    return method, dataset, cfg


def plan_weights(cfg: RunConfig, cached_only: bool = False) -> Weights:
    """Resolve the starting weights (finding or fetching the hub file) and put their
    sha256 into the run's identity. Evaluating a checkpoint starts from nothing."""
    if cfg["pretrained"] is None or cfg["checkpoint"]:
        cfg.values["pretrained"] = cfg["pretrained"] or "none"
        weights = Weights("none")
    else:
        weights = resolve(cfg["pretrained"], cfg["backbone"], cached_only)
    cfg.values["weights_sha256"] = weights.sha256
    return weights


def check_frame(cfg: RunConfig, dataset: DatasetPlugin) -> None:
    """Fill in the dataset's default frame, or refuse one it cannot give."""
    if cfg["frame"] is None:
        cfg.values["frame"] = dataset.frames[0]
    elif cfg["frame"] not in dataset.frames:
        raise UserError(
            f"frame: dataset {cfg['dataset']} is evaluated in {' or '.join(dataset.frames)}, "
            f"not '{cfg['frame']}'"
        )


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"device: '{name}' asked for, but no CUDA device is available")
    try:
        return torch.device(name)
    except RuntimeError:
        raise UserError(f"device: '{name}' is not a device name") from None


def make_loader(ds: Dataset, cfg: RunConfig, train_split: bool, seed: int) -> DataLoader:
    return DataLoader(
        ds,
        batch_size=cfg["batch_size"],
        shuffle=train_split,
        drop_last=train_split and len(ds) > cfg["batch_size"],
        num_workers=cfg["workers"],
        collate_fn=collate,
        generator=torch.Generator().manual_seed(seed) if train_split else None,
        persistent_workers=cfg["workers"] > 0,
    )


def trivial_boxes(splits: Splits) -> TrivialBoxes | None:
    if not splits.test.has_boxes:
        return None
    w, h = splits.box_source().box_sizes().float().mean(dim=0).tolist()
    return TrivialBoxes(splits.image_size, (w, h))


def _check_fit(p: Plan, splits: Splits, model: torch.nn.Module) -> None:
    size = tuple(getattr(model, "image_size", splits.image_size))
    if size != tuple(splits.image_size):
        raise UserError(
            f"backbone: {p.cfg['backbone']} takes {size[0]}x{size[1]} images, dataset "
            f"{p.cfg['dataset']} gives {splits.image_size[0]}x{splits.image_size[1]}"
        )
    if p.cfg["tencrop"] and not hasattr(splits.test, "tencrop"):
        raise UserError(f"tencrop: dataset {p.cfg['dataset']} has no ten-crop view")


def _data_facts(splits: Splits, train_set, kshot_ids: list[str] | None) -> dict:
    clipped = {
        f"{name}_boxes_clipped": getattr(splits.split(name), "clipped", 0)
        for name in ("train", "val", "test")
        if getattr(splits, name) is not None
    }
    return {
        "num_classes": splits.num_classes,
        "train_images": len(train_set),
        "val_images": len(splits.val) if splits.val is not None else 0,
        "test_images": len(splits.test),
        "val_source": splits.val_source,
        **splits.notes,
        **clipped,
        "kshot_image_ids": kshot_ids,
    }


def execute(p: Plan, store: Store, force: bool = False) -> tuple[dict, bool]:
    """Run the plan unless it already finished. Returns (record, ran)."""
    cfg = p.cfg
    run_dir = store.run_dir(cfg.run_id)
    done = store.record(cfg.run_id)
    if done is not None and not force:
        return done, False
    t0 = time.perf_counter()
    torch.manual_seed(cfg["seed"])
    device = pick_device(cfg["device"])
    splits = p.dataset.load(cfg)
    splits.use_frame(cfg["frame"])
    train_set, kshot_ids = splits.train, None
    if cfg["kshot"] != "full":
        idx = kshot_indices(splits.train.labels, cfg["kshot"], cfg["seed"])
        train_set, kshot_ids = Subset(splits.train, idx), [splits.train.image_ids[i] for i in idx]
    model = p.method.build(cfg, splits.num_classes)
    pretrained = load_weights(model, p.weights, cfg["backbone"])
    if cfg["checkpoint"]:
        load_checkpoint(model, cfg["checkpoint"], p.method.checkpoint_keys)
    frozen = apply_freeze(model, cfg["freeze"], len(model.blocks))
    _check_fit(p, splits, model)
    splits.test.tencrop = cfg["tencrop"]
    t_data = time.perf_counter() - t0

    # Input is valid: from here on the run folder exists.
    created = not run_dir.exists()
    run_dir.mkdir(parents=True, exist_ok=True)
    checkpoint = run_dir / "checkpoint.pt"
    if force:
        checkpoint.unlink(missing_ok=True)
    # mmap reads the epoch without loading the weights.
    resumed_from = (
        torch.load(checkpoint, mmap=True, weights_only=True)["epoch"] if checkpoint.exists() else 0
    )
    try:
        history = []
        if cfg["checkpoint"]:  # evaluate only
            model.to(device)
        else:
            loader = make_loader(train_set, cfg, True, cfg["seed"])
            history = train(p.method, model, cfg, loader, device, checkpoint)
        t_train = time.perf_counter() - t0 - t_data
        scores: dict[str, SplitScores | None] = {"val": None}
        keep = PerImage(splits.test.image_ids, splits.test.labels)
        for name in ("val", "test") if splits.val is not None else ("test",):
            split = splits.split(name)
            s = SplitScores.for_split(
                split, name == "test", trivial_boxes(splits) if name == "test" else None
            )
            loader = make_loader(split, cfg, False, cfg["seed"])
            scores[name] = evaluate_split(
                p.method,
                model,
                loader,
                device,
                splits,
                s,
                f"eval {name}",
                keep if name == "test" else None,
                scoring_workers(
                    cfg["eval_workers"], cfg["workers"], len(split) * math.prod(splits.image_size)
                ),
            )
        t_eval = time.perf_counter() - t0 - t_data - t_train
        record = {
            "run_id": cfg.run_id,
            "method": cfg["method"],
            "dataset": cfg["dataset"],
            "mode": "evaluate" if cfg["checkpoint"] else "train+evaluate",
            "seed": cfg["seed"],
            "config": cfg.values,
            "protocol": {
                **PROTOCOL,
                "frame": cfg["frame"],
                "box_threshold_on": cfg["threshold_on"],
            },
            **summarize(scores["val"], scores["test"], cfg["threshold_on"]),
            "frozen_percent": round(frozen, 2),
            "class_aware": p.method.class_aware,
            "data": _data_facts(splits, train_set, kshot_ids),
            "pretrained": pretrained,
            "history": history,
            "resumed_from_epoch": resumed_from,
            "timing": {
                "data_s": round(t_data, 2),
                "train_s": round(t_train, 2),
                "eval_s": round(t_eval, 2),
            },
            "wall_time_s": round(time.perf_counter() - t0, 2),
            "environment": environment(device),
            "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        record["per_image"] = keep.save(run_dir / "per_image.npz")
        save_torch(run_dir / "model.pt", {"model": model.state_dict(), "run_id": cfg.run_id})
        write_json(run_dir / "record.json", record)  # written last: its presence means done
        checkpoint.unlink(missing_ok=True)
        (run_dir / "error.txt").unlink(missing_ok=True)
        return record, True
    except UserError:
        # Bad data found mid-run (an unreadable image): leave nothing behind unless
        # training already saved a checkpoint worth resuming from.
        if created and not checkpoint.exists():
            shutil.rmtree(run_dir, ignore_errors=True)
        else:
            (run_dir / "error.txt").write_text(traceback.format_exc())
        raise
    except Exception:
        # Not on SystemExit / KeyboardInterrupt: a preempted task exits to be requeued.
        (run_dir / "error.txt").write_text(traceback.format_exc())
        raise


def results_root(path: str | None) -> Path:
    return Path(path) if path else Path("results")
