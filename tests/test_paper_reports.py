"""Paper tables and figures rebuilt from records the tests write into a temporary
store: exact CSV, LaTeX and Markdown, figures written and not blank, missing runs
named with the commands that make them."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.image import imread

from wsolbench import PROTOCOL_VERSION
from wsolbench.cli import main
from wsolbench.cluster.sweepfile import load_sweep
from wsolbench.core.store import Store, write_json
from wsolbench.evaluation.boxes import THRESHOLDS
from wsolbench.reporting.paperspec import PAPER, RunIndex, cell_config, load_specs, paper_numbers
from wsolbench.reporting.tables import build_table
from wsolbench.train.plan import configure


def put(root, metrics: dict, frozen: float = 0.0, curve=None, **given) -> dict:
    """Write a finished run's record as the runner would, for ``given`` settings."""
    given.setdefault("dataset", "cub")
    given.setdefault("weights_sha256", "none")  # what runner.plan records for no weights
    _, _, cfg = configure(given)
    record = {
        "run_id": cfg.run_id,
        "method": cfg["method"],
        "dataset": cfg["dataset"],
        "seed": cfg["seed"],
        "config": cfg.to_dict(),
        "metrics": metrics,
        "threshold": {"box": 0.5, "picked_on": "val"},
        "curve": curve,
        "frozen_percent": frozen,
        "protocol": {"version": PROTOCOL_VERSION},
    }
    write_json(root / cfg.run_id / "record.json", record)
    return record


def report(capsys, root, *args: str) -> tuple[int, str, str]:
    code = main(["report", *args, "--results", str(root)])
    out, err = capsys.readouterr()
    return code, out, err


GOLDEN = Path(__file__).resolve().parent / "golden"


def test_table_csv_is_exact_and_missing_runs_are_named(tmp_path, capsys):
    put(tmp_path, {"piou": 70.0, "pxap": 80.5}, method="sat", seed=0)
    put(tmp_path, {"piou": 72.0, "pxap": 81.5}, method="sat", seed=1)
    # Not the table's run: another lambda than CUB's default must not be pooled in.
    put(tmp_path, {"piou": 10.0, "pxap": 10.0}, method="sat", seed=2, **{"lambda": 0.5})
    code, out, err = report(capsys, tmp_path, "table4", "--dataset", "cub", "--format", "csv")
    assert code == 0
    assert out == (GOLDEN / "table4_cub.csv").read_text()
    assert err.splitlines() == [
        "1 runs missing (shown as —); to make them:",
        "  wsolbench run tscam --dataset cub --data-root DATA",
        "  or all at once: WSOLBENCH_DATA=DATA wsolbench sweep table4 --dataset cub",
        "  (DATA: the folder that holds cub/, imagenet/, openimages/)",
        "starting weights (sha256): none (from scratch)",
    ]


def test_ci_shows_the_t_interval_over_seeds_and_marks_one_seed(tmp_path, capsys):
    put(tmp_path, {"piou": 70.0, "pxap": 80.5}, method="sat", seed=0)
    put(tmp_path, {"piou": 72.0, "pxap": 81.5}, method="sat", seed=1)
    put(tmp_path, {"piou": 50.0, "pxap": 60.0}, method="tscam", seed=0)
    code, out, _ = report(capsys, tmp_path, "table4", "--dataset", "cub", "--ci")
    assert code == 0 and "95% t-interval over seeds" in out
    # Two seeds: mean 71, sd sqrt(2), t(0.975, 1) = 12.706: 71 -+ 12.706; PxAP 81 -+ 6.353.
    assert "71.00 [58.29, 83.71]" in out and "81.00 [74.65, 87.35]" in out
    assert "50.00†" in out and "60.00†" in out  # one seed: no interval, marked
    code, csv, _ = report(capsys, tmp_path, "table4", "--dataset", "cub", "--format", "csv", "--ci")
    assert csv.splitlines()[0].endswith(",low,high")


def test_records_of_another_protocol_are_never_pooled(tmp_path, capsys):
    put(tmp_path, {"piou": 70.0, "pxap": 80.5}, method="sat", seed=0)
    put(tmp_path, {"piou": 72.0, "pxap": 81.5}, method="sat", seed=1)
    old = put(tmp_path, {"piou": 1.0, "pxap": 1.0}, method="sat", seed=2)
    old["protocol"] = {"version": "1"}  # same cell, scored under the old rules
    write_json(tmp_path / old["run_id"] / "record.json", old)
    code, out, err = report(capsys, tmp_path, "table4", "--dataset", "cub", "--format", "csv")
    assert code == 0 and out == (GOLDEN / "table4_cub.csv").read_text()  # seeds 0 and 1 only
    assert f"1 runs under protocol 1 left out (this is protocol {PROTOCOL_VERSION}" in err
    code, out, _ = report(capsys, tmp_path, "--format", "csv")  # every run, protocol shown
    column = [line.split(",")[9] for line in out.splitlines()]
    assert column[0] == "protocol" and sorted(column[1:]) == ["1", "2", "2"]


