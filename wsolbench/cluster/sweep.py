"""Running sweeps through submitit: SLURM job arrays, local processes, or in-process.

A sweep's bookkeeping lives in ``<results>/.sweeps/<name>/``: ``jobs.jsonl`` (one
line per submitted run: run id, executor, job id, log) and submitit's ``logs/``.
Whether a run is done is read from the store itself (``record.json``), so finished
work is never submitted twice and no shared index can be corrupted."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import submitit
from filelock import FileLock
from submitit.core.utils import FailedJobError

from wsolbench.cluster.profiles import resolve_profile, slurm_parameters
from wsolbench.cluster.sweepfile import Sweep
from wsolbench.cluster.task import RunTask
from wsolbench.core.errors import UserError
from wsolbench.core.progress import say
from wsolbench.core.store import Store, last_line, read_jobs
from wsolbench.reporting.runs import SETTINGS, runs_frame, seed_means
from wsolbench.train.plan import Plan

# sacct states, as wsolbench reports them.
SLURM_STATES = {
    "PENDING": "pending",
    "REQUEUED": "pending",
    "REQUEUE_HOLD": "pending",
    "REQUEUE_FED": "pending",
    "CONFIGURING": "pending",
    "SUSPENDED": "pending",
    "RUNNING": "running",
    "COMPLETING": "running",
    "UNKNOWN": "pending",  # sacct has not seen a just-submitted job yet
}
IN_FLIGHT = ("pending", "running")


@dataclass
class RunState:
    run_id: str
    state: str  # done, running, pending, failed, interrupted, not submitted
    job_id: str | None = None
    log: str | None = None
    error: str | None = None


def sweep_dir(store: Store, sweep: Sweep) -> Path:
    return store.root / ".sweeps" / sweep.name


def submitted_jobs(store: Store, sweep: Sweep) -> dict[str, dict]:
    """The latest submission of each run id."""
    return read_jobs(sweep_dir(store, sweep) / "jobs.jsonl")


def append_jobs(store: Store, sweep: Sweep, entries: list[dict]) -> None:
    folder = sweep_dir(store, sweep)
    folder.mkdir(parents=True, exist_ok=True)
    # Two submissions of one sweep may finish at once: append under a lock.
    with FileLock(folder / "jobs.jsonl.lock"), open(folder / "jobs.jsonl", "a") as f:
        f.write("".join(json.dumps(e) + "\n" for e in entries))
        f.flush()
        os.fsync(f.fileno())


def _scheduler_states(jobs: dict[str, dict]) -> dict[str, str]:
    """job id -> our state, one sacct call for all SLURM jobs."""
    states: dict[str, str] = {}
    slurm_ids = [e["job_id"] for e in jobs.values() if e["executor"] == "slurm"]
    if slurm_ids:
        watcher = submitit.SlurmJob.watcher
        for job_id in slurm_ids:
            watcher.register_job(job_id)
        watcher.update()
        for job_id in slurm_ids:
            raw = watcher.get_state(job_id, mode="cache").split()[0]
            states[job_id] = SLURM_STATES.get(raw, "failed")
    for e in jobs.values():
        # A job that wrote its result but no record failed; a local job's id is its PID.
        if Path(e["result"]).exists() or (e["executor"] == "local" and not _alive(e["job_id"])):
            states[e["job_id"]] = "failed"
        elif e["executor"] == "local":
            states[e["job_id"]] = "running"
    return states


def _alive(pid: str) -> bool:
    try:
        os.kill(int(pid), 0)
    except (OSError, ValueError):
        return False
    return True


def status(sweep: Sweep, store: Store) -> list[RunState]:
    jobs = submitted_jobs(store, sweep)
    done = {r for r in jobs if (store.run_dir(r) / "record.json").is_file()}
    # Only runs without a record need the scheduler (one sacct call for those).
    scheduler = _scheduler_states({r: e for r, e in jobs.items() if r not in done})
    out = []
    for p in sweep.runs:
        run_id = p.cfg.run_id
        job = jobs.get(run_id, {})
        disk, error = store.disk_state(run_id)
        if disk in ("done", "corrupt"):
            state = disk
        elif job.get("job_id") in scheduler:
            state = scheduler[job["job_id"]]
        else:
            state = disk or "not submitted"
        log = job.get("log")
        message = None
        if state == "failed":
            message = error or (last_line(Path(log)) if log else None)
            log = log or str(store.run_dir(run_id) / "error.txt")
        out.append(RunState(run_id, state, job.get("job_id"), log, message))
    return out


def make_executor(kind: str, folder: Path, profile: dict, name: str) -> submitit.Executor:
    logs = folder / "logs" / "%j"
    if kind == "slurm":
        ex = submitit.SlurmExecutor(folder=logs)
        ex.update_parameters(**slurm_parameters(profile, f"wsolbench-{name}"))
    elif kind == "local":
        ex = submitit.LocalExecutor(folder=logs)
        ex.update_parameters(timeout_min=profile["time_min"])
    else:
        ex = submitit.DebugExecutor(folder=logs)
    return ex


def submit(
    sweep: Sweep,
    store: Store,
    kind: str,
    profile_name: str | None = None,
    parallelism: int | None = None,
) -> tuple[list[submitit.Job], list[RunState]]:
    """Submit every run that is neither finished nor in flight. SLURM gets one job
    array and this returns at once; local and debug runs are waited for."""
    profile = resolve_profile(profile_name or sweep.profile, sweep.slurm, str(sweep.path))
    before = status(sweep, store)
    todo = [
        p for p, s in zip(sweep.runs, before, strict=True) if s.state not in ("done", *IN_FLIGHT)
    ]
    if not todo:
        return [], before
    ex = make_executor(kind, sweep_dir(store, sweep), profile, sweep.name)
    root, threads = str(store.root.resolve()), profile["cpus_per_task"]
    # submitit makes the folder's own %j pattern as a directory: empty, never used.
    pattern = sweep_dir(store, sweep) / "logs" / "%j"
    try:
        if kind == "local":
            fixed = threads if (profile_name or sweep.profile) else None
            width = local_width(len(todo), parallelism, fixed)
            jobs = run_local(ex, todo, store, sweep, width)
        else:
            n = len(todo)
            jobs = ex.map_array(
                RunTask(), [p.cfg.to_dict() for p in todo], [root] * n, [threads] * n
            )
            _log_jobs(store, sweep, kind, todo, jobs)
    except (FailedJobError, OSError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserError(f"{kind} executor: submission failed ({first})") from None
    if kind == "debug":
        for j in jobs:
            _outcome(j)
    if pattern.is_dir() and not any(pattern.iterdir()):
        pattern.rmdir()
    return jobs, before


def local_width(runs: int, parallelism: int | None, threads: int | None) -> tuple[int, int]:
    """(runs at once, threads each). A profile's ``cpus_per_task`` fixes the threads
    (sums depend on them) and as many runs as the cores allow run at once; without one,
    as many runs as there are cores (or ``parallelism``) share them."""
    cores = os.cpu_count() or 1
    if threads:
        return parallelism or max(1, cores // threads), threads
    width = max(1, min(parallelism or cores, runs))
    return width, max(1, cores // width)


def run_local(
    ex: submitit.Executor,
    todo: list,
    store: Store,
    sweep: Sweep,
    width_threads: tuple[int, int],
) -> list[submitit.Job]:
    """Start the runs as local processes, ``width`` at a time, and wait for them; a
    line when each starts and when each ends, with its id and numbers."""
    width, threads = width_threads
    say(f"sweep {sweep.name}: {len(todo)} runs, {width} at a time, {threads} threads each")
    root, jobs, running = str(store.root.resolve()), [], {}
    for i, p in enumerate(todo, 1):  # submitit's local executor would start every job at once
        while len(running) >= width:
            _report_finished(running, store)
            time.sleep(0.2)
        job = ex.submit(RunTask(), p.cfg.to_dict(), root, threads)
        _log_jobs(store, sweep, "local", [p], [job])
        say(f"start {i}/{len(todo)}: {p.cfg.run_id} (log {job.paths.stderr})")
        jobs.append(job)
        running[job] = (p.cfg.run_id, time.perf_counter())
    while running:
        _report_finished(running, store)
        time.sleep(0.2)
    return jobs


SHOWN = ("top1_cls", "gt_known_loc", "maxboxaccv2", "pxap")


def _report_finished(running: dict, store: Store) -> None:
    for job in [j for j in running if j.done()]:
        run_id, t0 = running.pop(job)
        record = store.record(run_id)
        took = f"{time.perf_counter() - t0:.0f} s"
        if record is None:
            say(f"failed: {run_id} after {took}; see {job.paths.stderr}")
            continue
        numbers = ", ".join(f"{k} {record.metrics[k]:.2f}" for k in SHOWN if k in record.metrics)
        say(f"done: {run_id} in {took}: {numbers}")


def _log_jobs(store: Store, sweep: Sweep, kind: str, runs: list, jobs: list) -> None:
    now = datetime.now(UTC).isoformat(timespec="seconds")
    entries = [
        {
            "run_id": p.cfg.run_id,
            "executor": kind,
            "job_id": str(j.job_id),
            "log": str(j.paths.stderr),
            "result": str(j.paths.result_pickle),
            "submitted": now,
        }
        for p, j in zip(runs, jobs, strict=True)
    ]
    append_jobs(store, sweep, entries)


def _outcome(job: submitit.Job) -> bool:
    try:
        job.result()
    except Exception:  # the task's error is in its run folder and its log
        return False
    return True


def wait(jobs: list[submitit.Job], poll_s: float = 0.5) -> None:
    """Until every job has finished (requeued ones included)."""
    left = list(jobs)
    while left:
        left = [j for j in left if not j.done()]
        if left:
            time.sleep(poll_s)


def _settings(sweep: Sweep, run: Plan) -> dict[str, Any]:
    """The run's settings on the sweep's axes; numbers as written (``%g``), so the
    table's two decimals never round 1e-4 and 5e-4 to the same 0.00."""
    cfg = run.cfg
    axes = {a: f"{cfg[a]:g}" if isinstance(cfg[a], float) else cfg[a] for a in sweep.axes}
    return {"method": cfg["method"], "dataset": cfg["dataset"], **axes}


