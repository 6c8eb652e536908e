"""Figures from stored per-image results: files written at the expected size, not
blank, and the images chosen really are the worst / best by IoU."""

import json

import matplotlib.image as mpimg
import numpy as np
import pytest
from conftest import copy_runs

from wsolbench.core.store import Store
from wsolbench.evaluation.perimage import load
from wsolbench.reporting.show import DPI, PANEL, choose, class_name, figure_title, open_run


@pytest.fixture(scope="module")
def store(tiny_runs, tmp_path_factory):
    """Copies of the session's tiny SAT and TS-CAM runs in ``<root>/r``."""
    root = tmp_path_factory.mktemp("show")
    runs = copy_runs(tiny_runs, ["sat", "tscam"], root / "r")
    return root, {method: folder.name for method, folder in runs.items()}


def image(path):
    img = mpimg.imread(path)
    assert img[..., :3].std() > 0.05  # not blank
    return img


def test_per_image_results_are_stored_compactly(store):
    root, ids = store
    run_dir = root / "r" / ids["sat"]
    per = load(run_dir / "per_image.npz")
    rec = json.loads((run_dir / "record.json").read_text())
    assert rec["per_image"] == {
        "file": "per_image.npz",
        "images": 600,
        "maps_kept": 600,
        "maps_sampled": False,
    }
    assert per["maps"].shape == (600, 8, 8) and per["iou"].shape == (600, 100)
    # The stored IoUs give back the recorded GT-known Loc at the chosen threshold.
    k = int(round(rec["threshold"]["box"] * 100))
    assert 100 * (per["iou"][:, k].astype(np.float32) >= 0.5).mean() == pytest.approx(
        rec["metrics"]["gt_known_loc"], abs=0.2
    )
    assert ((per["pred"] == per["labels"]).mean() * 100) == pytest.approx(
        rec["metrics"]["top1_cls"]
    )
    # What compare resamples: exact hit bits for both rules and pixel histograms.
    assert per["box_hit"].shape == (600, 100) and per["maxbox_hits"].shape == (600, 3, 100)
    assert per["pixel_hist"].shape == (600, 2, 102) and per["pixel_hist"].dtype == np.uint16
    assert 100 * per["box_hit"][:, k].mean() == pytest.approx(rec["metrics"]["gt_known_loc"])
    # About 350 bytes an image here, 80 of them the pixel histograms (masks only).
    assert (run_dir / "per_image.npz").stat().st_size < 250_000


@pytest.mark.parametrize("pick", ["worst", "best"])
def test_chosen_images_are_the_extremes_by_iou(store, pick):
    root, ids = store
    run = open_run(Store(root / "r"), ids["sat"])
    chosen = choose(run, 5, pick)
    iou = run.iou()
    rest = np.setdiff1d(np.arange(len(iou)), chosen)
    if pick == "worst":
        assert iou[chosen].max() <= iou[rest].min()
    else:
        assert iou[chosen].min() >= iou[rest].max()


def test_show_one_run_grid(cli, store):
    root, ids = store
    rc, out, err = cli(
        "show", ids["sat"], "--n", "6", "--worst", "--out", "w.png", "--results", "r", cwd=root
    )
    assert rc == 0, err
    img = image(root / "w.png")
    # 6 images in rows of 4: 2 rows of panels plus room for the colour bar.
    assert img.shape[:2] == (round((PANEL[1] * 2 + 0.4) * DPI), round((PANEL[0] * 4 + 1.2) * DPI))


