"""The metrics as a library and the store as data: hand-checkable cases from the
published rules, the same numbers as `evaluate-maps`, another project's script using
them in three lines, and no torch unless a tensor is passed."""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest
import torch
from miniature import write_metadata

import wsolbench
from wsolbench.metrics import GTKnownLoc, MaxBoxAccV2, PxAP, boxes_in_frame, evaluate_folder


def two_blobs() -> np.ndarray:
    """The reference notes' case: an 8x8 zero map, 0.5 on rows/cols 1-2, 1.0 on 4-7."""
    m = np.zeros((8, 8))
    m[1:3, 1:3] = 0.5
    m[4:8, 4:8] = 1.0
    return m


def test_maxboxaccv2_every_contour_by_hand():
    """GT (1, 1, 3, 3): every contour's box finds the small blob, 100 at all three IoU
    levels (the largest contour alone would score 0)."""
    m = MaxBoxAccV2(iou_thresholds=(30, 50, 70))
    m.update(two_blobs()[None], [np.array([[1, 1, 3, 3]])])
    assert m.compute() == {
        "maxboxacc_iou30": 100.0, "maxboxacc_iou50": 100.0, "maxboxacc_iou70": 100.0,
        "maxboxaccv2": 100.0,
    }  # fmt: skip


def test_pxap_by_hand_and_ignore():
    """1.0 on the object and 0.5 elsewhere: every object pixel outranks every
    background one, PxAP 100. Ignoring the background leaves only object pixels."""
    m = np.where(two_blobs() == 1.0, 1.0, 0.5)
    mask = m == 1.0
    p = PxAP()
    p.update(m[None], mask[None])
    assert p.compute() == pytest.approx({"pxap": 100.0, "piou": 100.0})
    with pytest.raises(ValueError, match="image 0: mask"):
        p.update(m[None], mask[None, :4])


def test_gt_known_loc_by_hand_with_logits():
    """The largest component (the 4x4 blob) at t = 0.5: box (4, 4, 8, 8); GT (4, 4, 7, 7)
    has IoU 16 / 25 = 0.64 (GT-known), the class right on image 0, wrong on 1."""
    g = GTKnownLoc(threshold=0.5)
    maps = np.stack([two_blobs(), two_blobs()])
    gt = [np.array([[4, 4, 7, 7]])] * 2
    g.update(maps, gt, logits=np.array([[2.0, 1.0], [1.0, 2.0]]), labels=[0, 0])
    out = g.compute()
    assert out["gt_known_loc"] == 100.0 and out["iou70"] == 0.0
    assert (out["top1_loc"], out["top5_loc"], out["threshold"]) == (50.0, 100.0, 0.5)


def test_tensors_equal_arrays_and_merge_equals_one_pass():
    maps = np.stack([two_blobs(), two_blobs().T])
    gt = [np.array([[1, 1, 3, 3]]), np.array([[4, 4, 7, 7]])]
    whole, a, b, t = MaxBoxAccV2(), MaxBoxAccV2(), MaxBoxAccV2(), MaxBoxAccV2()
    whole.update(maps, gt)
    a.update(maps[:1], gt[:1])
    b.update(maps[1:], gt[1:])
    a.merge(b)
    t.update(torch.from_numpy(maps), [torch.tensor(g) for g in gt])
    assert a.compute() == whole.compute() == t.compute()
    whole.reset()
    assert whole.compute()["maxboxaccv2"] == 0.0


@pytest.mark.parametrize(
    "maps, boxes, message",
    [
        (np.full((2, 8, 8), 0.5), [np.zeros((1, 4)), [[0, 0, 9, 9]]], "image 1: box"),
        (np.array([two_blobs(), np.full((8, 8), np.nan)]), [[[0, 0, 1, 1]]] * 2, "image 1:"),
        (np.full((1, 8, 8), 1.5), [[[0, 0, 1, 1]]], "image 0: values must lie in [0, 1]"),
        (np.zeros((8, 8)), [[[0, 0, 1, 1]]], "maps: expected (N, H, W)"),
        (np.zeros((1, 8, 8)), [[[0, 0, 1, 1]]] * 2, "2 box arrays for 1 maps"),
    ],
)
def test_bad_input_names_the_image(maps, boxes, message):
    with pytest.raises(ValueError) as e:
        MaxBoxAccV2().update(maps, boxes)
    assert message in str(e.value)


@pytest.mark.parametrize("bad", [0, -0.01, 1e-9, 0.5, 0.6, float("nan"), True, "0.01"])
def test_a_bad_interval_is_refused(bad):
    with pytest.raises(ValueError, match="cam_curve_interval: a number in"):
        MaxBoxAccV2(cam_curve_interval=bad)


@pytest.fixture
def folder(tmp_path):
    """Benchmark metadata (sizes of other images than 224) and maps in its frame."""
    meta, maps = tmp_path / "metadata", tmp_path / "maps"
    rows = [("a.jpg", 0, 448, 448, ["100,100,199,199"]), ("b.jpg", 1, 300, 200, ["0,0,149,99"])]
    write_metadata(meta / "test", rows)
    maps.mkdir()
    a = np.zeros((224, 224), np.float32)
    a[50:100, 50:100] = 1.0
    b = np.zeros((224, 224), np.float32)
    b[0:110, 0:111] = 0.7
    b[150:200, 150:200] = 1.0
    np.save(maps / "a.jpg.npy", a)
    np.save(maps / "b.jpg.npy", b)
    return meta, maps


