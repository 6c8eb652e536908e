"""`evaluate-maps --metadata`: maps written as the WSOL benchmark's inference writes
them (``<scoremap root>/<image id>.npy``, 224x224 float32 in [0, 1]), scored against
the benchmark's own metadata folder with no image files, to numbers worked out by
hand from the benchmark's rules."""

import json

import cv2
import numpy as np
import pytest
from miniature import write_metadata


def save_map(root, image_id, m):
    path = root / f"{image_id}.npy"
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, m.astype(np.float32))


def only_record(results):
    (path,) = results.glob("*/record.json")
    return json.loads(path.read_text())


@pytest.fixture
def boxes_case(tmp_path):
    """Three test images (no image files), boxes in original pixels, and maps."""
    meta, maps = tmp_path / "metadata" / "CUB", tmp_path / "scoremaps"
    # A: 448x448, GT (100, 100, 199, 199) -> int(x * 224 / 448): (50, 50, 99, 99).
    # B: 224x112, GT (10, 10, 59, 39) -> x as is, y doubled, truncated: (10, 20, 59, 78).
    # C: 300x200, GT (0, 0, 149, 99) -> (0, 0, 111, 110).
    write_metadata(
        meta / "test",
        [
            ("a/A.jpg", 0, 448, 448, ["100,100,199,199"]),
            ("b/B.jpg", 1, 224, 112, ["10,10,59,39"]),
            ("c/C.jpg", 1, 300, 200, ["0,0,149,99"]),
        ],
    )
    a = np.zeros((224, 224))
    a[50:99, 50:99] = 1.0  # rect (50, 50, 49, 49) -> box (50, 50, 99, 99): IoU 1
    b = np.zeros((224, 224))
    b[20:78, 10:59] = 0.6  # box (10, 20, 59, 78): IoU 1, but not the largest contour
    b[100:200, 100:200] = 1.0
    save_map(maps, "a/A.jpg", a)
    save_map(maps, "b/B.jpg", b)
    save_map(maps, "c/C.jpg", np.zeros((224, 224)))  # no contour: box (0, 0, 0, 0)
    return meta, maps


def test_benchmark_metadata_boxes_without_images(cli, tmp_path, boxes_case):
    meta, maps = boxes_case
    rc, out, err = cli("evaluate-maps", str(maps), "--metadata", str(meta), "--name", "cam")
    assert rc == 0, err
    rec = only_record(tmp_path / "results")
    m = rec["metrics"]
    # A and B found at every IoU level (B by its small contour), C never: 2 of 3.
    for key in ("maxboxacc_iou30", "maxboxacc_iou50", "maxboxacc_iou70", "maxboxaccv2"):
        assert m[key] == pytest.approx(200 / 3)
    assert rec["protocol"]["frame"] == "resize" and rec["dataset"] == "CUB"
    # No val maps: GT-known at a val-picked threshold is left out, and said so.
    assert "gt_known_loc" not in m and "no val" in err
    assert "MaxBoxAcc at IoU 30 / 50 / 70 | 66.67 / 66.67 / 66.67" in out


def test_benchmark_metadata_threshold_on_test_gives_gt_known(cli, tmp_path, boxes_case):
    meta, maps = boxes_case
    args = ("evaluate-maps", str(maps), "--metadata", str(meta), "--name", "cam")
    rc, _, err = cli(*args, "--threshold-on", "test")
    assert rc == 0, err
    m = only_record(tmp_path / "results")["metrics"]
    # The authors' largest component: A's blob (IoU 1); B's bright square, not its GT
    # (IoU 0); C's empty map gives the whole frame (0, 0, 224, 224) against
    # (0, 0, 111, 110): IoU 112 * 111 / 225^2 = 0.25. One of three at threshold 0.
    assert m["gt_known_loc"] == pytest.approx(100 / 3)


def test_maps_of_the_wrong_size_are_named(cli, tmp_path, boxes_case):
    meta, maps = boxes_case
    save_map(maps, "b/B.jpg", np.zeros((112, 224)))
    rc, _, err = cli("evaluate-maps", str(maps), "--metadata", str(meta), "--name", "cam")
    assert rc == 2 and "B.jpg.npy: map is 112x224, the frame is 224x224" in err, err
    assert not (tmp_path / "results").exists()


def png(path, m):
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), m.astype(np.uint8))


