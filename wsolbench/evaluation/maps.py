"""Score maps in the WSOL benchmark's exchange format: one ``<image id>.npy`` per
image, a 2-D float array in [0, 1] on the evaluation frame. ``train.export`` writes a
finished run's maps with a small ``manifest.json`` (frame, protocol, run);
``evaluate_maps`` scores maps made by any tool, the benchmark's own inference
included, against a dataset plugin or the benchmark's metadata folder."""

from __future__ import annotations

import functools
import hashlib
import io
import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import cv2
import numpy as np
import torch

from wsolbench.core.config import FRAMES, build_config, make_run_id
from wsolbench.core.digests import file_digest
from wsolbench.core.environment import environment
from wsolbench.core.errors import UserError
from wsolbench.core.lock import held
from wsolbench.core.progress import Phase
from wsolbench.core.record import RunRecord
from wsolbench.core.registry import DATASETS
from wsolbench.core.store import Store, write_json
from wsolbench.data.annotations import read_wsol_split
from wsolbench.data.imagefiles import FRAME, FileSplit
from wsolbench.data.splits import WSOLSplit, check_frame
from wsolbench.evaluation.boxes import DEFAULT_INTERVAL
from wsolbench.evaluation.metrics import MapBatch, map_problem
from wsolbench.evaluation.pool import (
    INLINE_PIXELS,
    INLINE_PIXELS_CONTOUR_ONLY,
    MapScorer,
    available_cpus,
    scoring_workers,
    start_workers,
)
from wsolbench.evaluation.protocol import PROTOCOL
from wsolbench.evaluation.scores import SplitScores, TrivialBoxes
from wsolbench.evaluation.summary import summarize, trivial_boxes

MANIFEST = "manifest.json"
MAPS_PER_BATCH = 64  # maps handed to a scoring worker at once


def map_path(root: Path, image_id: str) -> Path:
    """``root/<image id>.npy``; ids that would leave ``root`` are refused."""
    path = root / f"{image_id}.npy"
    if ".." in Path(image_id).parts or Path(image_id).is_absolute():
        raise UserError(f"image id '{image_id}' would leave the maps folder {root}")
    return path


def read_manifest(folder: Path) -> dict | None:
    path = folder / MANIFEST
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise UserError(f"{path}: not a readable manifest ({e})") from None
    if not isinstance(data, dict) or data.get("frame") not in FRAMES:
        raise UserError(f"{path}: 'frame' must be {', '.join(FRAMES)}")
    return data


def check_manifest(out: Path, entry: dict) -> dict:
    """The folder's manifest (empty: none yet), refused when it is another run's or
    another frame's: a folder holds the splits of one run in one frame."""
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out}: is a file, not a folder")
    old = read_manifest(out) or {}
    for key in ("run_id", "frame", "protocol"):
        if old and old.get(key) != entry[key]:
            raise UserError(
                f"{out / MANIFEST}: folder holds maps with {key} {old.get(key)!r}, not "
                f"{entry[key]!r}; export into another folder"
            )
    return old


def write_manifest(out: Path, entry: dict, split: str, count: int) -> None:
    """Written after the maps, so a folder never holds a manifest without them."""
    old = check_manifest(out, entry)
    splits = {**old.get("splits", {}), split: count}
    write_json(out / MANIFEST, {**entry, "splits": splits})


def _check_npy_header(path: Path, data: bytes) -> None:
    """A .npy file whose header claims more data than the file holds (truncated, or
    made to exhaust memory) is refused before anything is allocated."""
    f = io.BytesIO(data)
    try:
        fmt = np.lib.format
        version = fmt.read_magic(f)
        read = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
        shape, _, dtype = read(f)
    except (ValueError, OSError, SyntaxError, TypeError) as e:
        raise UserError(f"{path}: not a .npy array ({type(e).__name__})") from None
    claimed = int(np.prod(shape, dtype=np.float64)) * np.dtype(dtype).itemsize
    if claimed > len(data) - f.tell():
        raise UserError(f"{path}: the header claims shape {shape}, the file holds less")


