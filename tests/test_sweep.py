"""Sweep files, local execution, status, collect and concurrent writers to one store
(no cluster needed; tests/test_slurm.py runs the same sweeps on a real SLURM)."""

from __future__ import annotations

import json
import multiprocessing as mp

import pandas as pd
import pytest

from wsolbench.cli import main
from wsolbench.cluster.sweep import append_jobs, status, submitted_jobs
from wsolbench.cluster.sweepfile import load_sweep
from wsolbench.core.store import Store, write_json

# Scored on val (a third of the scoring) in test's place, as a tuning trial is.
TINY = (
    "name: tiny\nmethod: sat\nsettings: {epochs: 1, kshot: 1, eval_split: val}\n"
    "grid:\n  seed: [0, 1]\n"
)


def write(tmp_path, text, name="s.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_grid_expands_to_every_combination_with_stable_ids(tmp_path):
    text = "method: [sat, cam]\nsettings: {epochs: 2}\ngrid:\n  kshot: [1, 5]\n  seed: [0, 1, 2]\n"
    sweep = load_sweep(write(tmp_path, text))
    assert sweep.name == "s" and sweep.axes == ["kshot", "seed"]
    combos = [(p.cfg["method"], p.cfg["kshot"], p.cfg["seed"]) for p in sweep.runs]
    assert combos[:3] == [("sat", 1, 0), ("sat", 1, 1), ("sat", 1, 2)] and len(combos) == 12
    assert all(p.cfg["epochs"] == 2 and p.cfg["dataset"] == "synthetic" for p in sweep.runs)
    again = load_sweep(write(tmp_path, text))
    assert [p.cfg.run_id for p in again.runs] == [p.cfg.run_id for p in sweep.runs]
    changed = load_sweep(write(tmp_path, text.replace("epochs: 2", "epochs: 3")))
    assert not {p.cfg.run_id for p in changed.runs} & {p.cfg.run_id for p in sweep.runs}


def test_dataset_override_and_no_grid(tmp_path, empty_datasets):
    sweep = load_sweep(write(tmp_path, "method: sat\n"), {"dataset": "cub", "pretrained": "none"})
    assert [p.cfg["dataset"] for p in sweep.runs] == ["cub"]
    assert sweep.runs[0].cfg["epochs"] == 30  # CUB recipe of the authors, from the plugin


BAD_SWEEPS = [
    ("method: sat\ncolour: red\n", "s.yaml: unknown key 'colour'"),
    ("settings: {epochs: 1}\n", "s.yaml: method: missing"),
    ("method: sat\ngrid:\n  seed: []\n", "s.yaml: grid.seed: empty list"),
    ("method: sat\ngrid: {}\n", "s.yaml: grid: empty"),
    ("method: sat\ngrid:\n  seed: 3\n", "s.yaml: grid.seed: must be a list"),
    ("method: sat\ngrid:\n  colour: [1]\n", "s.yaml: grid.colour: not a run setting"),
    ("method: sat\ngrid:\n  lambda: [0.2, 2.0]\n", "s.yaml: grid: lambda: must be in (0.0, 1.0)"),
    ("method: sat\ngrid:\n  seed: [1, 1]\n", "s.yaml: grid.seed: value 1 appears twice"),
    ("method: sat\nsettings: {epoch: 3}\n", "s.yaml: settings: epoch: unknown key"),
    ("method: sat\nsettings: {seed: 1}\ngrid:\n  seed: [2]\n", "s.yaml: seed: both in"),
    ("method: [sat, nope]\n", "s.yaml: run method=nope, dataset=synthetic: unknown method"),
    ("method: sat\ngrid:\n  freeze: [a, z]\n", "run method=sat, dataset=synthetic, freeze=z"),
    ("method: sat\nslurm: {gpus: 2}\n", "s.yaml: slurm: gpus: unknown profile field"),
    ("method: sat\nslurm: {time_min: 0}\n", "s.yaml: slurm: time_min: must be >= 1"),
    ("method: sat\nprofile: nowhere\n", "profile 'nowhere': no slurm/nowhere.yaml"),
    ("method: sat\nname: ../up\n", "s.yaml: name: '../up' must be letters"),
    ("method: sat\ngrid: [1\n", "s.yaml: line 3 is not valid YAML"),
    ("method: sat\ngrid: [{seed: [1]}, {}]\n", "s.yaml: grid: empty"),
    ("method: sat\ngrid: [3]\n", "s.yaml: grid: must be a mapping (or a list of them)"),
    ("method: sat\ngrid:\n  options: [{nope: 1}]\n", "options: unknown option 'nope'"),
    ("method: sat\nper_dataset: [1]\n", "s.yaml: per_dataset: must map dataset names"),
    (
        "method: sat\nper_dataset: {synthetic: {method: cam}}\n",
        "s.yaml: per_dataset.synthetic: only settings and grid may be set",
    ),
    (
        "method: sat\nper_dataset: {synthetic: {grid: {seed: []}}}\n",
        "s.yaml: per_dataset.synthetic.grid.seed: empty list",
    ),
]


@pytest.mark.parametrize("text,message", BAD_SWEEPS, ids=[m[:30] for _, m in BAD_SWEEPS])
def test_bad_sweep_is_one_line_exit_2_and_submits_nothing(tmp_path, capsys, text, message):
    path = write(tmp_path, text)
    code = main(["sweep", path, "--executor", "local", "--results", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("wsolbench: error: ") and err.count("\n") == 1
    assert message in err, err
    assert not (tmp_path / "r").exists()


def test_missing_sweep_and_bad_flags(tmp_path, capsys):
    assert main(["sweep", str(tmp_path / "none.yaml")]) == 2
    assert "none.yaml: sweep file not found" in capsys.readouterr().err
    path = write(tmp_path, TINY)
    assert main(["sweep", "status", path, path]) == 2
    assert "sweep status takes one sweep file" in capsys.readouterr().err
    assert main(["sweep", path, "--parallelism", "0"]) == 2
    assert main(["sweep", path, "--executor", "pbs"]) == 2


@pytest.mark.slow
def test_local_sweep_runs_skips_and_collects(tmp_path, cli):
    path = write(tmp_path, TINY)
    code, out, err = cli("sweep", path, "--dry-run")
    assert code == 0 and "2 runs: 2 not submitted" in out
    code, out, err = cli("sweep", path, "--executor", "local", "--parallelism", "2")
    assert code == 0, err
    assert "2 runs submitted (local), 0 already done" in err and "2 runs: 2 done" in out
    sweep, store = load_sweep(path), Store(tmp_path / "results")
    records = [store.record(p.cfg.run_id) for p in sweep.runs]
    # Each run's start and end with its id and numbers; both at once on the cores.
    assert f"sweep {sweep.name}: 2 runs, 2 at a time" in err
    for i, r in enumerate(records, 1):
        assert f"start {i}/2: {r.run_id} (log " in err
        gt = f"gt_known_loc {r.metrics['gt_known_loc']:.2f}"
        assert any(ln.startswith(f"done: {r.run_id} in ") and gt in ln for ln in err.splitlines())
    assert not (tmp_path / "results" / ".sweeps" / sweep.name / "logs" / "%j").exists()
    assert [r.seed for r in records] == [0, 1]
    assert all(r.resumed_from_epoch == 0 for r in records)

    code, out, err = cli("sweep", path, "--executor", "local")
    assert code == 0 and "0 runs submitted (local), 2 already done" in err
    assert "nothing to submit" in out
    assert len(submitted_jobs(store, sweep)) == 2
    assert all(s.state == "done" for s in status(sweep, store))

    code, out, err = cli("sweep", "collect", path, "--format", "csv", "--out", "t.csv")
    assert code == 0 and "2 of 2 runs finished" in err
    table = pd.read_csv(tmp_path / "t.csv")
    assert list(table["run_id"]) == [r.run_id for r in records]
    assert list(table["seed"]) == [0, 1]
    expect = [round(r.metrics["gt_known_loc"], 2) for r in records]
    assert list(table["GT-known Loc"]) == pytest.approx(expect, abs=0.006)


@pytest.mark.slow
def test_failed_run_is_reported_and_does_not_block_the_rest(tmp_path, cli, monkeypatch):
    # The CUB run fails inside its task (an empty data folder: its annotation files are
    # missing when the task loads them); the synthetic one finishes.
    settings = "settings: {epochs: 1, kshot: 1, pretrained: none, eval_split: val}\n"
    text = "method: sat\ndataset: [cub, synthetic]\n" + settings
    path = write(tmp_path, text)
    (tmp_path / "no-data" / "cub").mkdir(parents=True)
    env = {"WSOLBENCH_DATA": str(tmp_path / "no-data")}
    monkeypatch.setenv("WSOLBENCH_DATA", env["WSOLBENCH_DATA"])  # for load_sweep here too
    code, out, err = cli("sweep", path, "--executor", "local", "--parallelism", "1", env=env)
    assert code == 1, err
    assert "2 runs: 1 failed, 1 done" in out or "2 runs: 1 done, 1 failed" in out
    sweep, store = load_sweep(path), Store(tmp_path / "results")
    failed, done = status(sweep, store)
    assert (failed.state, done.state) == ("failed", "done")
    error = store.run_dir(failed.run_id) / "error.txt"
    assert "no-data" in failed.error and "UserError" in error.read_text()
    assert failed.log.endswith("_log.err") and "no-data" in open(failed.log).read()
    code, out, _ = cli("sweep", "status", path, env=env)
    assert code == 0 and failed.log in out and "failed" in out


def _writer(root: str, sweep, i: int, barrier) -> None:
    store = Store(root)
    record = {
        "run_id": f"run-{i:02d}",
        "method": "sat",
        "dataset": "synthetic",
        "config": {},
        "metrics": {"gt_known_loc": float(i)},
        "notes": ["x" * 50000],
    }
    barrier.wait()
    write_json(store.run_dir(record["run_id"]) / "record.json", record)
    # All 50 race on one file (named as its folder, as the store requires).
    write_json(store.run_dir("shared") / "record.json", {**record, "run_id": "shared"})
    append_jobs(store, sweep, [{"run_id": record["run_id"], "job_id": str(i)}])


def test_fifty_concurrent_writers_leave_fifty_intact_records(tmp_path):
    sweep = load_sweep(write(tmp_path, "method: sat\nname: race\n"))
    root = str(tmp_path / "results")
    ctx = mp.get_context("fork")
    barrier = ctx.Barrier(50)
    procs = [ctx.Process(target=_writer, args=(root, sweep, i, barrier)) for i in range(50)]
    for p in procs:
        p.start()
    store = Store(root)
    while any(p.is_alive() for p in procs):
        store.records()  # a reader never meets a torn file (json would raise)
    for p in procs:
        p.join()
        assert p.exitcode == 0
    assert len(store.records()) == 51
    assert all(store.record(f"run-{i:02d}").metrics["gt_known_loc"] == i for i in range(50))
    shared = store.record("shared")  # one writer's whole record: the last rename wins
    writer = store.record(f"run-{int(shared.metrics['gt_known_loc']):02d}")
    assert shared.metrics == writer.metrics and len(shared.notes[0]) == 50000
    lines = (tmp_path / "results/.sweeps/race/jobs.jsonl").read_text().splitlines()
    assert sorted(json.loads(line)["job_id"] for line in lines) == sorted(map(str, range(50)))
    assert not list((tmp_path / "results").rglob("*.tmp"))


def test_an_in_process_task_gives_the_callers_thread_count_back(tmp_path, monkeypatch):
    """A debug (in-process) task runs at the task's threads, then restores the caller's:
    a later run in the same process would otherwise train on another thread count (and
    sums depend on it). Here the task fails in its run (no CUB files), after planning."""
    import torch

    from wsolbench.cluster.task import RunTask
    from wsolbench.train.plan import plan

    (tmp_path / "no-data" / "cub").mkdir(parents=True)
    monkeypatch.setenv("WSOLBENCH_DATA", str(tmp_path / "no-data"))
    given = {"method": "sat", "dataset": "cub", "epochs": 1, "kshot": 1, "pretrained": "none"}
    config = plan(given).cfg.to_dict()
    before, seen = torch.get_num_threads(), []

    def execute(p, store):
        seen.append(torch.get_num_threads())
        raise RuntimeError("no CUB files")

    monkeypatch.setattr("wsolbench.train.runner.execute", execute)
    with pytest.raises(RuntimeError, match="no CUB files"):
        RunTask()(config, str(tmp_path / "results"), before + 2)
    assert seen == [before + 2] and torch.get_num_threads() == before
    (error,) = (tmp_path / "results").glob("sat-cub-*/error.txt")
    assert "RuntimeError: no CUB files" in error.read_text()
