"""``tune`` and ``compare``: the WSOL benchmark's fair comparison."""

from __future__ import annotations

import argparse
import sys

from tabulate import tabulate

from wsolbench.cli.parser import request_from
from wsolbench.cluster.tune import TuneRequest, tune
from wsolbench.core.config import check_value
from wsolbench.core.errors import UserError
from wsolbench.core.store import Store, results_root
from wsolbench.reporting.compare import compare_rows, render_comparison, resolve


def cmd_tune(args: argparse.Namespace) -> int:
    if args.parallelism is not None and args.parallelism < 1:
        raise UserError(f"--parallelism must be >= 1, got {args.parallelism}")
    fixed = {}
    if args.epochs is not None:
        fixed["epochs"] = check_value("epochs", args.epochs, "--epochs")
    req = request_from(TuneRequest, args, space_file=args.space, fixed=fixed)
    store = Store(results_root(args.results))
    record = tune(req, store)
    rows = [
        (t["trial"], t["settings"], "—" if t["val"] is None else f"{t['val']:.2f}")
        for t in record["trials"]
    ]
    metric = record["choice"]["metric"]
    print(f"search {record['search_id']}: {len(rows)} trials, selected on val {metric}")
    print(tabulate(rows, headers=["trial", "settings", f"val {metric}"], tablefmt="github"))
    print(f"choice: trial {record['choice']['trial']} {record['choice']['settings']}")
    tests = [store.record(r) for r in record["test_runs"]]
    done = [r for r in tests if r is not None]
    print(f"test runs ({len(done)} of {len(tests)} finished): {', '.join(record['test_runs'])}")
    if len(done) < len(tests):
        print("some test runs failed; see `wsolbench report` and .sweeps/", file=sys.stderr)
        return 1
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    if args.draws < 100:
        raise UserError(f"--draws must be >= 100, got {args.draws}")
    store = Store(results_root(args.results))
    a, b = resolve(store, args.a, args.dataset), resolve(store, args.b, args.dataset)
    rows = compare_rows(a, b, args.draws)
    if not rows:
        raise UserError("compare: the runs share no metric with per-image values")
    print(render_comparison(a, b, rows, args.draws))
    return 0
