"""A run's identity: only the settings its method uses, and the data it reads."""

from miniature import make_cub

from wsolbench.cluster.sweepfile import load_sweep
from wsolbench.train.plan import plan


def test_a_sweep_over_lambda_trains_cam_once(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("method: [sat, cam, tscam]\ngrid:\n  lambda: [0.1, 0.2, 0.3]\n")
    runs = load_sweep(str(path)).runs
    by_method = {m: [p for p in runs if p.cfg["method"] == m] for m in ("sat", "cam", "tscam")}
    # CAM and TS-CAM (cross-entropy only) read no lambda: one run each, lambda not shown.
    assert len(by_method["sat"]) == 3 and len(by_method["cam"]) == len(by_method["tscam"]) == 1
    assert by_method["cam"][0].cfg["lambda"] is None
    assert by_method["cam"][0].cfg["loss_delay"] is None
    # With its spatial losses on, TS-CAM does read lambda.
    on = {"method": "tscam", "options": {"spatial_losses": True}}
    assert plan({**on, "lambda": 0.1}).cfg.run_id != plan({**on, "lambda": 0.2}).cfg.run_id
    # SAT without its area loss ignores lambda but keeps the warm-up of the other loss.
    off = {"method": "sat", "options": {"area_loss": False}}
    a, b = plan({**off, "lambda": 0.1}).cfg, plan({**off, "lambda": 0.2}).cfg
    assert a.run_id == b.run_id and a["lambda"] is None and a["loss_delay"] == 0.65


def test_the_data_folder_is_part_of_the_identity(tmp_path):
    one, two = make_cub(tmp_path / "one"), make_cub(tmp_path / "two")
    same = make_cub(tmp_path / "same")
    base = {"method": "sat", "dataset": "cub", "pretrained": "none"}
    ids = {
        name: plan({**base, "data_root": str(root)}).cfg.run_id
        for name, root in (("one", one), ("two", two), ("same", same))
    }
    assert ids["one"] == ids["two"] == ids["same"]  # the same annotations: one run
    boxes = two / "cub" / "bounding_boxes.txt"
    boxes.write_text(boxes.read_text().replace(" 4.0 ", " 5.0 ", 1))
    assert plan({**base, "data_root": str(two)}).cfg.run_id != ids["one"]
    # The synthetic data is identified by its generator's version.
    assert plan({"method": "sat"}).cfg["data_sha256"] == "generator-1"