def _table5(root) -> None:
    ds = {"dataset": "imagenet"}
    put(root, {"top1_cls": 70.0, "top5_cls": 90.0, "top1_loc": 50.0, "gt_known_loc": 66.0},
        method="attnmap", **ds)  # fmt: skip
    put(root, {"top1_cls": 72.5, "top5_cls": 89.0, "top1_loc": 55.25, "gt_known_loc": 70.0},
        method="sat", **ds)  # fmt: skip


def test_table_latex_has_booktabs_and_bolds_the_best(tmp_path, capsys):
    _table5(tmp_path)
    code, out, _ = report(capsys, tmp_path, "table5", "--format", "latex")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == r"\begin{table}"
    # LaTeX numbers the table: the caption is not "Table 5. Table 5. ...".
    assert lines[1] == r"\caption{Spatial token vs attention map, same losses (ImageNet)}"
    assert lines[2] == r"\label{tab:table5}" and r"\begin{tabular}{llrrrr}" in lines
    assert [lines.index(rule) for rule in (r"\toprule", r"\midrule", r"\bottomrule")] == [4, 6, 13]
    assert lines[5] == r"row & source & Top-1 Cls & Top-5 Cls & Top-1 Loc & GT-known Loc \\"
    assert lines[7] == r"Attention map & ours (n=1) & 70.00 & 90.00 & 50.00 & 66.00 \\"
    assert lines[8] == r"Attention map & Δ ours − paper & -5.89 & -2.77 & -5.98 & -3.74 \\"
    # The best of each column over our rows and the paper's, as papers bold: here the
    # paper's SAT row everywhere (78.41 > 75.89 > 72.50 > 70.00, and so on).
    assert lines[12] == (
        r"Spatial token (SAT) & paper & \textbf{78.41} & \textbf{94.46} & \textbf{60.15} "
        r"& \textbf{73.13} \\"
    )
    assert lines[-1] == r"\end{table}"


def test_table_markdown_and_other_dataset(tmp_path, capsys):
    _table5(tmp_path)
    code, out, _ = report(capsys, tmp_path, "table5")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "Table 5. Spatial token vs attention map, same losses (ImageNet)"
    cells = [c.strip() for c in lines[7].strip("|").split("|")]
    assert cells == ["Spatial token (SAT)", "ours (n=1)", "72.50", "89.00", "55.25", "70.00"]
    # Ours bold where it beats every other row: Top-5 Cls 95.00 against the paper's 94.46.
    better = tmp_path / "better"
    put(better, {"top1_cls": 72.5, "top5_cls": 95.0}, method="sat", dataset="imagenet")
    code, out, _ = report(capsys, better, "table5")
    (row,) = [line for line in out.splitlines() if "Spatial token (SAT) | ours" in line]
    assert [c.strip() for c in row.strip("|").split("|")][3] == "**95.00**"
    # Synthetic runs: the paper's ImageNet numbers shown for scale, no difference taken.
    code, out, err = report(capsys, tmp_path, "table5", "--dataset", "synthetic")
    assert "paper, ImageNet (other data)" in out and "Δ" not in out
    assert "wsolbench run attnmap --dataset synthetic" in err


def test_table8_frozen_column_pools_kshot_and_paper_rows(tmp_path):
    for k, gt in ((1, 40.0), (5, 50.0)):
        put(tmp_path, {"gt_known_loc": gt}, frozen=71.25, method="sat", freeze="d", kshot=k)

    table = build_table(load_specs()["table8"], RunIndex(Store(tmp_path).records()), ["cub"])
    d = table.long[(table.long.row == "d") & (table.long.source == "ours")].set_index("column")
    assert d.loc["frozen", "value"] == 71.25 and d.loc["frozen", "n"] == 2
    assert d.loc["k1", "value"] == 40.0 and d.loc["k5", "value"] == 50.0
    assert pd.isna(d.loc["k3", "value"]) and d.loc["k3", "n"] == 0
    paper = table.long[(table.long.row == "d") & (table.long.source == "paper")]
    assert paper.set_index("column").loc["frozen", "value"] == 71.0
    delta = table.long[(table.long.row == "d") & (table.long.source == "delta")]
    assert dict(zip(delta.column, delta.value.round(2), strict=True)) == {
        "frozen": 0.25,
        "k1": -53.8,
        "k5": -44.9,
    }
    assert {g["kshot"] for g in table.missing if g["freeze"] == "d"} == {3, 10, "full"}