def load_map(path: Path, data: bytes, size: tuple[int, int], resize: bool) -> np.ndarray:
    """A checked map (the file ``path`` read as ``data``) as float64, what the
    benchmark's loader hands its evaluator. A map of another shape is an error unless
    ``resize`` (bicubic, as the benchmark's inference resizes its maps)."""
    _check_npy_header(path, data)
    try:
        m = np.load(io.BytesIO(data), allow_pickle=False)
    except (ValueError, OSError, MemoryError) as e:
        raise UserError(f"{path}: not a .npy array ({type(e).__name__})") from None
    if problem := map_problem(m):
        raise UserError(f"{path}: {problem}")
    if m.shape != tuple(size):
        if not resize:
            raise UserError(
                f"{path}: map is {m.shape[0]}x{m.shape[1]}, the frame is {size[0]}x{size[1]}; "
                "pass --resize-maps to resize it (bicubic)"
            )
        m = np.clip(cv2.resize(m.astype(np.float32), (size[1], size[0]), cv2.INTER_CUBIC), 0, 1)
    return m.astype(np.float64)


@dataclass
class GroundTruth:
    """What a folder of maps is scored against."""

    test: WSOLSplit
    val: WSOLSplit | None  # None: no split to pick the box threshold on
    image_size: tuple[int, int]
    trivial: TrivialBoxes | None
    facts: dict = field(default_factory=dict)  # for the record's ``data``


def from_dataset(
    dataset: str, data_root: str | None, split: str, frame: str | None
) -> tuple[GroundTruth, str]:
    """Ground truth from a dataset plugin, in ``frame`` (default: resize where the
    dataset has it, since that is the benchmark's). Returns it and the frame."""
    plugin = DATASETS.get(dataset)()
    given = {"method": "maps", "dataset": dataset, "data_root": data_root}
    cfg = build_config(given, plugin.defaults, {})
    cfg = check_frame(
        cfg.replace(frame=frame or ("resize" if "resize" in plugin.frames else None)), plugin
    )
    splits = plugin.load(cfg)
    splits.use_frame(cfg["frame"])
    val = splits.val if split == "test" else None
    facts = {"val_source": splits.val_source, **splits.notes}
    gt = GroundTruth(splits.split(split), val, splits.image_size, trivial_boxes(splits), facts)
    return gt, cfg["frame"]


def from_metadata(meta: Path, mask_root: Path | None, split: str, frame: str) -> GroundTruth:
    """Ground truth from the benchmark's metadata folder (``meta/<split>/``): boxes need
    no image (sizes from ``image_sizes.txt``), masks are read under ``mask_root``."""
    if frame == "native":
        raise UserError("--metadata: the benchmark's metadata is scored in frame resize or crop")

    def load(name: str) -> FileSplit:
        folder = meta / name
        items = read_wsol_split(folder)
        if any(it.masks for it in items) and mask_root is None:
            raise UserError(f"{folder / 'localization.txt'}: names masks; pass --mask-root DIR")
        n = 1 + max((it.label for it in items), default=0)
        out = FileSplit(items, meta, n, str(folder), False, mask_root, need_images=False)
        out.frame = frame
        return out

    val = load("val") if split == "test" and (meta / "val").is_dir() else None
    facts = {"val_source": f"WSOL benchmark metadata {meta / 'val'}" if val else "none"}
    return GroundTruth(load(split), val, FRAME, None, {**facts, "metadata": str(meta)})


@dataclass
class MapFiles:
    """One batch of map files with what they are scored against, read (and hashed)
    where it is scored: in a worker process on large splits, so that reading, hashing
    and checking the files run on every core and no map is copied between processes."""

    paths: list[Path]
    boxes: list[np.ndarray]
    masks: list[np.ndarray] | None
    size: tuple[int, int]
    resize: bool

    def load(self) -> tuple[MapBatch, list[str]]:
        """The batch, and each file's sha256 (of the bytes scored)."""
        maps, digests = [], []
        for path in self.paths:
            try:
                data = path.read_bytes()  # read once: hashed and loaded
            except OSError as e:
                raise UserError(f"{path}: cannot be read ({e.strerror})") from None
            digests.append(hashlib.sha256(data).hexdigest())
            maps.append(load_map(path, data, self.size, self.resize))
        masks = None if self.masks is None else np.stack(self.masks)
        return MapBatch(np.stack(maps), self.boxes, masks), digests


