"""Sweeps on a real one-node SLURM cluster (slurm/cluster.sh): a job array runs and
is collected, re-submitting skips finished runs, failures are reported, and a
preempted task is requeued and resumes from its checkpoint to the same metrics."""

from __future__ import annotations

import os
import shutil
import subprocess
import time

import pytest
import torch
import yaml
from conftest import REPO

from wsolbench.cluster.sweep import status, submitted_jobs
from wsolbench.cluster.sweepfile import load_sweep
from wsolbench.core.store import Store

# One cluster for the module: its tests run on the same xdist worker (--dist loadgroup).
pytestmark = pytest.mark.xdist_group("slurm")

CLUSTER = REPO / "slurm" / "cluster.sh"
PROFILE = str(REPO / "slurm" / "test.yaml")


@pytest.fixture(scope="module")
def slurm(request):
    """A running cluster: started here (and stopped after) unless one already runs. The
    stop (several seconds of daemons shutting down) runs while the worker's other tests
    do, and the session waits for it at its end."""
    if shutil.which("sbatch") is None:
        pytest.skip("SLURM is not installed here; `slurm/cluster.sh install` installs it (CI does)")
    if os.geteuid() != 0:
        pytest.skip("the test cluster's daemons need root")
    state = os.environ.get("WSOLBENCH_SLURM_DIR", "/tmp/wsolbench-slurm")
    before = subprocess.run([CLUSTER, "status"], capture_output=True, text=True).stdout
    started = subprocess.run([CLUSTER, "start"], capture_output=True, text=True, timeout=300)
    assert started.returncode == 0, started.stderr
    old = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = f"{state}/slurm.conf"  # for sbatch/sacct here and in tests' CLIs
    yield os.environ["SLURM_CONF"]
    if old is None:
        del os.environ["SLURM_CONF"]
    else:
        os.environ["SLURM_CONF"] = old
    if "slurmctld: stopped" in before:
        stopping = subprocess.Popen([CLUSTER, "stop"])
        request.config.add_cleanup(lambda: _stopped(stopping))


def _stopped(proc: subprocess.Popen) -> None:
    if proc.wait(timeout=120) != 0:
        raise RuntimeError(f"{CLUSTER} stop failed (exit {proc.returncode})")


def sacct(*args: str) -> list[list[str]]:
    out = subprocess.run(
        ["sacct", "-n", "-P", "-X", *args], capture_output=True, text=True, check=True
    ).stdout
    return [line.split("|") for line in out.splitlines()]


def final_states(job_id: str, timeout_s: float = 60) -> dict[str, str]:
    """Each task's state once SLURM has recorded its end: submitit sees a task's result
    file before the task's epilog is accounted, so sacct may still say RUNNING."""
    deadline = time.monotonic() + timeout_s
    while True:
        states = dict(sacct("-j", job_id, "-o", "JobID,State"))
        unsettled = {"PENDING", "RUNNING", "COMPLETING"} & set(states.values())
        if not unsettled or time.monotonic() > deadline:
            return states
        time.sleep(0.5)


ARRAY = """name: array
method: sat
dataset: [synthetic, cub]
settings: {epochs: 1, pretrained: none, eval_split: val}
grid:
  kshot: [1, 2]
  seed: [0]
per_dataset:
  cub: {grid: {kshot: [1]}}
"""


