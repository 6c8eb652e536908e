"""``report``, ``show`` and ``sweep``: commands that read and fill the results store."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import pandas as pd

from wsolbench import PROTOCOL_VERSION
from wsolbench.cluster.sweep import IN_FLIGHT, collect_frame, state_frame, status, submit, wait
from wsolbench.cluster.sweepfile import load_sweep
from wsolbench.core.errors import UserError
from wsolbench.core.record import RunRecord
from wsolbench.core.registry import DATASETS
from wsolbench.core.store import Store, atomic_write, results_root
from wsolbench.reporting import FORMATS
from wsolbench.reporting.figures import draw_figure
from wsolbench.reporting.paperspec import RunIndex, Spec, protocol_version, run_command, spec_named
from wsolbench.reporting.runs import render, runs_frame
from wsolbench.reporting.show import fig5, fig6, show
from wsolbench.reporting.tables import build_table, render_table

FIGURES = {"fig5": fig5, "fig6": fig6}


def cmd_show(args: argparse.Namespace) -> int:
    if len(args.run_ids) > 1 and not args.same_images:
        raise UserError("several runs are drawn side by side only with --same-images")
    store = Store(results_root(args.results))
    where = Path(args.out) if args.out else store.run_dir(args.run_ids[0]) / "show.png"
    out = show(store, args.run_ids, args.n, args.pick or "worst", where, args.data_root)
    print(f"wrote {out}")
    return 0


def _write_or_print(text: str, out: str | None) -> None:
    if out:
        atomic_write(Path(out), lambda f: f.write(text.encode()))
    else:
        print(text, end="" if text.endswith("\n") else "\n")


def cmd_sweep(args: argparse.Namespace) -> int:
    action, *rest = args.words if args.words[0] in ("status", "collect") else ["run", *args.words]
    if len(rest) != 1:
        raise UserError(f"sweep {'' if action == 'run' else action + ' '}takes one sweep file")
    if args.parallelism is not None and args.parallelism < 1:
        raise UserError(f"--parallelism must be >= 1, got {args.parallelism}")
    sweep = load_sweep(rest[0], {"dataset": args.dataset, "pretrained": args.pretrained})
    store = Store(results_root(args.results))
    if action == "collect":
        done = sum(store.record(p.cfg.run_id) is not None for p in sweep.runs)
        print(f"{done} of {len(sweep.runs)} runs finished", file=sys.stderr)
        frame = collect_frame(sweep, store, args.mean, args.ci)
        _write_or_print(render(frame, args.format), args.out)
        return 0
    if action == "status" or args.dry_run:
        states = status(sweep, store)
    else:
        jobs, before = submit(sweep, store, args.executor, args.profile, args.parallelism)
        skipped = sum(s.state == "done" for s in before)
        flying = sum(s.state in IN_FLIGHT for s in before)
        print(
            f"sweep {sweep.name}: {len(jobs)} runs submitted ({args.executor}), "
            f"{skipped} already done, {flying} already in flight",
            file=sys.stderr,
        )
        if not jobs:
            print("nothing to submit")
        elif args.executor == "slurm" and not args.wait:
            ids = sorted({str(j.job_id).split("_")[0] for j in jobs})
            print(f"job array {', '.join(ids) or '-'}; see `wsolbench sweep status {rest[0]}`")
        if args.executor == "slurm" and not args.wait:
            return 0
        wait(jobs)
        states = status(sweep, store)
    counts = pd.Series([s.state for s in states]).value_counts()
    print(f"{len(states)} runs: " + ", ".join(f"{n} {k}" for k, n in counts.items()))
    print(render(state_frame(sweep, states), "md"))
    if args.dry_run:
        from wsolbench.cli.dryrun import sweep_cell

        print("\n# every run's resolved settings (a run config file each):")
        for p in sweep.runs:
            print(sweep_cell(p.cfg, p.recipe))
    return 1 if action == "run" and not args.dry_run and counts.get("failed", 0) else 0


def _parquet(args: argparse.Namespace) -> int:
    """The runs table as typed data (one row per run, every setting and metric)."""
    import io

    from wsolbench.results import runs

    if args.figure or not args.out:
        raise UserError("report --format parquet: the runs table only, with --out FILE")
    frame = runs(results_root(args.results, must_exist=True))
    for column in [c for c in frame.columns if frame[c].dtype.kind == "O"]:  # ("full", 5): text
        frame[column] = frame[column].map(lambda v: v if v is None else str(v))
    buf = io.BytesIO()
    frame.to_parquet(buf, index=False)
    atomic_write(Path(args.out), lambda f: f.write(buf.getvalue()))
    print(f"wrote {len(frame)} runs to {args.out}")
    return 0


def _site(args: argparse.Namespace) -> int:
    from wsolbench.reporting.site import build_site

    if not args.out:
        raise UserError("report html: give --out DIR, the folder for the site")
    store = Store(results_root(args.results, must_exist=True))
    done = build_site(store, Path(args.out), args.data_root, not args.no_overlays)
    print(
        f"wrote {Path(args.out) / 'index.html'}: {done['runs']} runs ({done['drawn']} drawn "
        f"anew), {done['comparisons']} comparisons"
    )
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    if args.figure == "html":
        return _site(args)
    if args.format == "parquet":
        return _parquet(args)
    if args.figure and args.figure not in FIGURES:
        return _paper_report(args)
    if args.format in ("png", "pdf"):
        raise UserError(f"report: --format {args.format} is for figures")
    if args.figure:
        if not args.run_ids:
            raise UserError(f"report {args.figure}: give the run ids to draw")
        out = Path(args.out or f"{args.figure}.png")
        store = Store(results_root(args.results, must_exist=True))
        print(f"wrote {FIGURES[args.figure](store, args.run_ids, out)}")
        return 0
    records = Store(results_root(args.results, must_exist=True)).records()
    text = render(runs_frame(records), args.format or "md")
    _write_or_print(text, args.out)
    return 0


def _paper_report(args: argparse.Namespace) -> int:
    """A paper table (md / csv / latex) or figure (png / pdf), and what it lacks."""
    spec = spec_named(args.figure)
    if args.run_ids:
        raise UserError(f"report {spec.name}: takes no run ids (runs are found by config)")
    records = Store(results_root(args.results, must_exist=True)).records()
    datasets = [d for d in (args.dataset or "").split(",") if d] or store_datasets(spec, records)
    for d in datasets:
        DATASETS.get(d)
    index = RunIndex(records)
    if index.other_protocol:
        versions = sorted({protocol_version(r) for r in index.other_protocol})
        print(
            f"{len(index.other_protocol)} runs under protocol {', '.join(versions)} left out "
            f"(this is protocol {PROTOCOL_VERSION}; `wsolbench report` lists them)",
            file=sys.stderr,
        )
    if spec.kind == "table":
        fmt = args.format or "md"
        if fmt not in FORMATS:
            raise UserError(f"report {spec.name}: --format {fmt} is for figures")
        table = build_table(spec, index, datasets)
        _write_or_print(render_table(table, fmt, args.ci), args.out)
        missing = table.missing
    else:
        fmt = args.format or (Path(args.out).suffix[1:] if args.out else "png")
        if fmt not in ("png", "pdf"):
            raise UserError(f"report {spec.name}: a figure is written as png or pdf, not {fmt}")
        out = Path(args.out or f"{spec.name}.{fmt}")
        missing = draw_figure(spec, index, datasets, out.with_suffix(f".{fmt}"))
        print(f"wrote {out.with_suffix(f'.{fmt}')}")
    _print_missing(spec, missing, data_roots(records))
    _print_weights(index)
    return 0


def store_datasets(spec: Spec, records: list[RunRecord]) -> list[str]:
    """The datasets the store has runs on that the spec can show (the paper's first,
    then the others, e.g. synthetic), said in one line; the spec's own when none."""
    have = list(dict.fromkeys(r.dataset for r in records))
    have.sort(key=lambda d: spec.datasets.index(d) if d in spec.datasets else len(spec.datasets))
    usable = [d for d in have if any(c.on(d) for c in spec.columns)]
    if usable:
        print(
            f"datasets: {', '.join(usable)} (those with runs in the store; --dataset to choose)",
            file=sys.stderr,
        )
    return usable or list(spec.datasets)