def _score_folder(
    folder: Path, ds: WSOLSplit, size: tuple[int, int], req: MapsRequest, work: tuple
) -> str:
    """Feed every map of a split into ``work`` = (its scores, the scoring pool or None,
    the pool's size, the files' sha256 by path from ``maps_digest``). Each file is
    hashed again as it is scored: one changed since is an error. Returns the split's
    sha256 (over its ids and files' sha256, as ``maps_digest``)."""
    scores, pool, workers, known = work
    scorer = MapScorer(scores, workers, pool)
    phase = Phase(range(len(ds)), f"maps {folder.name}", unit="map")
    seen: dict[Path, str] = {}

    def check(values: dict, paths: list[Path]) -> None:
        for path, sha in zip(paths, values["files"], strict=True):
            if known.get(path, sha) != sha:
                raise UserError(f"{path}: changed while being scored; score it again")
            seen[path] = sha

    for start in range(0, len(ds), MAPS_PER_BATCH):
        images = range(start, min(start + MAPS_PER_BATCH, len(ds)))
        files = _batch_files(folder, ds, images, size, req.resize)
        scorer.add(files, functools.partial(check, paths=files.paths))
        phase.count(len(files.paths))
    scorer.drain()
    digest = hashlib.sha256()
    for image_id in ds.image_ids:
        digest.update(f"{image_id}\0{seen[map_path(folder, image_id)]}\n".encode())
    return digest.hexdigest()


def _batch_files(
    folder: Path, ds: WSOLSplit, indices: range, size: tuple[int, int], resize: bool
) -> MapFiles:
    """The map files and targets of images ``indices``, to be read at ``size``
    (``resize``: resizing maps of another shape); a missing map is an error."""
    paths, boxes, masks = [], [], []
    for i in indices:
        path = map_path(folder, ds.image_ids[i])
        if not path.is_file():
            raise UserError(f"{path}: score map is missing")
        t = ds.target(i)
        paths.append(path)
        boxes.append(t["boxes"].numpy())
        masks.append(t["mask"].numpy() if "mask" in t else None)
    return MapFiles(paths, boxes, None if masks[0] is None else masks, size, resize)


def maps_digest(folder: Path, gt: GroundTruth) -> tuple[str, dict[Path, str]]:
    """sha256 over the id and content digest of every map the request can read (the
    split's and the val split's), and each file's sha256. Files are hashed on every
    core (hashlib and reads release the GIL)."""
    pairs = [
        (image_id, map_path(folder, image_id))
        for ds in (gt.test, gt.val)
        if ds is not None
        for image_id in ds.image_ids
    ]
    pairs = [(i, p) for i, p in pairs if p.is_file()]
    with ThreadPoolExecutor(available_cpus()) as hashing:
        shas = list(hashing.map(file_digest, [p for _, p in pairs]))
    digest = hashlib.sha256()
    for (image_id, _), sha in zip(pairs, shas, strict=True):
        digest.update(f"{image_id}\0{sha}\n".encode())
    return digest.hexdigest(), {p: sha for (_, p), sha in zip(pairs, shas, strict=True)}


def has_maps(folder: Path, ds: WSOLSplit) -> bool:
    """Whether the folder holds this split's maps: all of them, or none."""
    present = [map_path(folder, i).is_file() for i in ds.image_ids]
    if any(present) and not all(present):
        missing = ds.image_ids[present.index(False)]
        raise UserError(f"{map_path(folder, missing)}: score map is missing")
    return all(present) and bool(present)