def test_ablation_rows_are_told_apart_by_method_options(tmp_path):

    off = {"area_loss": False, "norm_loss": False, "gaussian": False}
    put(tmp_path, {"gt_known_loc": 60.0}, method="sat", dataset="imagenet", options=off)
    put(tmp_path, {"gt_known_loc": 70.0}, method="sat", dataset="imagenet")
    long = build_table(load_specs()["table2"], RunIndex(Store(tmp_path).records())).long
    ours = long[(long.source == "ours") & (long.column == "gt_known_loc")].set_index("row")
    assert ours.loc["a", "value"] == 60.0 and ours.loc["d", "value"] == 70.0
    assert ours.loc["b", "n"] == 0 and ours.loc["c", "n"] == 0


def _not_blank(path, size: tuple[int, int]) -> None:
    image = imread(path)
    assert image.shape[:2] == size
    grey = image[..., :3].mean(axis=2)
    assert (grey < 0.5).mean() > 0.005  # ink: axes, labels, boxes, lines
    assert len(np.unique(image[..., :3].reshape(-1, 3), axis=0)) > 50  # not one flat colour


def test_figures_are_written_and_not_blank(tmp_path, capsys):
    for seed in range(3):
        for method, base in (("sat", 60.0), ("tscam", 40.0)):
            for k in (1, 5, "full"):
                gt = base + seed + (0 if k == "full" else -10)
                curve = {"thresholds": THRESHOLDS.tolist(),
                         "test_gt_known": (gt * np.sin(np.pi * THRESHOLDS)).tolist()}  # fmt: skip
                put(tmp_path, {"gt_known_loc": gt}, curve=curve, method=method, kshot=k, seed=seed)
    for lam in (0.1, 0.25, 0.4):
        put(tmp_path, {"gt_known_loc": 50 + 10 * lam}, method="sat", **{"lambda": lam})
    for bs in (64, 128):
        put(tmp_path, {"gt_known_loc": 55.0}, method="sat", batch_size=bs)

    code, out, err = report(capsys, tmp_path, "fig8", "--dataset", "cub", "--out",
                            str(tmp_path / "f8.png"))  # fmt: skip
    assert code == 0 and out.strip() == f"wrote {tmp_path / 'f8.png'}"
    _not_blank(tmp_path / "f8.png", (432, 780))
    assert "wsolbench run sat --dataset cub --kshot 3" in err
    assert "wsolbench run tscam --dataset cub --kshot 10" in err

    code, out, _ = report(capsys, tmp_path, "fig7", "--dataset", "cub", "--out",
                          str(tmp_path / "f7.png"))  # fmt: skip
    _not_blank(tmp_path / "f7.png", (432, 780))
    code, out, _ = report(capsys, tmp_path, "fig4", "--dataset", "cub", "--format", "pdf",
                          "--out", str(tmp_path / "f4.pdf"))  # fmt: skip
    assert code == 0 and (tmp_path / "f4.pdf").read_bytes()[:5] == b"%PDF-"
    code, *_ = report(capsys, tmp_path, "fig4", "--dataset", "cub", "--out",
                      str(tmp_path / "f4.png"))  # fmt: skip
    _not_blank(tmp_path / "f4.png", (432, 1080))


def test_report_input_errors_are_one_line(tmp_path, capsys):
    for args, message in (
        (["table1", "--format", "png"], "--format png is for figures"),
        (["fig8", "--format", "csv"], "written as png or pdf, not csv"),
        (["table1", "--dataset", "nope"], "nope"),
        (["table9"], "invalid choice: 'table9'"),
    ):
        code, out, err = report(capsys, tmp_path, *args)
        assert code == 2 and out == "", args
        assert len(err.strip().splitlines()) == 1 and message in err, err


def test_benchmark_table_sets_our_runs_beside_its_columns(tmp_path, capsys):
    """``report benchmark``: a run of ACoL on CUB with the benchmark's VGG16 lands in the
    CUB VGG16 MaxBoxAccV2 cell (two seeds pooled: their mean), and PxAP columns are
    OpenImages' only."""
    for seed, value in ((0, 60.0), (1, 62.5)):
        put(tmp_path, {"maxboxaccv2": value}, method="acol", backbone="vgg16", seed=seed)
    code, out, err = report(
        capsys, tmp_path, "benchmark", "--format", "csv", "--dataset", "imagenet,cub,openimages"
    )
    assert code == 0, err
    table = pd.read_csv(__import__("io").StringIO(out))
    cell = table[(table.row == "acol") & (table.source == "ours") & (table.dataset == "cub")]
    values = dict(zip(cell.column, cell.value, strict=True))
    assert values["vgg_box"] == 61.25 and pd.isna(values["inc_box"])
    assert set(table[table.dataset == "openimages"].column) == {"vgg_pxap", "inc_pxap", "res_pxap"}
    assert "wsolbench run spg --dataset cub --backbone inception_v3 --data-root DATA" in err
    # With no --dataset: the datasets the store has runs on (CUB alone here).
    code, out, err = report(capsys, tmp_path, "benchmark", "--format", "csv")
    assert set(pd.read_csv(__import__("io").StringIO(out)).dataset) == {"cub"}
    assert err.startswith("datasets: cub (those with runs in the store")