def state_frame(sweep: Sweep, states: list[RunState]) -> pd.DataFrame:
    """One row per run: its settings, state, job and (for failures) log and last error."""
    rows = []
    for run, s in zip(sweep.runs, states, strict=True):
        row = {"run_id": s.run_id, **_settings(sweep, run), "state": s.state, "job": s.job_id}
        if s.state == "failed":
            row.update(log=s.log, error=s.error)
        rows.append(row)
    return pd.DataFrame(rows).dropna(axis=1, how="all")


def collect_frame(sweep: Sweep, store: Store, mean: bool = False, ci: bool = False) -> pd.DataFrame:
    """The finished runs of the sweep with their metrics, in sweep order; with
    ``mean``, one row per setting with each metric's mean ± sd over the seeds
    (``ci``: mean and 95% t-interval)."""
    records = [r for p in sweep.runs if (r := store.record(p.cfg.run_id)) is not None]
    frame = runs_frame(records)
    keep = ["run_id", "method", "dataset", *[a for a in sweep.axes if a in frame]]
    extra = [a for a in sweep.axes if a not in frame]  # axes the standard table lacks
    for a in extra:
        frame[a] = [r.config.get(a) for r in records]
    metrics = [c for c in frame.columns if c not in SETTINGS and c != "run_id"]
    frame = frame[[*keep, *extra, *metrics]].dropna(axis=1, how="all")
    if mean:
        keys = [c for c in ("method", "dataset", *sweep.axes, "weights") if c in frame]
        return seed_means(frame, [k for k in dict.fromkeys(keys) if k != "seed"], ci)
    return frame
