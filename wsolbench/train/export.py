"""``wsolbench export-maps``: a finished run's maps written in the exchange format
(``evaluation.maps``), so the benchmark's own evaluator can score them."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from wsolbench import PROTOCOL_VERSION
from wsolbench.core.environment import pick_device
from wsolbench.core.errors import UserError
from wsolbench.core.store import Store, atomic_write
from wsolbench.data.splits import make_loader
from wsolbench.evaluation.evaluate import predict
from wsolbench.evaluation.maps import check_manifest, map_path, write_manifest
from wsolbench.train.checkpoints import load_checkpoint
from wsolbench.train.plan import plan


def export_maps(
    store: Store, run_id: str, split: str, out: Path, overrides: dict
) -> tuple[int, Path]:
    """Write the maps of a finished run's split; returns (count, folder)."""
    record = store.record(run_id)
    weights = store.run_dir(run_id) / "model.pt"
    if record is None or not weights.is_file():
        raise UserError(f"run '{run_id}': no finished run with model.pt in {store.root}")
    given = {**record.config, **{k: v for k, v in overrides.items() if v is not None}}
    p = plan({**given, "pretrained": "none"})  # the trained model.pt is loaded below
    splits = p.dataset.load(p.cfg)
    splits.use_run(p.cfg)
    ds = splits.split(split)
    entry = {
        "format": "wsolbench score maps: <image id>.npy, float32 in [0, 1] on the frame",
        "protocol": PROTOCOL_VERSION,
        "run_id": run_id,
        "dataset": p.cfg["dataset"],
        "frame": p.cfg["frame"],
        "map_size": list(splits.image_size),
    }
    check_manifest(out, entry)  # a clash is found before any map is written
    model = p.method.build(p.cfg, splits.num_classes)
    load_checkpoint(model, weights, {})
    device = pick_device(p.cfg["device"])
    model.to(device)
    loader = make_loader(ds, p.cfg, False, 0)
    count = 0
    for batch, _, maps, _ in predict(p.method, model, loader, device, splits, "export"):
        for i, index in enumerate(batch["index"].tolist()):
            buf = io.BytesIO()
            np.save(buf, maps[i].astype(np.float32))
            atomic_write(map_path(out, ds.image_ids[index]), lambda f, b=buf: f.write(b.getvalue()))
            count += 1
    write_manifest(out, entry, split, count)
    return count, out
