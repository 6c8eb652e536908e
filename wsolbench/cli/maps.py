"""``evaluate-maps``: score a folder of maps. Its own module so that the command
imports no model code (timm, torchvision): scoring maps needs none."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from wsolbench.cli.parser import request_from
from wsolbench.core.config import FIELDS, check_value
from wsolbench.core.record import RunRecord
from wsolbench.core.store import Store, results_root
from wsolbench.evaluation.maps import MapsRequest, evaluate_maps
from wsolbench.reporting.runs import metrics_table


def print_record(record: RunRecord, ran: bool, store: Store) -> None:
    """The record's metrics; a line on stderr when it was finished before."""
    if not ran:
        print(
            f"run {record.run_id} is already finished in {store.root}; use --force to run it again",
            file=sys.stderr,
        )
    print(metrics_table(record))


def cmd_evaluate_maps(args: argparse.Namespace) -> int:
    if args.eval_workers is not None:
        check_value("eval_workers", args.eval_workers, "--eval-workers")
    if args.cam_curve_interval is None:
        args.cam_curve_interval = FIELDS["cam_curve_interval"].default
    check_value("cam_curve_interval", args.cam_curve_interval, "--cam-curve-interval")
    store = Store(results_root(args.results))
    req = request_from(
        MapsRequest,
        args,
        folder=Path(args.folder),
        resize=args.resize_maps,
        workers=args.eval_workers,
    )
    record, ran = evaluate_maps(store, req, args.force)
    print_record(record, ran, store)
    for note in record.notes or []:
        print(f"note: {note}", file=sys.stderr)
    print(f"results: {store.run_dir(record.run_id)}")
    return 0
