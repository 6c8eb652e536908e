"""One run = method x dataset x settings: check everything, train, evaluate, record.

Every check that can fail on user input happens before the run folder is created,
so bad input leaves nothing in the results store."""

from __future__ import annotations

import math
import os
import shutil
import sys
import time
import traceback
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import torch
from torch.utils.data import Dataset, Subset

from wsolbench.core.config import RunConfig
from wsolbench.core.environment import environment, pick_device
from wsolbench.core.errors import UserError
from wsolbench.core.lock import held
from wsolbench.core.progress import say
from wsolbench.core.record import RunRecord
from wsolbench.core.store import Store, save_torch
from wsolbench.data.kshot import kshot_indices
from wsolbench.data.splits import Splits, make_loader
from wsolbench.evaluation.boxes import DEFAULT_INTERVAL
from wsolbench.evaluation.componenttree import warm_up
from wsolbench.evaluation.evaluate import evaluate_split
from wsolbench.evaluation.perimage import PerImage
from wsolbench.evaluation.pool import scoring_workers
from wsolbench.evaluation.protocol import PROTOCOL, TSCAM_RULE
from wsolbench.evaluation.scores import SplitScores
from wsolbench.evaluation.summary import summarize, trivial_boxes
from wsolbench.train.checkpoints import load_checkpoint
from wsolbench.train.freeze import apply_freeze
from wsolbench.train.plan import Plan
from wsolbench.train.trainer import CHECKPOINT_KEYS, build_groups, describe_groups, train
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
    if p.cfg.eval_split == "val" and splits.val is None:
        raise UserError(f"eval_split: dataset {p.cfg.dataset} has no val split to score")


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


@dataclass
class Prepared:
    """What a run trains and evaluates, every input already checked."""

    splits: Splits
    train_set: Dataset
    kshot_ids: list[str] | None
    model: torch.nn.Module
    pretrained: dict
    frozen: float
    device: torch.device


def prepare(p: Plan) -> Prepared:
    """Load the data, build the model, load its weights, freeze: everything that can
    still fail on user input, before the run folder exists."""
    cfg = p.cfg
    torch.manual_seed(cfg.seed)
    device = pick_device(cfg.device)
    splits = p.dataset.load(cfg)
    splits.use_run(cfg)
    train_set, kshot_ids = splits.train, None
    if cfg.kshot != "full":
        idx = kshot_indices(splits.train.labels, cfg.kshot, cfg.seed)
        train_set, kshot_ids = Subset(splits.train, idx), [splits.train.image_ids[i] for i in idx]
    model = p.method.build(cfg, splits.num_classes)
    # keep_classifier keeps the hub weights' classifier; a run from none or a file has
    # none to keep, and a checkpoint brings its own.
    fits = getattr(model, "takes_imagenet_classifier", True)
    keep = cfg.keep_classifier and p.weights.source == "hub" and not cfg.checkpoint and fits
    pretrained = load_weights(model, p.weights, cfg.backbone, keep)
    if cfg.keep_classifier and not keep:
        pretrained["classifier"] = (
            "not kept: the run does not start from the hub's weights"
            if fits
            else "not kept: this network's classifier is new (the benchmark's loader drops it)"
        )
    if cfg.checkpoint:
        load_checkpoint(model, cfg.checkpoint, p.method.checkpoint_keys)
    frozen = apply_freeze(model, cfg.freeze)
    _check_fit(p, splits, model)
    splits.test.tencrop = cfg.tencrop
    return Prepared(splits, train_set, kshot_ids, model, pretrained, frozen, device)


def execute(
    p: Plan, store: Store, force: bool = False, wait: bool = True
) -> tuple[RunRecord, bool]:
    """Run the plan unless it already finished. Returns (record, ran). An identical
    run in progress elsewhere is waited for and its record returned (``wait=False``:
    a one-line error naming it), so identical work runs once."""
    done = store.record(p.cfg.run_id)
    if done is not None and not force:
        return done, False
    with held(store.lock_path(p.cfg.run_id), wait, f"run {p.cfg.run_id}") as first:
        done = store.record(p.cfg.run_id)
        if done is not None and not (force and first):
            return done, False
        return _execute(p, store, force), True


