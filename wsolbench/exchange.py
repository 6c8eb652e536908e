"""Score maps in the WSOL benchmark's exchange format: one ``<image id>.npy`` per
image, a 2-D float array in [0, 1]. ``export_maps`` writes them from a finished run;
``evaluate_maps`` scores maps made by any tool under the same protocol."""

from __future__ import annotations

import hashlib
import io
import json
import time
from datetime import UTC, datetime
from pathlib import Path

import cv2
import numpy as np
import torch
from tqdm import tqdm

from .checkpoints import load_checkpoint
from .config import build_config
from .data import Splits, WSOLSplit
from .environment import environment
from .errors import UserError
from .evaluation.evaluate import SplitScores, predict, summarize
from .registry import DATASETS
from .runner import PROTOCOL, make_loader, pick_device, plan, trivial_boxes
from .store import Store, atomic_write, write_json


def map_path(root: Path, image_id: str) -> Path:
    """``root/<image id>.npy``; ids that would leave ``root`` are refused."""
    path = root / f"{image_id}.npy"
    if ".." in Path(image_id).parts or Path(image_id).is_absolute():
        raise UserError(f"image id '{image_id}' would leave the maps folder {root}")
    return path


def export_maps(
    store: Store, run_id: str, split: str, out: Path, overrides: dict
) -> tuple[int, Path]:
    """Write the maps of a finished run's split; returns (count, folder)."""
    record = store.record(run_id)
    weights = store.run_dir(run_id) / "model.pt"
    if record is None or not weights.is_file():
        raise UserError(f"run '{run_id}': no finished run with model.pt in {store.root}")
    given = {**record["config"], **{k: v for k, v in overrides.items() if v is not None}}
    p = plan(given)
    splits = p.dataset.load(p.cfg)
    ds = splits.split(split)
    model = p.method.build(p.cfg, splits.num_classes)
    load_checkpoint(model, weights, {})
    device = pick_device(p.cfg["device"])
    model.to(device)
    loader = make_loader(ds, p.cfg, False, 0)
    count = 0
    for batch, _, maps, _ in predict(p.method, model, loader, device, splits.image_size, "export"):
        for i, index in enumerate(batch["index"].tolist()):
            target = map_path(out, ds.image_ids[index])
            buf = io.BytesIO()
            np.save(buf, maps[i].astype(np.float32))
            atomic_write(target, lambda f, b=buf: f.write(b.getvalue()))
            count += 1
    return count, out


def load_map(path: Path, size: tuple[int, int]) -> np.ndarray:
    """A checked map on the evaluation frame (bicubic resize, as the benchmark does)."""
    if not path.is_file():
        raise UserError(f"{path}: score map is missing")
    try:
        m = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as e:
        raise UserError(f"{path}: not a .npy array ({e})") from None
    if m.ndim != 2 or m.size == 0:
        raise UserError(f"{path}: score map must be 2-D, got shape {m.shape}")
    if not np.issubdtype(m.dtype, np.number) or not np.isfinite(m).all():
        raise UserError(f"{path}: score map holds NaN or infinite values")
    if m.min() < 0 or m.max() > 1:
        raise UserError(f"{path}: values must lie in [0, 1], got {m.min():.4g}..{m.max():.4g}")
    m = m.astype(np.float32)
    if m.shape != tuple(size):
        m = cv2.resize(m, (size[1], size[0]), interpolation=cv2.INTER_CUBIC)
    return m


def _score_folder(
    folder: Path, ds: WSOLSplit, splits: Splits, scores: SplitScores, desc: str
) -> str:
    """Feed every map of a split; returns the sha256 of all map files read."""
    digest = hashlib.sha256()
    for i in tqdm(range(len(ds)), desc=desc, unit="map", leave=False, dynamic_ncols=True):
        path = map_path(folder, ds.image_ids[i])
        m = load_map(path, splits.image_size)
        digest.update(path.read_bytes())
        t = ds.target(i)
        mask = t["mask"].numpy() if "mask" in t else None
        scores.add_image(m, t["boxes"].numpy(), mask, False, False)
    return digest.hexdigest()


def evaluate_maps(
    store: Store,
    folder: Path,
    dataset: str,
    split: str,
    name: str,
    threshold_on: str,
    data_root: str | None,
    force: bool,
) -> tuple[dict, bool]:
    """Score a folder of maps on a split; the box threshold comes from the val maps
    in the same folder (``threshold_on='val'``) or from the split itself."""
    t0 = time.perf_counter()
    if not folder.is_dir():
        raise UserError(f"{folder}: maps folder not found")
    plugin = DATASETS.get(dataset)()
    cfg = build_config(
        {"method": name, "dataset": dataset, "data_root": data_root, "threshold_on": threshold_on},
        plugin.defaults,
        {},
    )
    identity = {"name": name, "dataset": dataset, "split": split, "threshold_on": threshold_on}
    identity["maps"] = str(folder.resolve())
    blob = json.dumps(identity, sort_keys=True).encode()
    run_id = f"{name}-{dataset}-maps-{hashlib.sha256(blob).hexdigest()[:10]}"
    done = store.record(run_id)
    if done is not None and not force:
        return done, False
    splits = plugin.load(cfg)
    ds = splits.split(split)
    pick = splits.split("val") if threshold_on == "val" else ds
    test = SplitScores.for_split(ds, True, trivial_boxes(splits), classify=False)
    digests = {split: _score_folder(folder, ds, splits, test, f"maps {split}")}
    val = test
    if pick is not ds:
        val = SplitScores.for_split(pick, False, classify=False)
        digests["val"] = _score_folder(folder, pick, splits, val, "maps val")
    record = {
        "run_id": run_id,
        "method": name,
        "dataset": dataset,
        "mode": "evaluate-maps",
        "seed": None,
        "config": {**identity, "data_root": data_root},
        "protocol": {**PROTOCOL, "box_threshold_on": threshold_on},
        **summarize(val, test, threshold_on),
        "maps": {"folder": str(folder.resolve()), "split": split, "sha256": digests},
        "data": {"test_images": len(ds), "val_source": splits.val_source, **splits.notes},
        "wall_time_s": round(time.perf_counter() - t0, 2),
        "environment": environment(torch.device("cpu")),
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    write_json(store.run_dir(run_id) / "record.json", record)
    return record, True
