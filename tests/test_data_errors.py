"""Bad dataset files and bad score maps: one line naming the file and the problem,
exit 2, and nothing written to the results store."""

import json

import numpy as np
import pytest
from miniature import make_cub, make_openimages

RUN = [
    "run",
    "sat",
    "--dataset",
    "cub",
    "--backbone",
    "wsolbench_vit_micro_patch16_224",
    "--epochs",
    "1",
    "--batch-size",
    "4",
    "--pretrained",
    "none",
]


def rewrite_line(path, lineno, text):
    lines = path.read_text().splitlines()
    lines[lineno - 1] = text
    path.write_text("\n".join(lines) + "\n")


def first_test_image(cub):
    flags = dict(line.split() for line in (cub / "train_test_split.txt").read_text().splitlines())
    images = dict(line.split() for line in (cub / "images.txt").read_text().splitlines())
    return next(images[i] for i, f in flags.items() if f == "0")


def break_missing_file(cub):
    (cub / "bounding_boxes.txt").unlink()
    return "bounding_boxes.txt: file is missing"


def break_missing_image(cub):
    rel = first_test_image(cub)
    (cub / "images" / rel).unlink()
    return f"{rel}: file is missing"


def break_unreadable_image(cub):
    rel = first_test_image(cub)
    (cub / "images" / rel).write_bytes(b"not a jpeg at all")
    return f"{rel}: cannot be read as an image"


def line_breaker(name, file, lineno, text, expected):
    """A case that replaces one line of an annotation file."""

    def breaker(cub):
        new = (cub / file).read_text().splitlines()[4] if text is None else text
        rewrite_line(cub / file, lineno, new)
        return expected

    breaker.__name__ = f"break_{name}"
    return breaker


CASES = [
    break_missing_file,
    break_missing_image,
    break_unreadable_image,
    line_breaker(
        "malformed_line",
        "bounding_boxes.txt",
        3,
        "3 1.0 2.0 3.0",
        "bounding_boxes.txt:3: expected 5 fields separated by blanks, got 4",
    ),
    line_breaker(
        "not_a_number",
        "bounding_boxes.txt",
        2,
        "2 4.0 six 10.0 10.0",
        "bounding_boxes.txt:2: 'six' is not float",
    ),
    line_breaker(
        "inverted_box",
        "bounding_boxes.txt",
        4,
        "4 10.0 5.0 0.0 8.0",
        "bounding_boxes.txt:4: box width 0.0 and height 8.0 must be positive",
    ),
    line_breaker(
        "box_outside",
        "bounding_boxes.txt",
        4,
        "4 500.0 500.0 10.0 10.0",
        "a box lies wholly outside its",
    ),
    line_breaker(
        "class_out_of_range", "image_class_labels.txt", 5, "5 4", "class 3 is outside 0..2"
    ),
    line_breaker("duplicate_id", "images.txt", 6, None, "images.txt:6: duplicate image id '5'"),
    line_breaker(
        "train_test_flag",
        "train_test_split.txt",
        2,
        "2 yes",
        "train_test_split.txt:2: is_train must be 0 or 1, got 'yes'",
    ),
]


@pytest.mark.parametrize("breaker", CASES, ids=[c.__name__[6:] for c in CASES])
def test_bad_cub_files(cli, tmp_path, breaker):
    root = make_cub(tmp_path / "data")
    expected = breaker(root / "cub")
    rc, out, err = cli(*RUN, "--data-root", str(root))
    assert rc == 2, err
    assert expected in err
    assert err.startswith("wsolbench: error: ") and err.count("\n") == 1, err
    assert not (tmp_path / "results").exists()


def test_box_sticking_out_is_clipped_and_counted(cli, tmp_path):
    root = make_cub(tmp_path / "data")
    rewrite_line(root / "cub" / "bounding_boxes.txt", 5, "5 30.0 10.0 100.0 10.0")  # test image
    rc, _, err = cli(*RUN, "--data-root", str(root))
    assert rc == 0, err
    assert "1 boxes extend past their image and were clipped" in err
    (rec,) = [json.loads(p.read_text()) for p in (tmp_path / "results").glob("*/record.json")]
    assert rec["data"]["test_boxes_clipped"] == 1 and rec["data"]["train_boxes_clipped"] == 0