def _execute(p: Plan, store: Store, force: bool) -> RunRecord:
    t0 = time.perf_counter()
    prep = prepare(p)
    _say_prepared(p, prep, time.perf_counter() - t0)
    # Preparing the run: data, network, weights and the box kernels (compiled once).
    timing = {"data_s": round(time.perf_counter() - t0, 2)}
    # Input is valid. The run folder appears with its first file (the first epoch's
    # checkpoint), so a run killed before that leaves nothing behind.
    run_dir = store.run_dir(p.cfg.run_id)
    created = not run_dir.exists()
    checkpoint = run_dir / "checkpoint.pt"
    if force:
        checkpoint.unlink(missing_ok=True)
    resumed_from = resumable(checkpoint)
    try:
        record = _train_and_evaluate(p, prep, run_dir, t0, timing, resumed_from)
        store.write_record(record)  # written last: its presence means done
        checkpoint.unlink(missing_ok=True)
        (run_dir / "error.txt").unlink(missing_ok=True)
        return record
    except UserError:
        # Bad data found mid-run (an unreadable image), a full disk, a read-only store:
        # leave nothing behind unless training already saved a checkpoint to resume.
        if created and not checkpoint.exists():
            shutil.rmtree(run_dir, ignore_errors=True)
        else:
            _note_failure(run_dir)
        raise
    except Exception:
        # Not on SystemExit / KeyboardInterrupt: a preempted task exits to be requeued.
        _note_failure(run_dir)
        raise


def _note_failure(run_dir: Path) -> None:
    """The traceback beside the run, for `sweep status`; a store that cannot take it
    (read-only, full) keeps the failure's own one-line message."""
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "error.txt").write_text(traceback.format_exc())
    except OSError:
        pass


def resumable(checkpoint: Path) -> int:
    """The epoch the run's checkpoint resumes from (0: none). A checkpoint that cannot
    be read (truncated, foreign) is set aside under another name, not deleted, and the
    run starts over."""
    if not checkpoint.exists():
        return 0
    try:
        # mmap: the keys and the epoch without reading the weights, which the trainer
        # loads when it resumes.
        state = torch.load(checkpoint, mmap=True, map_location="cpu", weights_only=True)
        if not isinstance(state, dict) or not CHECKPOINT_KEYS <= state.keys():
            raise ValueError("not a wsolbench checkpoint")
        return int(state["epoch"])
    except Exception as e:  # torch raises many types for a corrupt file
        aside = checkpoint.with_name(f"checkpoint.unreadable-{int(time.time())}.pt")
        os.replace(checkpoint, aside)
        print(
            f"wsolbench: warning: {checkpoint}: unreadable ({type(e).__name__}); set aside "
            f"as {aside.name}, the run starts over",
            file=sys.stderr,
        )
        return 0


def _train_and_evaluate(
    p: Plan, prep: Prepared, run_dir: Path, t0: float, timing: dict, resumed_from: int
) -> RunRecord:
    """Train (unless evaluating a checkpoint), score val and test, save the model and
    the per-image results; returns the record, not yet written."""
    cfg, history, groups = p.cfg, [], None
    if cfg.checkpoint:  # evaluate only
        prep.model.to(prep.device)
    else:
        groups = describe_groups(build_groups(p.method, prep.model, cfg), cfg)
        loader = make_loader(prep.train_set, cfg, True, cfg.seed)
        history = train(p.method, prep.model, cfg, loader, prep.device, run_dir / "checkpoint.pt")
    timing["train_s"] = round(time.perf_counter() - t0 - timing["data_s"], 2)
    scored = prep.splits.split(cfg.eval_split)
    keep = PerImage(scored.image_ids, scored.labels)
    scores = evaluate_splits(p, prep, keep)
    timing["eval_s"] = round(time.perf_counter() - t0 - timing["data_s"] - timing["train_s"], 2)
    per_image = keep.save(run_dir / "per_image.npz")
    save_torch(run_dir / "model.pt", {"model": prep.model.state_dict(), "run_id": cfg.run_id})
    return RunRecord(
        run_id=cfg.run_id,
        method=cfg.method,
        dataset=cfg.dataset,
        mode="evaluate" if cfg.checkpoint else "train+evaluate",
        seed=cfg.seed,
        config=cfg.to_dict(),
        recipe=p.recipe,
        protocol={**PROTOCOL, **_scoring(cfg)},
        **_summary(cfg, scores),
        frozen_percent=round(prep.frozen, 2),
        class_aware=p.method.class_aware,
        data=_data_facts(prep.splits, prep.train_set, prep.kshot_ids),
        pretrained=prep.pretrained,
        history=history,
        param_groups=groups,
        network=describe_network(prep.model, cfg),
        resumed_from_epoch=resumed_from,
        timing=timing,
        per_image=per_image,
        wall_time_s=round(time.perf_counter() - t0, 2),
        environment=environment(prep.device),
        finished=datetime.now(UTC).isoformat(timespec="seconds"),
    )


