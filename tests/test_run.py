"""End to end through the real CLI: record contents, atomic/no-overwrite behaviour,
YAML configs, reports, resume, and the main job's localization quality."""

import json

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import CLASS_AWARE, METHOD_NAMES, TINY, copy_runs

CNN_METHODS = ("adl", "cam", "cutmix", "has")


@pytest.fixture
def tiny_run(tiny_runs, tmp_path):
    """A store holding a copy of the session's tiny SAT run, and its folder."""
    store = tmp_path / "store"
    return store, copy_runs(tiny_runs, ["sat"], store)["sat"]


def test_record_says_exactly_what_ran(tiny_run):
    store, run_dir = tiny_run
    rec = json.loads((run_dir / "record.json").read_text())
    assert rec["run_id"] == run_dir.name and rec["method"] == "sat" and rec["seed"] == 3
    c = rec["config"]
    assert (c["epochs"], c["kshot"], c["dataset"], c["freeze"]) == (1, 5, "synthetic", "a")
    assert c["options"] == {
        "area_loss": True,
        "norm_loss": True,
        "gaussian": True,
        "sat_blocks": 3,
        "fused": True,
    }
    assert rec["recipe"]["name"] == "synthetic" and rec["recipe"]["trust"] == "wsolbench"
    assert rec["recipe"]["sources"]["epochs"].startswith("wsolbench: README")
    assert rec["protocol"]["version"] == "2" and rec["protocol"]["box_threshold_on"] == "val"
    assert rec["protocol"]["frame"] == "native" == c["frame"]
    assert "EVERY RETR_TREE contour" in rec["protocol"]["maxboxacc"]
    assert rec["frozen_percent"] == 0.0
    assert rec["environment"]["packages"]["torch"] == torch.__version__.split("+")[0] or rec[
        "environment"
    ]["packages"]["torch"].startswith(torch.__version__.split("+")[0])
    assert (
        len(rec["environment"]["git"]["commit"]) in (40, 7)
        or rec["environment"]["git"]["commit"] == "unknown"
    )
    assert rec["wall_time_s"] > 0 and set(rec["timing"]) == {"data_s", "train_s", "eval_s"}
    assert len(rec["data"]["kshot_image_ids"]) == 30 and rec["data"]["train_images"] == 30
    assert len(rec["curve"]["thresholds"]) == len(rec["curve"]["test_gt_known"]) == 100
    m = rec["metrics"]
    for key in (
        "top1_cls",
        "top5_cls",
        "gt_known_loc",
        "top1_loc",
        "top5_loc",
        "maxboxaccv2",
        "maxboxacc_iou30",
        "maxboxacc_iou50",
        "maxboxacc_iou70",
        "pxap",
        "piou",
        "baseline_whole_image",
        "baseline_centred_box",
    ):
        assert 0.0 <= m[key] <= 100.0, key
    assert m["top1_loc"] <= m["gt_known_loc"] and m["top1_loc"] <= m["top5_loc"]
    assert not (run_dir / "checkpoint.pt").exists() and not (run_dir / "error.txt").exists()
    assert not list(run_dir.glob(".*.tmp"))


def test_model_checkpoint_loads_safely(tiny_run):
    _, run_dir = tiny_run
    state = torch.load(run_dir / "model.pt", map_location="cpu", weights_only=True)
    assert state["run_id"] == run_dir.name
    assert state["model"]["spatial_token"].shape == (1, 1, 96)
    assert state["model"]["head.weight"].shape == (6, 96, 3, 3)


def test_rerun_does_not_overwrite_and_force_does(tiny_run, cli):
    store, run_dir = tiny_run
    record = run_dir / "record.json"
    before = (record.read_bytes(), record.stat().st_mtime_ns)
    code, out, err = cli("run", "sat", *TINY, "--results", str(store))
    assert code == 0 and "already finished" in err and run_dir.name in out
    assert (record.read_bytes(), record.stat().st_mtime_ns) == before
    code, _, err = cli("run", "sat", *TINY, "--results", str(store), "--force")
    assert code == 0, err
    assert record.stat().st_mtime_ns != before[1]
    assert [p.name for p in store.iterdir()] == [run_dir.name]


def test_yaml_config_is_the_same_run(tiny_run, cli, tmp_path):
    store, run_dir = tiny_run
    cfg = tmp_path / "run.yaml"
    cfg.write_text("method: sat\nepochs: 1\nkshot: 5\nseed: 3\n")
    code, out, err = cli("run", "--config", str(cfg), "--results", str(store))
    assert code == 0 and "already finished" in err and run_dir.name in out