def test_show_writes_into_the_run_folder_and_says_what_it_shows(cli, store):
    """No --out: show.png in the run's own folder (inside the results store, not the
    working directory). The title names the run, the images and the threshold."""
    root, ids = store
    rc, out, err = cli("show", ids["sat"], "--n", "2", "--best", "--results", "r", cwd=root)
    assert rc == 0, err
    path = root / "r" / ids["sat"] / "show.png"
    assert out.strip() == f"wrote r/{ids['sat']}/show.png" and path.is_file()
    assert not (root / "show.png").exists()
    run = open_run(Store(root / "r"), ids["sat"])
    thr = json.loads((root / "r" / ids["sat"] / "record.json").read_text())["threshold"]
    total = len(run.results["labels"])
    assert figure_title([run], "best", 2) == (
        f"{ids['sat']}: the best 2 of {total} test images by IoU, "
        f"box threshold {thr['box']:.2f} (picked on {thr['picked_on']})"
    )


def test_class_names_where_the_dataset_gives_them():
    class Named:
        class_names = ["001.Black_footed_Albatross", "002.Laysan_Albatross"]

    class Unnamed:
        class_names = None

    assert class_name(Named, 1) == "002.Laysan_Albatross"
    assert class_name(Unnamed, 3) == "class 3"


def test_show_two_runs_side_by_side(cli, store):
    root, ids = store
    rc, _, err = cli(
        "show",
        ids["tscam"],
        ids["sat"],
        "--same-images",
        "--n",
        "3",
        "--out",
        "both.pdf",
        "--results",
        "r",
        cwd=root,
    )
    assert rc == 0, err
    assert (root / "both.pdf").read_bytes().startswith(b"%PDF")


def test_fig5_and_fig6(cli, store):
    root, ids = store
    for fig in ("fig5", "fig6"):
        rc, out, err = cli(
            "report",
            fig,
            ids["sat"],
            ids["tscam"],
            "--out",
            f"{fig}.png",
            "--results",
            "r",
            cwd=root,
        )
        assert rc == 0, err
        assert image(root / f"{fig}.png").shape[1] > 300


@pytest.mark.parametrize(
    "args, message",
    [
        (["show", "nope-run"], "run 'nope-run': no finished run in r"),
        (["show", "SAT", "--n", "0"], "--n must be >= 1, got 0"),
        (["show", "SAT", "TSCAM"], "several runs are drawn side by side only with --same-images"),
        (["show", "SAT", "--out", "x.jpg"], "x.jpg: figures are written as .png or .pdf"),
        (["report", "fig5"], "report fig5: give the run ids to draw"),
    ],
)
def test_show_bad_input(cli, store, args, message):
    root, ids = store
    args = [ids["sat"] if a == "SAT" else ids["tscam"] if a == "TSCAM" else a for a in args]
    rc, _, err = cli(*args, "--results", "r", cwd=root)
    assert rc == 2 and message in err and err.count("\n") == 1, err


def test_run_without_stored_maps(cli, store, tmp_path):
    root, ids = store
    import shutil

    shutil.copytree(root / "r" / ids["sat"], tmp_path / "r" / ids["sat"])
    (tmp_path / "r" / ids["sat"] / "per_image.npz").unlink()
    rc, _, err = cli("show", ids["sat"], "--results", str(tmp_path / "r"))
    assert rc == 2 and "has no stored per-image maps" in err


def test_a_long_title_wraps_to_the_figure_instead_of_running_off_it():
    import matplotlib.pyplot as plt

    from wsolbench.reporting.show import _panel_grid

    title = "sat-synthetic-0123456789, tscam-synthetic-0123456789: the best 3 of 600 test images"
    fig, _, _ = _panel_grid(3, 2, title, titled=True)
    text = fig.get_suptitle()
    plt.close(fig)
    assert text.replace("\n", " ") == title and len(text.splitlines()) == 2
    # Two lines of title and the runs' names over the columns get their own room.
    assert fig.get_figheight() == pytest.approx(PANEL[1] * 3 + 0.25 + 0.15 * 2 + 0.25)
    fig, _, _ = _panel_grid(2, 4, title, titled=False)
    text = fig.get_suptitle()
    plt.close(fig)
    assert text == title and fig.get_figheight() == pytest.approx(PANEL[1] * 2 + 0.4)