def _say_prepared(p: Plan, prep: Prepared, seconds: float) -> None:
    """The phases before the first epoch, one line each: data, network and weights, and
    the box kernels' compile (numba's, cached after the first run)."""
    s = prep.splits
    val = len(s.val) if s.val is not None else 0
    say(f"run {p.cfg.run_id}: {p.cfg.method} on {p.cfg.dataset}, every input checked")
    say(
        f"data: {p.cfg.dataset}, {len(prep.train_set)} train / {val} val / {len(s.test)} "
        f"test images, {s.num_classes} classes ({seconds:.1f} s)"
    )
    w = prep.pretrained
    where = w.get("repo") if w["source"] == "hub" else Path(w.get("file") or "none").name
    size = parameter_count(prep.model) / 1e6
    say(
        f"model: {type(prep.model).__name__} on {p.cfg.backbone}, {size:.1f}M parameters; "
        f"weights: {w['source']} {where}, sha256 {w['sha256'][:12]}"
    )
    compiled = warm_up()
    if compiled > 2.0:  # loading the cached kernels takes about half a second
        say(f"compile: the box rules' kernels, {compiled:.1f} s (numba, cached for later runs)")


def parameter_count(model: torch.nn.Module) -> int:
    return sum(t.numel() for t in model.parameters())


def describe_network(model: torch.nn.Module, cfg: RunConfig) -> dict:
    """Which network ran: its class, the reference it is built as, its size."""
    arch = getattr(model, "arch", None)
    return {
        "class": type(model).__name__,
        "built_as": f"WSOL benchmark {arch}" if arch else f"timm {cfg.backbone}",
        "large_feature_map": cfg.large_feature_map,
        "parameters": parameter_count(model),
    }


def _scoring(cfg: RunConfig) -> dict:
    """The record's word on what was scored and where the box threshold came from."""
    picked = "val" if cfg.eval_split == "val" else cfg.threshold_on
    out = {"frame": cfg.frame, "box_threshold_on": picked, "scored_split": cfg.eval_split}
    if cfg.box_rule == "tscam":
        out["loc_rule"] = TSCAM_RULE.format(thr=cfg.cam_threshold)
    if cfg.cam_curve_interval != DEFAULT_INTERVAL:  # protocol 2 reads 0.01 when absent
        out["cam_curve_interval"] = cfg.cam_curve_interval
    return out


def _summary(cfg: RunConfig, scores: dict[str, SplitScores | None]) -> dict:
    """The reported metrics: test's, GT-known at the threshold picked on val; for a
    tuning trial (``eval_split`` val), val's, the threshold picked on val itself."""
    if cfg.eval_split != "val":
        return summarize(scores["val"], scores["test"], cfg.threshold_on)
    out = summarize(None, scores["test"], "test")
    if out["threshold"] is not None:
        out["threshold"]["picked_on"] = "val"
    return out


def evaluate_splits(p: Plan, prep: Prepared, keep: PerImage) -> dict[str, SplitScores | None]:
    """Every metric on val (when there is one) and test; ``keep`` gets test's images.
    A tuning trial scores val alone, in test's place: test is never scored."""
    cfg, splits = p.cfg, prep.splits
    scores: dict[str, SplitScores | None] = {"val": None}
    roles = [("val", "val"), ("test", "test")] if splits.val is not None else [("test", "test")]
    if cfg.eval_split == "val":
        roles = [("val", "test")]
    tscam = cfg.cam_threshold if cfg.box_rule == "tscam" else None
    for name, role in roles:
        split = splits.split(name)
        trivial = trivial_boxes(splits) if role == "test" else None
        pixels = len(split) * math.prod(splits.image_size)
        scores[role] = evaluate_split(
            p.method,
            prep.model,
            make_loader(split, cfg, False, cfg.seed),
            prep.device,
            splits,
            SplitScores.for_split(
                split,
                role == "test",
                trivial,
                tscam_threshold=tscam,
                cam_curve_interval=cfg.cam_curve_interval,
            ),
            f"eval {name}",
            keep if role == "test" else None,
            scoring_workers(cfg.eval_workers, cfg.workers, pixels),
        )
    return scores