def data_roots(records: list[RunRecord]) -> dict[str, str]:
    """Per dataset, the data root its runs read (for complete missing-run commands)."""
    roots = {}
    for r in records:
        root = (r.config or {}).get("data_root")
        if root:
            roots.setdefault(r.dataset, root)
    return roots


def _print_weights(index: RunIndex) -> None:
    """Which starting weights the table's cells used, and which runs it left out."""
    if index.data_left_out:
        print(f"{index.data_left_out} runs on other data left out", file=sys.stderr)
    names = {"none": "none (from scratch)", "None": "not recorded (older run)"}
    for label, digests in (
        ("starting weights (sha256)", index.weights_used),
        ("runs from other weights left out (sha256)", index.weights_left_out),
    ):
        if digests:
            text = ", ".join(names.get(d, d[:12]) for d in sorted(digests))
            print(f"{label}: {text}", file=sys.stderr)


def _print_missing(spec: Spec, missing: list[dict], roots: dict[str, str]) -> None:
    """The complete commands that make the missing runs: a real dataset's with the data
    root its runs in the store read, else WSOLBENCH_DATA's, else ``DATA`` to fill in."""
    if not missing:
        return
    env = os.environ.get("WSOLBENCH_DATA")

    def root_of(ds: str) -> str:
        if ds == "synthetic":
            return ""
        return f" --data-root {roots.get(ds) or env or 'DATA'}"

    commands = list(dict.fromkeys(run_command(g) + root_of(g["dataset"]) for g in missing))
    sys.stdout.flush()  # the table first, then what it lacks
    print(f"{len(commands)} runs missing (shown as —); to make them:", file=sys.stderr)
    for c in commands:
        print(f"  {c}", file=sys.stderr)
    for ds in dict.fromkeys(g["dataset"] for g in missing):
        env_set = f"WSOLBENCH_DATA={root_of(ds).split()[-1]} " if root_of(ds) else ""
        print(
            f"  or all at once: {env_set}wsolbench sweep {spec.sweep} --dataset {ds}",
            file=sys.stderr,
        )
    if any("--data-root DATA" in c for c in commands):
        print("  (DATA: the folder that holds cub/, imagenet/, openimages/)", file=sys.stderr)