def test_openimages_three_mask_lines_one_ignore_file(cli, tmp_path):
    """Masks at 112x112 (resized nearest to 224: every pixel doubled), three instance
    lines for one image, the ignore file on the first line only."""
    masks, meta, maps = tmp_path / "dataset", tmp_path / "metadata" / "OpenImages", tmp_path / "m"
    inst = [np.zeros((112, 112)) for _ in range(3)]
    inst[0][10:20, 10:20] = 255  # 20x20 = 400 px at 224
    inst[1][50:55, 60:65] = 1  # grey 1 is object too (> 0.5): 100 px
    inst[2][80:90, 10:15] = 255  # 200 px
    ignore = np.zeros((112, 112))
    ignore[:, 90:] = 255  # the right band, cols 180..223 at 224
    for k, m in enumerate(inst):
        png(masks / f"test/x/img_m{k}.png", m)
    png(masks / "test/x/img_ignore.png", ignore)
    lines = [
        "test/x/img_m0.png,test/x/img_ignore.png",
        "test/x/img_m1.png,",
        "test/x/img_m2.png,",
    ]
    write_metadata(meta / "test", [("test/x/img.jpg", 0, 0, 0, lines)])
    (meta / "test" / "image_sizes.txt").unlink()  # OpenImages metadata has none
    score = np.full((224, 224), 0.2)
    for m in inst:
        score[cv2.resize(m, (224, 224), interpolation=cv2.INTER_NEAREST) > 0] = 1.0
    score[:, 180:] = 1.0  # the ignore band scores high: it must count for neither side
    score[200:210, 100:110] = 1.0  # 100 background pixels as high as the object
    save_map(maps, "test/x/img.jpg", score)
    rc, out, err = cli(
        "evaluate-maps", str(maps), "--metadata", str(meta), "--mask-root", str(masks),
        "--name", "cam",
    )  # fmt: skip
    assert rc == 0, err
    m = only_record(tmp_path / "results")["metrics"]
    # Object 700 px, all at 1.0, with 100 background px at 1.0; the rest 0.2. From the
    # empty top bin to the cut at 1.0: precision 700 / 800, recall 0 -> 1. Losing the
    # ignore region would add 9,856 background px at 1.0; keeping only the first
    # instance would give 400 / 800.
    assert m["pxap"] == pytest.approx(87.5) and m["piou"] == pytest.approx(87.5)
    assert "PxAP" in out


def test_ignore_mask_on_a_later_line_is_refused(cli, tmp_path):
    meta = tmp_path / "metadata"
    lines = ["a_m0.png,a_ignore.png", "a_m1.png,a_ignore.png"]
    write_metadata(meta / "test", [("a.jpg", 0, 8, 8, lines)])
    for name in ("a_m0.png", "a_m1.png", "a_ignore.png"):
        png(tmp_path / name, np.zeros((8, 8)))
    save_map(tmp_path / "m", "a.jpg", np.zeros((224, 224)))
    rc, _, err = cli(
        "evaluate-maps", "m", "--metadata", str(meta), "--mask-root", str(tmp_path),
        "--name", "x",
    )  # fmt: skip
    assert rc == 2 and "localization.txt:2: image 'a.jpg' names an ignore mask" in err, err


def test_manifest_frame_wins_and_a_clash_is_an_error(cli, tmp_path, boxes_case):
    meta, maps = boxes_case
    (maps / "manifest.json").write_text(json.dumps({"frame": "crop", "protocol": "2"}))
    args = ("evaluate-maps", str(maps), "--metadata", str(meta), "--name", "cam")
    rc, _, err = cli(*args, "--frame", "resize")
    assert rc == 2 and "says these maps are in frame crop" in err, err
    rc, _, err = cli(*args)
    assert rc == 0, err
    rec = only_record(tmp_path / "results")
    # In the crop frame the GT boxes move (A: floor(x * 256/448) - 16 = (41, 41, 97, 97)):
    # A's map box (50, 50, 99, 99) now misses at IoU 0.7 and the numbers change.
    assert rec["protocol"]["frame"] == "crop"
    assert rec["metrics"]["maxboxacc_iou70"] < 200 / 3


def test_workers_read_the_files_and_agree_with_inline_scoring(cli, tmp_path, boxes_case):
    """Two worker processes read, hash and score the files themselves: the same
    metrics as scoring inline, and the split's sha256 is over each id and its file's
    sha256, worked out here from the files."""
    import hashlib

    meta, maps = boxes_case
    records = []
    for workers in ("0", "2"):
        store = tmp_path / f"results{workers}"
        args = ("evaluate-maps", str(maps), "--metadata", str(meta), "--name", "cam")
        rc, _, err = cli(*args, "--eval-workers", workers, "--results", str(store))
        assert rc == 0, err
        records.append(only_record(store))
    inline, pooled = records
    assert pooled["metrics"] == inline["metrics"] and inline["metrics"]["maxboxaccv2"] > 0
    lines = "".join(
        f"{i}\0{hashlib.sha256((maps / f'{i}.npy').read_bytes()).hexdigest()}\n"
        for i in ("a/A.jpg", "b/B.jpg", "c/C.jpg")
    )
    want = hashlib.sha256(lines.encode()).hexdigest()
    assert inline["maps"]["sha256"] == pooled["maps"]["sha256"] == {"test": want}


def test_a_map_changed_while_scored_is_an_error(tmp_path, boxes_case):
    from wsolbench.core.errors import UserError
    from wsolbench.evaluation.maps import GroundTruth, MapsRequest, _score_folder, from_metadata
    from wsolbench.evaluation.scores import SplitScores

    meta, maps = boxes_case
    gt: GroundTruth = from_metadata(meta.parent / "CUB", None, "test", "resize")
    known = {maps / "b/B.jpg.npy": "0" * 64}  # not the file's sha256
    work = (SplitScores.for_split(gt.test, False, classify=False), None, 0, known)
    with pytest.raises(UserError, match=r"B\.jpg\.npy: changed while being scored"):
        _score_folder(maps, gt.test, gt.image_size, MapsRequest(maps, "cam"), work)