@pytest.mark.slow
def test_job_array_runs_collects_and_skips_on_resubmit(slurm, tmp_path, cli, monkeypatch):
    (tmp_path / "array.yaml").write_text(ARRAY)
    # An empty CUB folder: the runs plan (no annotation files to digest) and the CUB
    # run fails in its task, where the files are read (one is enough: each failing task
    # is a process that imports torch).
    (tmp_path / "no-data" / "cub").mkdir(parents=True)
    env = {"WSOLBENCH_DATA": str(tmp_path / "no-data")}
    monkeypatch.setenv("WSOLBENCH_DATA", env["WSOLBENCH_DATA"])  # for load_sweep here too
    args = ("sweep", "array.yaml", "--executor", "slurm", "--profile", PROFILE)
    code, out, err = cli(*args, "--wait", env=env)
    assert code == 1, err  # some runs failed
    assert "3 runs submitted (slurm)" in err and "3 runs: 2 done, 1 failed" in out

    sweep, store = load_sweep(str(tmp_path / "array.yaml")), Store(tmp_path / "results")
    jobs = submitted_jobs(store, sweep)
    array_ids = {j["job_id"].split("_")[0] for j in jobs.values()}
    assert len(array_ids) == 1 and len(jobs) == 3  # one array of 3 tasks
    states = final_states(array_ids.pop())
    assert sorted(states.values()) == ["COMPLETED"] * 2 + ["FAILED"]
    for s in status(sweep, store):
        cub = s.run_id.startswith("sat-cub")
        assert s.state == ("failed" if cub else "done")
        if cub:
            assert "no-data" in s.error and os.path.isfile(s.log)
    records = [store.record(p.cfg.run_id) for p in sweep.runs[:2]]
    assert [(r.config["kshot"], r.seed) for r in records] == [(1, 0), (2, 0)]

    code, out, err = cli("sweep", "collect", "array.yaml", "--format", "csv")
    assert code == 0 and "2 of 3 runs finished" in err
    assert [line.split(",")[0] for line in out.splitlines()[1:]] == [r.run_id for r in records]

    # Re-submitting the finished runs submits nothing: no job, no new line in jobs.jsonl.
    (tmp_path / "array.yaml").write_text(ARRAY.replace("[synthetic, cub]", "[synthetic]"))
    code, out, err = cli(*args, "--wait", env=env)
    assert code == 0 and "0 runs submitted (slurm), 2 already done" in err
    log = store.root / ".sweeps" / "array" / "jobs.jsonl"
    assert len(log.read_text().splitlines()) == 3


# Scored on val, so the requeued task and the reference spend a third of the scoring.
# The sweep and the reference's run config are written from the same settings.
LONG = {"epochs": 6, "kshot": 20, "batch_size": 8, "seed": 5, "eval_split": "val"}


@pytest.mark.slow
def test_preempted_task_requeues_and_resumes_to_the_same_metrics(slurm, tmp_path, cli):
    sweep_file = {"name": "long", "method": "sat", "settings": LONG}
    (tmp_path / "long.yaml").write_text(yaml.safe_dump(sweep_file))
    code, out, err = cli("sweep", "long.yaml", "--executor", "slurm", "--profile", PROFILE)
    assert code == 0, err
    sweep, store = load_sweep(str(tmp_path / "long.yaml")), Store(tmp_path / "results")
    run_id = sweep.runs[0].cfg.run_id
    job_id = submitted_jobs(store, sweep)[run_id]["job_id"]
    checkpoint = store.run_dir(run_id) / "checkpoint.pt"
    deadline = time.time() + 120
    while not checkpoint.exists():  # one epoch done
        assert time.time() < deadline and store.record(run_id) is None
        time.sleep(0.1)
    # What SLURM sends before preempting a job (and at its time limit).
    subprocess.run(["scancel", "--signal=USR2", job_id], check=True)

    # Meanwhile the reference: the same run, uninterrupted, in this process at the
    # profile's one thread (a task's cpus_per_task sets torch's threads, and sums depend
    # on them).
    ref, threads = tmp_path / "ref", torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        (tmp_path / "ref.yaml").write_text(yaml.safe_dump({"method": "sat", **LONG}))
        code, _, err = cli("run", "--config", "ref.yaml", "--results", str(ref))
    finally:
        torch.set_num_threads(threads)
    assert code == 0, err
    deadline = time.time() + 240
    while (attempts := [s for _, s in sacct("-D", "-j", job_id, "-o", "JobID,State")])[-1:] != [
        "COMPLETED"
    ]:
        assert time.time() < deadline, (attempts, status(sweep, store))
        time.sleep(1)
    assert attempts == ["REQUEUED", "COMPLETED"]

    record, reference = store.record(run_id), Store(ref).record(run_id)
    assert record.resumed_from_epoch >= 1 and reference.resumed_from_epoch == 0
    assert record.history == reference.history
    assert record.metrics == reference.metrics
    assert record.threshold == reference.threshold