def test_report_formats(tiny_run, cli, tmp_path):
    store, run_dir = tiny_run
    rec = json.loads((run_dir / "record.json").read_text())
    code, md, _ = cli("report", "--results", str(store))
    assert code == 0 and md.startswith("| run_id") and run_dir.name in md
    out = tmp_path / "runs.csv"
    assert cli("report", "--format", "csv", "--out", str(out), "--results", str(store))[0] == 0
    df = pd.read_csv(out)
    assert df["run_id"].tolist() == [run_dir.name]
    assert df["GT-known Loc"].iloc[0] == pytest.approx(rec["metrics"]["gt_known_loc"], abs=0.006)
    code, tex, _ = cli("report", "--format", "latex", "--results", str(store))
    assert "\\toprule" in tex and "\\midrule" in tex and "\\bottomrule" in tex


@pytest.mark.slow
def test_main_job_beats_trivial_baselines(cli, tmp_path):
    """`wsolbench run sat` with no other argument: the README's main job."""
    code, out, err = cli("run", "sat", cwd=tmp_path)
    assert code == 0, err
    (record,) = (tmp_path / "results").glob("*/record.json")
    rec = json.loads(record.read_text())
    m = rec["metrics"]
    # It fine-tunes the shipped trunk, and the record says so.
    assert rec["pretrained"]["source"] == "shipped" and rec["config"]["pretrained"] == "hub"
    assert rec["pretrained"]["loaded"] == 78 and rec["config"]["epochs"] == 3
    assert 0 <= m["flipped_maps"] <= 100
    assert m["top1_cls"] > 90
    assert m["baseline_whole_image"] < 5
    assert m["gt_known_loc"] > m["baseline_centred_box"] + 15
    assert "GT-known Loc" in out
    # It says what it is doing before the first epoch, and where the results went.
    lines = err.splitlines()
    assert lines[0] == f"run {rec['run_id']}: sat on synthetic, every input checked"
    assert lines[1].startswith("data: synthetic, 2400 train / 300 val / 600 test images")
    assert lines[2].startswith("model: SATNet on wsolbench_vit_micro_patch8_64, 0.7M")
    assert next(i for i, ln in enumerate(lines) if ln.startswith("train 1/3")) <= 4
    assert out.splitlines()[-1] == f"results: results/{rec['run_id']}"
    # Right after it, the paper's Table 1 shows its SAT row on the store's dataset.
    code, table, notes = cli("report", "table1", cwd=tmp_path)
    assert code == 0 and notes.startswith("datasets: synthetic")
    (sat,) = [ln for ln in table.splitlines() if ln.startswith("| SAT ") and "| ours" in ln]
    assert f"{m['gt_known_loc']:.2f}" in sat


def test_evaluate_reproduces_the_run(tiny_run, cli):
    store, run_dir = tiny_run
    rec = json.loads((run_dir / "record.json").read_text())
    ckpt = str(run_dir / "model.pt")
    # Scored by two worker processes this time (the run itself scored inline).
    code, out, err = cli(
        "evaluate",
        "sat",
        "--checkpoint",
        ckpt,
        *TINY,
        "--eval-workers",
        "2",
        "--results",
        str(store),
    )
    assert code == 0, err
    (other,) = [p for p in store.iterdir() if p.name != run_dir.name]
    ev = json.loads((other / "record.json").read_text())
    assert ev["mode"] == "evaluate" and ev["history"] == []
    assert ev["metrics"] == rec["metrics"] and ev["threshold"] == rec["threshold"]
    assert len(ev["config"]["checkpoint_sha256"]) == 64
    # Per-image results came back from the workers to the right images.
    with np.load(run_dir / "per_image.npz") as a, np.load(other / "per_image.npz") as b:
        assert sorted(a.files) == sorted(b.files)
        for key in a.files:
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_evaluate_with_weights_of_another_method(tiny_run, cli, tmp_path):
    _, run_dir = tiny_run
    store = tmp_path / "s"
    code, out, err = cli(
        "evaluate", "tscam", "--checkpoint", str(run_dir / "model.pt"), "--results", str(store)
    )
    assert code == 2 and out == ""
    assert err.strip().endswith("model.pt: key 'spatial_token' is not in the model (2 such keys)")
    assert len(err.strip().splitlines()) == 1 and not store.exists()


def test_every_method_runs_and_reports_side_by_side(cli, tiny_runs):
    store = str(next(iter(tiny_runs.values())).parent)  # every method, run by the CLI
    recs = [json.loads((d / "record.json").read_text()) for d in tiny_runs.values()]
    assert sorted(r["method"] for r in recs) == METHOD_NAMES
    assert {r["method"]: r["class_aware"] for r in recs} == CLASS_AWARE
    cnn = {r["method"]: r["config"]["backbone"] for r in recs if r["method"] in CNN_METHODS}
    assert cnn == dict.fromkeys(CNN_METHODS, "wsolbench_resnet_micro_64")
    code, md, _ = cli("report", "--results", store)
    assert code == 0
    rows = [line for line in md.splitlines()[2:] if line.startswith("|")]
    assert sorted(row.split("|")[2].strip() for row in rows) == METHOD_NAMES