def test_paper_numbers_match_the_specs():
    for spec in load_specs().values():
        paper = paper_numbers(spec)
        if spec.kind != "table":
            assert not (PAPER / f"{spec.name}.csv").exists()
            continue
        assert set(paper.column) <= {c.key for c in spec.columns}, spec.name
        assert set(paper.dataset) <= set(spec.datasets), spec.name
        assert (paper.table == f"Table {spec.name[5:]}").all()
        if spec.name == "benchmark":  # its numbers are an image here: none on record yet
            assert paper.empty
            continue
        measured = {r.key for r in spec.rows if not r.paper_only}
        assert measured - {"cam"} <= set(paper.row), spec.name  # CAM: the paper's is VGG16
    t1 = paper_numbers(load_specs()["table1"]).set_index(["row", "dataset", "column"]).value
    assert (
        t1["sat", "cub", "gt_known_loc"] == 98.45
        and t1["isic_r50", "imagenet", "top1_loc"] == 59.61
    )
    assert ("fam_incv3", "cub", "top5_loc") not in t1.index  # "—" in the paper


@pytest.mark.parametrize("name", [n for n, s in load_specs().items()])
def test_builtin_sweep_makes_every_cell_of_its_spec(name, empty_datasets):
    spec = load_specs()[name]
    for ds in spec.datasets:
        runs = load_sweep(spec.sweep, {"dataset": ds, "pretrained": "none"}).runs
        made = {_key(p.cfg.identity()) for p in runs}
        for row in spec.rows or [None]:
            if row is not None and row.paper_only:
                continue
            for col in spec.columns:
                for cat in spec.panels if spec.kind == "box" else [None]:
                    if col.paper_only or col.free or spec.kind == "line" or not col.on(ds):
                        continue
                    given = {"dataset": ds, **spec.base, **(row.settings if row else {})}
                    given.update({**col.settings, **(cat.settings if cat else {})})
                    assert _key(cell_config(given)) in made, (name, ds, given)


def _key(identity: dict) -> str:
    pooled = ("seed", "weights_sha256", "data_sha256")
    return str(sorted((k, str(v)) for k, v in identity.items() if k not in pooled))


def test_grid_list_and_per_dataset_scale_down_fig4_and_fig8(empty_datasets):
    fig4 = load_sweep("fig4", {"dataset": "synthetic"})
    pairs = [(p.cfg["lambda"], p.cfg["batch_size"]) for p in fig4.runs]
    # lambda 0.15 with batch 64 is the synthetic default, made once for both panels
    assert pairs == [(0.05, 64), (0.1, 64), (0.15, 64), (0.25, 64), (0.35, 64),
                     (0.15, 16), (0.15, 32), (0.15, 128)]  # fmt: skip
    assert len(load_sweep("fig8", {"pretrained": "none"}).runs) == 2 * 2 * 5 * 10
    small = load_sweep("fig8", {"dataset": "synthetic"}).runs
    assert len(small) == 2 * 5 * 3 and {p.cfg["seed"] for p in small} == {0, 1, 2}


def test_runs_from_different_weights_are_never_pooled(tmp_path, empty_datasets):
    weights = tmp_path / "deit_s.pth"
    weights.write_bytes(b"weights")
    (run,) = load_sweep("table7", {"dataset": "cub", "pretrained": str(weights)}).runs
    assert run.cfg["pretrained"] == str(weights)
    assert run.cfg["weights_sha256"] == hashlib.sha256(b"weights").hexdigest()
    store = tmp_path / "store"
    put(store, {"gt_known_loc": 90.0}, method="sat", seed=0, weights_sha256="a" * 64)
    put(store, {"gt_known_loc": 92.0}, method="sat", seed=1, weights_sha256="a" * 64)
    put(store, {"gt_known_loc": 10.0}, method="sat", seed=2, weights_sha256="b" * 64)
    index = RunIndex(Store(store).records())
    long = build_table(load_specs()["table7"], index).long
    ours = long[(long.source == "ours") & (long.column == "gt_known_loc")]
    assert list(ours.value) == [91.0]  # seeds 0 and 1; seed 2 started elsewhere
    assert index.weights_used == {"a" * 64} and index.weights_left_out == {"b" * 64}