@dataclass
class MapsRequest:
    """``wsolbench evaluate-maps``: which maps, against what, under which settings."""

    folder: Path
    name: str
    split: str = "test"
    threshold_on: str = "val"
    dataset: str | None = None  # a dataset plugin, or a label with ``metadata``
    metadata: Path | None = None  # the benchmark's metadata folder (``<DIR>/<split>/``)
    mask_root: Path | None = None
    data_root: str | None = None
    frame: str | None = None  # default: the manifest's, else resize
    resize: bool = False
    workers: int | None = None  # scoring processes (default: see pool.scoring_workers)
    cam_curve_interval: float = DEFAULT_INTERVAL  # the benchmark's threshold step


def _frame(req: MapsRequest, manifest: dict | None) -> str | None:
    if manifest is None:
        return req.frame or ("resize" if req.metadata else None)
    if req.frame and req.frame != manifest["frame"]:
        raise UserError(
            f"--frame {req.frame}: {req.folder / MANIFEST} says these maps are in frame "
            f"{manifest['frame']}"
        )
    return manifest["frame"]


def evaluate_maps(store: Store, req: MapsRequest, force: bool = False) -> tuple[RunRecord, bool]:
    """Score a folder of maps on a split. The box threshold of GT-known Loc comes from
    the val maps in the same folder (``threshold_on='val'``; left out when there are
    none) or from the split itself; MaxBoxAccV2 and PxAP choose no threshold."""
    t0 = time.perf_counter()
    manifest = read_manifest(req.folder) if req.folder.is_dir() else None
    gt, dataset, frame = _ground_truth(req, manifest)
    identity = {
        "name": req.name,
        "dataset": dataset,
        "split": req.split,
        "threshold_on": req.threshold_on,
        "frame": frame,
        "resize_maps": req.resize,
        "maps": str(req.folder.resolve()),
        "metadata": str(req.metadata.resolve()) if req.metadata else None,
    }
    # The maps themselves, by content: other maps in the same folder are other work.
    identity["maps_sha256"], known = maps_digest(req.folder, gt)
    if req.cam_curve_interval != DEFAULT_INTERVAL:  # earlier ids hold at the default
        identity["cam_curve_interval"] = req.cam_curve_interval
    run_id = make_run_id(req.name, dataset, identity, kind="maps")
    done = store.record(run_id)
    if done is not None and not force:
        return done, False
    # The lock is taken in the store before any scoring: identical requests score once,
    # and a store that cannot be written is found before the work, not after.
    with held(store.lock_path(run_id), True, f"scoring {req.folder}") as first:
        done = store.record(run_id)
        if done is not None and not (force and first):
            return done, False
        record = _score_request(req, gt, run_id, identity, (dataset, frame, manifest, known), t0)
        store.write_record(record)
    return record, True


def _score_request(
    req: MapsRequest, gt: GroundTruth, run_id: str, identity: dict, facts: tuple, t0: float
) -> RunRecord:
    """Score the maps of ``req`` and return the record, not yet written; ``facts``:
    dataset, frame, manifest and the files' sha256 (``maps_digest``)."""
    dataset, frame, manifest, known = facts
    summary, digests, note = _scores(req, gt, known)
    return RunRecord(
        run_id=run_id,
        method=req.name,
        dataset=dataset,
        mode="evaluate-maps",
        config={**identity, "data_root": req.data_root},
        protocol={**PROTOCOL, "frame": frame, "box_threshold_on": req.threshold_on}
        | (
            {"cam_curve_interval": req.cam_curve_interval}
            if "cam_curve_interval" in identity
            else {}
        ),
        **summary,
        maps={"folder": str(req.folder.resolve()), "sha256": digests, "manifest": manifest},
        data={"test_images": len(gt.test), **gt.facts},
        wall_time_s=round(time.perf_counter() - t0, 2),
        environment=environment(torch.device("cpu")),
        finished=datetime.now(UTC).isoformat(timespec="seconds"),
        notes=[note] if note else None,
    )