def test_the_same_numbers_as_evaluate_maps(cli, tmp_path, folder):
    meta, maps = folder
    rc, _, err = cli("evaluate-maps", str(maps), "--metadata", str(meta), "--name", "x")
    assert rc == 0, err
    (path,) = (tmp_path / "results").glob("*/record.json")
    recorded = json.loads(path.read_text())["metrics"]
    library = evaluate_folder(maps, meta)
    assert library == {k: recorded[k] for k in library} and "maxboxaccv2" in library
    m = MaxBoxAccV2()
    for name, (w, h), gt in (("a.jpg", (448, 448), [100, 100, 199, 199]),
                             ("b.jpg", (300, 200), [0, 0, 149, 99])):  # fmt: skip
        m.update(np.load(maps / f"{name}.npy")[None], [boxes_in_frame([gt], w, h)])
    assert m.compute() == {k: recorded[k] for k in m.compute()}


def test_another_projects_script_in_three_lines(tmp_path, folder):
    """Run as a separate script, from another folder, as a training loop would."""
    meta, maps = folder
    script = tmp_path / "loop.py"
    script.write_text(
        textwrap.dedent(f"""
        import sys, numpy as np
        from wsolbench.metrics import MaxBoxAccV2, PxAP, evaluate_folder
        m = MaxBoxAccV2(cam_curve_interval=0.01, iou_thresholds=(30, 50, 70))
        m.update(np.load({str(maps / "a.jpg.npy")!r})[None], [np.array([[50, 50, 99, 99]])])
        print(m.compute()["maxboxaccv2"], "torch" in sys.modules)
        print(evaluate_folder({str(maps)!r}, {str(meta)!r})["maxboxaccv2"])
        a = np.load({str(maps / "a.jpg.npy")!r})
        p = PxAP(); p.update(a[None], (a > 0.5)[None]); print(p.compute()["pxap"])
    """)
    )
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         cwd=tmp_path, check=True).stdout.split()  # fmt: skip
    assert out[:2] == ["100.0", "False"]  # the square's contour box is the GT: IoU 1
    assert float(out[2]) == pytest.approx(evaluate_folder(maps, meta)["maxboxaccv2"])
    assert float(out[3]) == pytest.approx(100.0)  # the object's pixels all rank first


def test_the_store_as_data(tiny_runs, cli, tmp_path):
    store = next(iter(tiny_runs.values())).parent
    df = wsolbench.runs(store)
    assert sorted(df.method) == sorted(tiny_runs) and len(df) == len(tiny_runs)
    for column in ("run_id", "recipe", "seed", "gt_known_loc", "maxboxaccv2", "protocol",
                   "frame", "weights_sha256", "wall_time_s"):  # fmt: skip
        assert column in df, column
    sat = df[df.method == "sat"].iloc[0]
    rec = wsolbench.record(sat.run_id, store)
    assert rec.metrics["maxboxaccv2"] == sat.maxboxaccv2 and sat.recipe == "synthetic"
    images = wsolbench.per_image(sat.run_id, store)
    assert len(images) == rec.data["test_images"]
    # Each image's stored hit at the record's threshold: their mean is the reported value.
    assert 100 * images.gt_known_hit.mean() == pytest.approx(rec.metrics["gt_known_loc"])
    assert 100 * images.maxbox_hit_iou50.mean() == pytest.approx(rec.metrics["maxboxacc_iou50"])
    with pytest.raises(KeyError):
        wsolbench.record("sat-synthetic-0000000000", store)
    out = tmp_path / "runs.parquet"
    rc, _, err = cli("report", "--format", "parquet", "--out", str(out), "--results", str(store))
    assert rc == 0, err
    back = pd.read_parquet(out)
    assert list(back.run_id) == list(df.run_id)
    assert back.maxboxaccv2.tolist() == pytest.approx(df.maxboxaccv2.tolist())


def test_pxap_through_the_library_equals_evaluate_maps(cli, tmp_path):
    """Masks in the benchmark's metadata (an ignore region on the first line): PxAP and
    pIoU through ``PxAP`` on the maps and masks, through ``evaluate_folder``, and from
    ``evaluate-maps`` are one number."""
    import cv2

    meta, maps, masks = tmp_path / "meta", tmp_path / "maps", tmp_path / "masks"
    rng = np.random.default_rng(0)
    rows, arrays = [], []
    masks.mkdir()
    maps.mkdir()
    for k in range(3):
        obj = np.zeros((224, 224), np.uint8)
        obj[40 + 10 * k : 120, 30 : 150 + 10 * k] = 255
        ignore = np.zeros((224, 224), np.uint8)
        ignore[0:20, :] = 255
        cv2.imwrite(str(masks / f"{k}.png"), obj)
        cv2.imwrite(str(masks / f"{k}-ignore.png"), ignore)
        m = np.clip(obj / 255.0 * 0.7 + rng.random((224, 224)) * 0.3, 0, 1).astype(np.float32)
        np.save(maps / f"{k}.jpg.npy", m)
        rows.append((f"{k}.jpg", 0, 224, 224, [f"masks/{k}.png,masks/{k}-ignore.png"]))
        arrays.append((m, obj > 0, ignore > 0))
    write_metadata(meta / "test", rows)
    rc, _, err = cli("evaluate-maps", str(maps), "--metadata", str(meta), "--mask-root",
                     str(tmp_path), "--name", "x")  # fmt: skip
    assert rc == 0, err
    (path,) = (tmp_path / "results").glob("*/record.json")
    recorded = json.loads(path.read_text())["metrics"]
    p = PxAP()
    p.update([a[0] for a in arrays], [a[1] for a in arrays], ignore=[a[2] for a in arrays])
    assert p.compute() == {"pxap": recorded["pxap"], "piou": recorded["piou"]}
    folder = evaluate_folder(maps, meta, mask_root=tmp_path)
    assert (folder["pxap"], folder["piou"]) == (recorded["pxap"], recorded["piou"])
