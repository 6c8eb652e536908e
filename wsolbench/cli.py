"""Command line: ``wsolbench run | evaluate | sweep | export-maps | evaluate-maps | list |
report | show | bench``."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

import pandas as pd
from tabulate import tabulate

from wsolbench import PROTOCOL_VERSION
from wsolbench.bench.suite import BENCHMARKS
from wsolbench.bench.suite import run as run_benchmarks
from wsolbench.cluster.sweep import (
    EXECUTORS,
    IN_FLIGHT,
    collect_frame,
    state_frame,
    status,
    submit,
    wait,
)
from wsolbench.cluster.sweepfile import load_sweep
from wsolbench.core.config import FIELDS, FRAMES, check_value, load_yaml
from wsolbench.core.digests import file_digest
from wsolbench.core.errors import UserError
from wsolbench.core.registry import DATASETS, METHODS
from wsolbench.core.store import Store, atomic_write
from wsolbench.evaluation.maps import MANIFEST, MapsRequest, evaluate_maps
from wsolbench.reporting.figures import draw_figure
from wsolbench.reporting.paperspec import (
    RunIndex,
    Spec,
    load_specs,
    protocol_version,
    run_command,
    spec_named,
)
from wsolbench.reporting.runs import FORMATS, metrics_table, render, runs_frame
from wsolbench.reporting.show import PICKS, fig5, fig6, show
from wsolbench.reporting.tables import build_table, render_table
from wsolbench.train.export import export_maps
from wsolbench.train.freeze import PRESETS
from wsolbench.train.plan import plan
from wsolbench.train.pretrain import RECIPE, pretrain
from wsolbench.train.runner import execute, results_root
from wsolbench.train.weights import cache_dir, cached_weights, resolve

FIGURES = {"fig5": fig5, "fig6": fig6}

# Flags of `run` that map to config fields (flag name -> field); types are checked
# by the config table, so argparse only converts numbers.
RUN_FLAGS: dict[str, tuple[str, Any]] = {
    "dataset": ("dataset", str),
    "kshot": ("kshot", str),
    "freeze": ("freeze", str),
    "lambda": ("lambda", float),
    "batch-size": ("batch_size", int),
    "seed": ("seed", int),
    "epochs": ("epochs", int),
    "lr": ("lr", float),
    "weight-decay": ("weight_decay", float),
    "drop-path": ("drop_path", float),
    "schedule": ("schedule", str),
    "backbone": ("backbone", str),
    "pretrained": ("pretrained", str),
    "loss-delay": ("loss_delay", float),
    "loss-ramp": ("loss_ramp", float),
    "threshold-on": ("threshold_on", str),
    "frame": ("frame", str),
    "data-root": ("data_root", str),
    "device": ("device", str),
    "workers": ("workers", int),
    "eval-workers": ("eval_workers", int),
}


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, as for every bad input
        raise UserError(f"{self.prog}: {message}")


def _method_option_flags(p: argparse.ArgumentParser) -> None:
    """Every registered method's options as flags, one per name: ``--x / --no-x`` for
    switches (so a name shared by methods with different defaults works for each),
    ``--x VALUE`` otherwise. Unset flags leave each method's own default."""
    owners: dict[str, list[str]] = {}
    kinds: dict[str, Any] = {}
    for name in METHODS.names():
        for key, default in METHODS.get(name).options.items():
            owners.setdefault(key, []).append(f"{name}: {default}")
            kinds.setdefault(key, type(default))
    for key, who in owners.items():
        flag, text = key.replace("_", "-"), f"{key} (default {'; '.join(who)})"
        if kinds[key] is bool:
            kind = {"action": argparse.BooleanOptionalAction}
        else:
            kind = {"type": kinds[key], "metavar": key.upper()}
        p.add_argument(f"--{flag}", dest=f"opt:{key}", default=None, help=text, **kind)


