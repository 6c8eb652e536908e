"""One run = method x dataset x settings: check everything, train, evaluate, record.

Every check that can fail on user input happens before the run folder is created,
so bad input leaves nothing in the results store."""

from __future__ import annotations

import math
import shutil
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

import torch
from torch.utils.data import Subset

from wsolbench.core.environment import environment, pick_device
from wsolbench.core.errors import UserError
from wsolbench.core.store import Store, save_torch, write_json
from wsolbench.data.kshot import kshot_indices
from wsolbench.data.splits import Splits, make_loader
from wsolbench.evaluation.evaluate import evaluate_split, summarize, trivial_boxes
from wsolbench.evaluation.perimage import PerImage
from wsolbench.evaluation.pool import scoring_workers
from wsolbench.evaluation.protocol import PROTOCOL
from wsolbench.evaluation.scores import SplitScores
from wsolbench.train.checkpoints import load_checkpoint
from wsolbench.train.freeze import apply_freeze
from wsolbench.train.plan import Plan
from wsolbench.train.trainer import train
from wsolbench.train.weights import load_weights


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
            "config": cfg.to_dict(),
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