def maps_workers(
    requested: int | None, images: int, size: tuple[int, int], authors_rule: bool
) -> int:
    """Scoring processes for ``images`` maps of ``size``: the authors' rule costs a map
    about 4.3 ms, MaxBoxAccV2's boxes about 0.5, so with it the pool pays off from
    far fewer maps."""
    inline_below = INLINE_PIXELS if authors_rule else INLINE_PIXELS_CONTOUR_ONLY
    return scoring_workers(requested, 0, images * size[0] * size[1], inline_below)


def _scores(req: MapsRequest, gt: GroundTruth, known: dict) -> tuple[dict, dict, str | None]:
    """The metrics of ``req``'s maps (``summarize``'s), the sha256 of the map files
    read per split, and a note on what was left out. Only the rules whose metrics can
    be reported run, and one pool of workers (if the maps are many) serves both splits."""
    step = req.cam_curve_interval
    test = SplitScores.for_split(gt.test, True, gt.trivial, classify=False, cam_curve_interval=step)
    why_not = _no_threshold_split(req, gt)
    if why_not:  # GT-known cannot be reported: the authors' rule is not run at all
        test.box = None
    images = len(gt.test) + (0 if why_not or _picks_own_threshold(req) else len(gt.val))
    workers = maps_workers(req.workers, images, gt.image_size, test.box is not None)
    pool = start_workers(workers)

    def work(scores: SplitScores) -> tuple:
        return scores, pool, workers, known

    try:
        digests = {req.split: _score_folder(req.folder, gt.test, gt.image_size, req, work(test))}
        val = None if why_not else _threshold_split(req, gt, test, digests, work)
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    note = why_not and f"GT-known / Top-1 Loc left out: {why_not} to pick the box threshold on"
    return summarize(val, test, req.threshold_on), digests, note


def score_request(req: MapsRequest) -> dict:
    """What ``evaluate_maps`` would record for ``req`` (metrics, threshold, curves),
    with no store: the library's one-call evaluation (``wsolbench.metrics``)."""
    manifest = read_manifest(req.folder) if req.folder.is_dir() else None
    gt, _, _ = _ground_truth(req, manifest)
    return _scores(req, gt, {})[0]


def _ground_truth(req: MapsRequest, manifest: dict | None) -> tuple[GroundTruth, str, str]:
    """What the maps are scored against, the dataset's name and the frame."""
    if not req.folder.is_dir():
        raise UserError(f"{req.folder}: maps folder not found")
    if req.metadata is None and req.dataset is None:
        raise UserError("evaluate-maps: give --dataset NAME or --metadata DIR")
    frame = _frame(req, manifest)
    if req.metadata is not None:
        gt = from_metadata(req.metadata, req.mask_root, req.split, frame)
        return gt, req.dataset or req.metadata.name, frame
    gt, frame = from_dataset(req.dataset, req.data_root, req.split, frame)
    return gt, req.dataset, frame


def _picks_own_threshold(req: MapsRequest) -> bool:
    """Whether the scored split picks GT-known's box threshold itself (no val maps)."""
    return req.threshold_on == "test" or req.split == "val"


def _no_threshold_split(req: MapsRequest, gt: GroundTruth) -> str | None:
    """Why no split can pick GT-known's box threshold, or None when one can."""
    if _picks_own_threshold(req):
        return None
    if gt.val is None:
        return "no val split"
    if not gt.val.has_boxes or not has_maps(req.folder, gt.val):
        return f"no val maps in {req.folder}"
    return None


def _threshold_split(
    req: MapsRequest, gt: GroundTruth, test: SplitScores, digests: dict, work
) -> SplitScores:
    """Scores of the split that picks GT-known's threshold (the val maps, scored
    here, unless the split picks its own)."""
    if _picks_own_threshold(req):
        return test
    val = SplitScores.for_split(
        gt.val, False, classify=False, cam_curve_interval=req.cam_curve_interval
    )
    digests["val"] = _score_folder(req.folder, gt.val, gt.image_size, req, work(val))
    return val