def _run_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("method", nargs="?", help="method name (see `wsolbench list`)")
    for flag, (field, kind) in RUN_FLAGS.items():
        p.add_argument(f"--{flag}", dest=field, type=kind, default=None, help=FIELDS[field].help)
    p.add_argument("--tencrop", action="store_true", default=None, help=FIELDS["tencrop"].help)
    p.add_argument("--config", help="YAML file with the same keys (flags override it)")
    p.add_argument("--results", help="results store folder (default ./results)")
    p.add_argument("--force", action="store_true", help="re-run and replace a finished run")
    _method_option_flags(p)


def build_parser() -> Parser:
    parser = Parser(prog="wsolbench", description="Fair WSOL benchmarking.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    run = sub.add_parser("run", help="train and evaluate one method on one dataset")
    _run_flags(run)
    ev = sub.add_parser("evaluate", help="evaluate trained weights without training")
    _run_flags(ev)
    ev.add_argument("--checkpoint", required=True, help="weights: ours, or the method authors'")

    exp = sub.add_parser("export-maps", help="write a run's maps as <image id>.npy files")
    exp.add_argument("run_id")
    exp.add_argument("--split", choices=("val", "test"), default="test")
    exp.add_argument("--out", required=True, help="folder for the maps")
    exp.add_argument("--results", help="results store folder (default ./results)")
    for flag in ("frame", "data-root", "device", "workers"):
        field, kind = RUN_FLAGS[flag]
        exp.add_argument(f"--{flag}", dest=field, type=kind, help=FIELDS[field].help)

    evm = sub.add_parser("evaluate-maps", help="score a folder of maps made by any tool")
    evm.add_argument("folder", help="maps as <image id>.npy, 2-D floats in [0, 1]")
    evm.add_argument("--dataset", help="dataset name (with --metadata: a label)")
    evm.add_argument(
        "--metadata",
        type=Path,
        help="the WSOL benchmark's metadata folder for one dataset (DIR/<split>/*.txt); "
        "no images needed",
    )
    evm.add_argument(
        "--mask-root", type=Path, help="with --metadata: folder the mask paths are relative to"
    )
    evm.add_argument("--split", choices=("val", "test"), default="test")
    evm.add_argument("--name", required=True, help="method name for the record")
    evm.add_argument(
        "--threshold-on",
        choices=("val", "test"),
        default="val",
        help="split whose maps pick GT-known's box threshold (val maps in the same folder)",
    )
    evm.add_argument(
        "--frame",
        choices=FRAMES,
        help="frame of the maps (default: the folder's manifest.json, else resize)",
    )
    evm.add_argument(
        "--resize-maps",
        action="store_true",
        help="resize maps of another size to the frame (bicubic) instead of refusing them",
    )
    evm.add_argument("--data-root", help=FIELDS["data_root"].help)
    evm.add_argument("--results", help="results store folder (default ./results)")
    evm.add_argument("--force", action="store_true", help="score again and replace")
    evm.add_argument("--eval-workers", type=int, help=FIELDS["eval_workers"].help)

    sub.add_parser("list", help="list methods, datasets and freeze presets")

    wts = sub.add_parser("weights", help="hub weights in the Hugging Face cache")
    wts.add_argument("action", choices=("fetch", "list"))
    wts.add_argument("backbones", nargs="*", metavar="NAME", help="fetch: timm model names")

    bench = sub.add_parser("bench", help="speed and memory benchmarks, side by side")
    bench.add_argument("names", nargs="*", choices=[[], *BENCHMARKS], help="default: all")
    bench.add_argument("--images", type=int, default=1000, help="maps for `stream`")
    bench.add_argument("--profile", help="cluster profile for `slurm` (default slurm/test.yaml)")
    bench.add_argument("--batch", type=int, help="`train`: batch size (default 8 CPU, 128 GPU)")
    bench.add_argument("--device", help="`train`: cpu or cuda (default: cuda when there is one)")
    bench.add_argument("--seeds", type=int, default=5, help="`mainjob`: seeds (default 5)")

    pre = sub.add_parser(
        "pretrain", help="pretrain the synthetic micro trunk (the shipped weights' recipe)"
    )
    pre.add_argument("--out", default="pretrained", help="folder for weights + manifest")
    pre.add_argument("--epochs", type=int, help=f"default {RECIPE['epochs']}")
    pre.add_argument("--seed", type=int, help=f"default {RECIPE['seed']}")
    pre.add_argument("--force", action="store_true", help="replace weights already there")

    show = sub.add_parser("show", help="test images with maps and boxes of one or more runs")
    show.add_argument("run_ids", nargs="+", metavar="RUN_ID")
    show.add_argument("--n", type=int, default=16, help="images to draw")
    pick = show.add_mutually_exclusive_group()
    for name in PICKS:
        pick.add_argument(f"--{name}", dest="pick", action="store_const", const=name)
    show.add_argument("--same-images", action="store_true", help="needed for several runs")
    show.add_argument("--out", default="show.png", help=".png or .pdf (default show.png)")
    show.add_argument("--data-root", help=FIELDS["data_root"].help)
    show.add_argument("--results", help="results store folder (default ./results)")

    sw = sub.add_parser(
        "sweep",
        help="a grid of runs as a SLURM job array, local processes or in-process",
        usage="wsolbench sweep [status | collect] SWEEP [options]",
        description="Run a sweep (SWEEP: a YAML file or a built-in sweep's name), show "
        "the state of its runs, or collect the table of its finished runs.",
    )
    sw.add_argument("words", nargs="+", metavar="[status|collect] SWEEP")
    sw.add_argument("--executor", choices=EXECUTORS, default="local", help="default: local")
    sw.add_argument("--profile", help="cluster profile: slurm/NAME.yaml (or a .yaml path)")
    sw.add_argument("--dry-run", action="store_true", help="list the runs, submit nothing")
    sw.add_argument("--wait", action="store_true", help="slurm: wait for the array to finish")
    sw.add_argument("--parallelism", type=int, help="local: runs at once (default: CPUs/task)")
    sw.add_argument("--dataset", help="run the sweep's grid on this dataset instead")
    sw.add_argument("--pretrained", help="hub, none or a checkpoint FILE for every run")
    sw.add_argument("--format", choices=FORMATS, default="md", help="collect: table format")
    sw.add_argument("--out", help="collect: write the table to this file")
    sw.add_argument(
        "--mean", action="store_true", help="collect: mean ± sd over the seeds, per setting"
    )
    sw.add_argument("--results", help="results store folder (default ./results)")

    rep = sub.add_parser(
        "report", help="table of every run, a paper table or figure, or fig5/fig6 of runs"
    )
    names = sorted(FIGURES) + list(load_specs())
    rep.add_argument("figure", nargs="?", choices=names, help="paper table/figure, or fig5/fig6")
    rep.add_argument("run_ids", nargs="*", metavar="RUN_ID", help="fig5/fig6: the runs to draw")
    rep.add_argument("--dataset", help="paper tables/figures: dataset(s), comma-separated")
    rep.add_argument("--format", choices=(*FORMATS, "png", "pdf"), help="md (default), csv, ...")
    rep.add_argument("--out", help="write to this file instead of the terminal")
    rep.add_argument("--results", help="results store folder (default ./results)")
    return parser


def _given(args: argparse.Namespace) -> dict[str, Any]:
    given = load_yaml(args.config) if args.config else {}
    if args.method:
        given["method"] = args.method
    for field in [f for f, _ in RUN_FLAGS.values()] + ["tencrop"]:
        value = getattr(args, field)
        if value is not None:
            given[field] = int(value) if field == "kshot" and value.isdigit() else value
    opts = dict(given.get("options") or {})
    opts.update({k[4:]: v for k, v in vars(args).items() if k.startswith("opt:") and v is not None})
    given["options"] = opts
    return given


def cmd_run(args: argparse.Namespace) -> int:
    given = _given(args)
    if getattr(args, "checkpoint", None):
        given["checkpoint"] = args.checkpoint
        given["checkpoint_sha256"] = file_digest(args.checkpoint)
    store = Store(results_root(args.results))
    p = plan(given)
    record, ran = execute(p, store, force=args.force)
    _print_record(record, ran, store)
    if p.weights.source == "none" and not p.cfg["checkpoint"]:
        start = "the shipped trunk" if p.cfg["dataset"] == "synthetic" else "ImageNet weights"
        print(f"note: trained from scratch (--pretrained none), not from {start}")
    return 0


def _print_record(record: dict, ran: bool, store: Store) -> None:
    if not ran:
        print(
            f"run {record['run_id']} is already finished in {store.root}; "
            "use --force to run it again",
            file=sys.stderr,
        )
    print(metrics_table(record))


def cmd_export_maps(args: argparse.Namespace) -> int:
    overrides = {
        "frame": args.frame,
        "data_root": args.data_root,
        "device": args.device,
        "workers": args.workers,
    }
    store = Store(results_root(args.results))
    count, out = export_maps(store, args.run_id, args.split, Path(args.out), overrides)
    print(f"wrote {count} maps and {MANIFEST} to {out}")
    return 0


def cmd_evaluate_maps(args: argparse.Namespace) -> int:
    if args.eval_workers is not None:
        check_value("eval_workers", args.eval_workers, "--eval-workers")
    store = Store(results_root(args.results))
    req = MapsRequest(
        folder=Path(args.folder),
        name=args.name,
        split=args.split,
        threshold_on=args.threshold_on,
        dataset=args.dataset,
        metadata=args.metadata,
        mask_root=args.mask_root,
        data_root=args.data_root,
        frame=args.frame,
        resize=args.resize_maps,
        workers=args.eval_workers,
    )
    record, ran = evaluate_maps(store, req, args.force)
    _print_record(record, ran, store)
    for note in record.get("notes", []):
        print(f"note: {note}", file=sys.stderr)
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    if args.images < 1:
        raise UserError(f"--images must be >= 1, got {args.images}")
    if args.batch is not None and args.batch < 2:
        raise UserError(f"--batch must be >= 2, got {args.batch}")
    if args.seeds < 1:
        raise UserError(f"--seeds must be >= 1, got {args.seeds}")
    names = args.names or list(BENCHMARKS)
    options = {
        "profile": args.profile,
        "batch": args.batch,
        "device": args.device,
        "seeds": args.seeds,
    }
    print(run_benchmarks(names, args.images, **options))
    return 0


def cmd_pretrain(args: argparse.Namespace) -> int:
    recipe = dict(RECIPE)
    for key in ("epochs", "seed"):
        value = getattr(args, key)
        if value is not None:
            recipe[key] = check_value(key, value, "pretrain")
    manifest = pretrain(Path(args.out), recipe, args.force)
    print(
        f"{Path(args.out) / manifest['file']}: source val top-1 {manifest['source_val_top1']:.2f} "
        f"%, {manifest['wall_s']:.0f} s, sha256 {manifest['sha256']}"
    )
    print(f"use it with --pretrained {Path(args.out) / manifest['file']}")
    return 0


def cmd_weights(args: argparse.Namespace) -> int:
    if args.action == "list":
        rows = cached_weights()
        print(tabulate(rows, headers=["model", "file", "MB", "sha256"], tablefmt="github"))
        print(f"cache: {cache_dir()}")
        return 0
    if not args.backbones:
        raise UserError("weights fetch: name the backbones (timm model names)")
    for name in args.backbones:
        w = resolve("hub", name)
        print(f"{name}: {w.repo} @ {w.revision} -> {w.path} (sha256 {w.sha256})")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    methods = [
        (
            n,
            "class-aware" if METHODS.get(n).class_aware else "class-agnostic",
            METHODS.get(n).description,
        )
        for n in METHODS.names()
    ]
    print(tabulate(methods, headers=["method", "maps", "description"], tablefmt="github"))
    print()
    datasets = [(n, DATASETS.get(n).description) for n in DATASETS.names()]
    print(tabulate(datasets, headers=["dataset", "description"], tablefmt="github"))
    print()
    presets = [(n, d) for n, (d, _) in PRESETS.items()]
    print(tabulate(presets, headers=["freeze preset", "frozen parts"], tablefmt="github"))
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    if len(args.run_ids) > 1 and not args.same_images:
        raise UserError("several runs are drawn side by side only with --same-images")
    store = Store(results_root(args.results))
    out = show(store, args.run_ids, args.n, args.pick or "worst", Path(args.out), args.data_root)
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
        frame = collect_frame(sweep, store, args.mean)
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
    return 1 if action == "run" and not args.dry_run and counts.get("failed", 0) else 0


def cmd_report(args: argparse.Namespace) -> int:
    if args.figure and args.figure not in FIGURES:
        return _paper_report(args)
    if args.format in ("png", "pdf"):
        raise UserError(f"report: --format {args.format} is for figures")
    if args.figure:
        if not args.run_ids:
            raise UserError(f"report {args.figure}: give the run ids to draw")
        out = Path(args.out or f"{args.figure}.png")
        print(f"wrote {FIGURES[args.figure](Store(results_root(args.results)), args.run_ids, out)}")
        return 0
    text = render(runs_frame(Store(results_root(args.results)).records()), args.format or "md")
    _write_or_print(text, args.out)
    return 0


def _paper_report(args: argparse.Namespace) -> int:
    """A paper table (md / csv / latex) or figure (png / pdf), and what it lacks."""
    spec = spec_named(args.figure)
    datasets = [d for d in (args.dataset or "").split(",") if d] or spec.datasets
    for d in datasets:
        DATASETS.get(d)
    if args.run_ids:
        raise UserError(f"report {spec.name}: takes no run ids (runs are found by config)")
    index = RunIndex(Store(results_root(args.results)).records())
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
        _write_or_print(render_table(table, fmt), args.out)
        missing = table.missing
    else:
        fmt = args.format or (Path(args.out).suffix[1:] if args.out else "png")
        if fmt not in ("png", "pdf"):
            raise UserError(f"report {spec.name}: a figure is written as png or pdf, not {fmt}")
        out = Path(args.out or f"{spec.name}.{fmt}")
        missing = draw_figure(spec, index, datasets, out.with_suffix(f".{fmt}"))
        print(f"wrote {out.with_suffix(f'.{fmt}')}")
    _print_missing(spec, missing, datasets)
    _print_weights(index)
    return 0


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


def _print_missing(spec: Spec, missing: list[dict], datasets: list[str]) -> None:
    if not missing:
        return
    commands = list(dict.fromkeys(run_command(g) for g in missing))
    sys.stdout.flush()  # the table first, then what it lacks
    print(f"{len(commands)} runs missing (shown as —); to make them:", file=sys.stderr)
    for c in commands:
        print(f"  {c}", file=sys.stderr)
    for ds in dict.fromkeys(g["dataset"] for g in missing):
        print(f"  or all at once: wsolbench sweep {spec.sweep} --dataset {ds}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        commands = {
            "run": cmd_run,
            "evaluate": cmd_run,
            "export-maps": cmd_export_maps,
            "evaluate-maps": cmd_evaluate_maps,
            "list": cmd_list,
            "weights": cmd_weights,
            "pretrain": cmd_pretrain,
            "report": cmd_report,
            "bench": cmd_bench,
            "show": cmd_show,
            "sweep": cmd_sweep,
        }
        return commands[args.command](args)
    except UserError as e:
        print(f"wsolbench: error: {e.one_line()}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into `head` and the like
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print("wsolbench: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
