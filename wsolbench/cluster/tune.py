"""``wsolbench tune``: the WSOL benchmark's fair comparison. Every method gets the
same budget of random trials over its own space; each trial trains on train and is
scored on val alone (``eval_split: val``: test is never scored for a trial); the
trial best on val by the benchmark's selection metric is chosen; only the choice is
then run on test, over several seeds. Trials and final runs are ordinary runs in the
results store, submitted through the sweep machinery (local processes, SLURM array
or in-process), so they resume and skip like any sweep. The search is a record of
its own: ``<store>/.tunes/<search id>.json``."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from wsolbench.cluster.sweep import submit, wait
from wsolbench.cluster.sweepfile import Sweep
from wsolbench.core.config import FIELDS, make_run_id
from wsolbench.core.errors import UserError
from wsolbench.core.registry import METHODS
from wsolbench.core.space import Dim, log, read_space, sample_trials
from wsolbench.core.store import Store, write_json
from wsolbench.train.plan import Plan, configure, plan

TUNES = ".tunes"


@dataclass
class TuneRequest:
    method: str
    dataset: str = "synthetic"
    budget: int = 8
    seeds: int = 3  # final runs on test
    seed: int = 0  # the search's: which trials are drawn
    space_file: str | None = None
    fixed: dict[str, Any] = field(default_factory=dict)  # settings of every trial (epochs)
    executor: str = "local"
    profile: str | None = None
    parallelism: int | None = None


def method_space(req: TuneRequest) -> dict[str, Dim]:
    """The learning rate log-uniform over a decade each side of the recipe's,
    then the method's own dimensions; or the ``--space`` file's."""
    if req.space_file:
        space = read_space(req.space_file)
    else:
        lr = configure({"method": req.method, "dataset": req.dataset, **req.fixed})[2].lr
        space = {"lr": log(lr / 10, lr * 10), **METHODS.get(req.method).search_space}
    options = METHODS.get(req.method).options
    for name in space:
        if name not in options and (name not in FIELDS or not FIELDS[name].identity):
            raise UserError(f"space: {name}: not a run setting or an option of {req.method}")
        if name in ("method", "dataset", "seed", "eval_split"):
            raise UserError(f"space: {name}: chosen by tune itself, not searched")
    return space


def run_given(req: TuneRequest, values: dict[str, Any], split: str, seed: int) -> dict:
    """A trial's or final run's settings: ``values`` split into settings and options."""
    options = METHODS.get(req.method).options
    given = {"method": req.method, "dataset": req.dataset, **req.fixed}
    given.update({k: v for k, v in values.items() if k not in options})
    given["options"] = {k: v for k, v in values.items() if k in options}
    return {**given, "eval_split": split, "seed": seed}


def _run_all(req: TuneRequest, store: Store, name: str, runs: list[Plan], path: Path) -> None:
    """Submit what is not done yet and wait for all of it."""
    sweep = Sweep(name=name, path=path, runs=runs, axes=[])
    jobs, _ = submit(sweep, store, req.executor, req.profile, req.parallelism)
    wait(jobs)


def selection_metric(records: list) -> str:
    """The benchmark's: MaxBoxAccV2 where there are boxes, else PxAP (OpenImages)."""
    return "maxboxaccv2" if any("maxboxaccv2" in r.metrics for r in records) else "pxap"


def choose(trials: list[dict]) -> dict:
    """The finished trial with the best val score; ties to the earlier trial."""
    done = [t for t in trials if t["val"] is not None]
    if not done:
        raise UserError("tune: no trial finished; see `wsolbench sweep status` logs in .sweeps/")
    return max(done, key=lambda t: (t["val"], -t["trial"]))


def trial_rows(plans: list[Plan], values: list[dict], store: Store) -> list[dict]:
    """Each trial's settings and val score, read from its record alone: a trial's
    record holds val metrics only (it never scored test)."""
    records = [store.record(p.cfg.run_id) for p in plans]
    for r in records:
        if r is not None and (r.protocol or {}).get("scored_split") != "val":
            raise UserError(f"run '{r.run_id}': not a val-scored trial; refusing to select on it")
    metric = selection_metric([r for r in records if r is not None])
    return [
        {
            "trial": i,
            "run_id": p.cfg.run_id,
            "settings": v,
            "metric": metric,
            "val": None if r is None else r.metrics.get(metric),
        }
        for i, (p, v, r) in enumerate(zip(plans, values, records, strict=True))
    ]


def tune(req: TuneRequest, store: Store) -> dict:
    """Search, select on val, run the choice on test; returns the search record."""
    if req.budget < 1 or req.seeds < 1:
        raise UserError("tune: --budget and --seeds must be >= 1")
    space = method_space(req)
    values = sample_trials(space, req.budget, req.seed)
    plans = [plan(run_given(req, v, "val", 0)) for v in values]  # every input checked first
    identity = {
        "space": {k: d.to_dict() for k, d in space.items()},
        "budget": req.budget,
        "seed": req.seed,
        "fixed": req.fixed,
        "trials": [p.cfg.run_id for p in plans],
    }
    search_id = make_run_id(req.method, req.dataset, identity, kind="tune")
    path = store.root / TUNES / f"{search_id}.json"
    _run_all(req, store, f"{search_id}-trials", plans, path)
    trials = trial_rows(plans, values, store)
    best = choose(trials)
    finals = [plan(run_given(req, best["settings"], "test", s)) for s in range(req.seeds)]
    _run_all(req, store, f"{search_id}-test", finals, path)
    record = {
        "search_id": search_id,
        "method": req.method,
        "dataset": req.dataset,
        **identity,
        "selection": f"best val {best['metric']} (ties: the earlier trial); test never read",
        "trials": trials,
        "choice": best,
        "test_runs": [p.cfg.run_id for p in finals],
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    write_json(path, record)
    return record