def test_kshot_larger_than_smallest_class(cli, tmp_path):
    root = make_cub(tmp_path / "data")
    rc, _, err = cli(*RUN, "--data-root", str(root), "--kshot", "3")
    assert rc == 2 and "kshot: 3 is more than class 0 has (2 training images)" in err
    assert not (tmp_path / "results").exists()


def test_missing_dataset_folder_says_where_it_looked(cli, tmp_path):
    rc, _, err = cli(*RUN, env={"WSOLBENCH_DATA": str(tmp_path / "nowhere")})
    assert rc == 2
    assert f"cub: no dataset at {tmp_path / 'nowhere' / 'cub'}; pass --data-root DIR" in err
    rc, _, err = cli(*RUN, env={"WSOLBENCH_DATA": ""})
    assert (
        rc == 2 and "cub: no data folder given; pass --data-root DIR or set WSOLBENCH_DATA" in err
    )


def test_missing_metadata_file(cli, tmp_path):
    root = make_openimages(tmp_path / "data")
    (root / "openimages/metadata/test/class_labels.txt").unlink()
    rc, _, err = cli(
        "run", "sat", "--dataset", "openimages", "--data-root", str(root), "--pretrained", "none"
    )
    assert rc == 2 and "metadata/test/class_labels.txt: file is missing" in err


@pytest.fixture
def maps_dir(tmp_path):
    """Valid maps for every val and test image of the miniature OpenImages."""
    root = make_openimages(tmp_path / "data")
    for split in ("val", "test"):
        for rel in (root / f"openimages/metadata/{split}/image_ids.txt").read_text().split():
            path = tmp_path / "maps" / f"{rel}.npy"
            path.parent.mkdir(parents=True, exist_ok=True)
            np.save(path, np.linspace(0, 1, 56 * 56, dtype=np.float32).reshape(56, 56))
    return root, tmp_path / "maps"


def score_maps(cli, root, maps, *extra):
    return cli(
        "evaluate-maps",
        str(maps),
        "--dataset",
        "openimages",
        "--data-root",
        str(root),
        "--name",
        "ramp",
        *extra,
    )


def test_maps_of_another_size_are_refused_unless_resizing_is_asked(cli, maps_dir, tmp_path):
    root, maps = maps_dir
    rc, out, err = score_maps(cli, root, maps)
    assert rc == 2 and "map is 56x56, the frame is 224x224; pass --resize-maps" in err, err
    assert err.count("\n") == 1 and not (tmp_path / "results").exists()
    rc, out, err = score_maps(cli, root, maps, "--resize-maps")
    assert rc == 0, err
    (rec,) = [json.loads(p.read_text()) for p in (tmp_path / "results").glob("*/record.json")]
    assert (
        set(rec["metrics"]) == {"pxap", "piou", "flipped_maps"} and 0 < rec["metrics"]["pxap"] < 100
    )
    assert rec["protocol"]["frame"] == "resize" and rec["config"]["resize_maps"] is True


@pytest.mark.parametrize(
    "bad, message",
    [
        (np.full((8, 8), np.nan, np.float32), "score map holds NaN or infinite values"),
        (np.zeros((2, 8, 8), np.float32), "score map must be 2-D, got shape (2, 8, 8)"),
        (np.full((8, 8), 1.5, np.float32), "values must lie in [0, 1], got 1.5..1.5"),
        (None, "score map is missing"),
    ],
    ids=["nan", "shape", "range", "missing"],
)
def test_bad_maps(cli, maps_dir, tmp_path, bad, message):
    root, maps = maps_dir
    victim = sorted(maps.rglob("test_1.jpg.npy"))[0]
    if bad is None:
        victim.unlink()
    else:
        np.save(victim, bad)
    rc, _, err = score_maps(cli, root, maps, "--resize-maps")
    assert rc == 2 and f"{victim}: {message}" in err and err.count("\n") == 1, err
    assert not (tmp_path / "results").exists()
