"""The command line's grammar. Building it imports nothing heavy: a command's flags
are added only when that command is parsed, and the choices come from the
subpackages' light faces, so `wsolbench --help` answers without torch."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

from wsolbench.bench import BENCHMARK_NAMES
from wsolbench.cluster import EXECUTORS
from wsolbench.core.config import FIELDS, FRAMES, as_option
from wsolbench.core.errors import UserError
from wsolbench.core.registry import METHODS
from wsolbench.reporting import DATA_FORMATS, FORMATS, PICKS, RUN_FIGURES

HELP = {
    "run": "train and evaluate one method on one dataset",
    "evaluate": "evaluate trained weights without training",
    "export-maps": "write a run's maps as <image id>.npy files",
    "evaluate-maps": "score a folder of maps made by any tool",
    "list": "list methods, datasets, freeze presets and run settings",
    "weights": "hub weights in the Hugging Face cache",
    "bench": "speed and memory benchmarks, side by side",
    "pretrain": "pretrain a synthetic micro trunk (the shipped weights' recipe)",
    "show": "test images with maps and boxes of one or more runs",
    "sweep": "a grid of runs as a SLURM job array, local processes or in-process",
    "report": "table of every run, a paper table or figure, or fig5/fig6 of runs",
    "tune": "equal-budget random search on val, the choice run on test over seeds",
    "compare": "two methods' difference with a 95%% paired bootstrap interval over test images",
    "recipes": "every training recipe, with the source of each value",
}
RESULTS_HELP = "results store folder (default ./results)"


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, as for every bad input
        raise UserError(f"{self.prog}: {message}")


def field_flag(p: argparse.ArgumentParser, key: str, **extra: Any) -> None:
    """``--key`` for a RunConfig field, its help and type from the field."""
    f = FIELDS[key]
    flag = f"--{key.replace('_', '-')}"
    if f.flag is bool:
        p.add_argument(
            flag, dest=key, action=argparse.BooleanOptionalAction, default=None, help=f.help
        )
    else:
        p.add_argument(flag, dest=key, type=f.flag or str, default=None, help=f.help, **extra)


def run_flag_keys() -> list[str]:
    return [k for k, f in FIELDS.items() if f.flag is not None]


def _method_option_flags(p: argparse.ArgumentParser, method: str | None) -> None:
    """The options of ``method`` (of every registered method when None or unknown)
    as flags, one per name: ``--x / --no-x`` for switches (so a name shared by methods
    with different defaults works for each), ``--x VALUE`` otherwise. Unset flags leave
    each method's own default."""
    names = [method] if method in METHODS.names() else METHODS.names()
    owners: dict[str, list[str]] = {}
    kinds: dict[str, Any] = {}
    for name in names:
        for key, declared in METHODS.get(name).options.items():
            option = as_option(declared)
            text = option.describe() if len(names) == 1 else name
            owners.setdefault(key, []).append(text)
            kinds.setdefault(key, type(option.default))
    for key, who in owners.items():
        flag = key.replace("_", "-")
        text = (
            who[0]
            if len(names) == 1
            else f"an option of {', '.join(who)}: see `wsolbench run {who[0]} --help`"
        )
        if kinds[key] is bool:
            kind = {"action": argparse.BooleanOptionalAction}
        else:
            kind = {"type": kinds[key], "metavar": key.upper()}
        p.add_argument(f"--{flag}", dest=f"opt:{key}", default=None, help=text, **kind)


def _run(p: argparse.ArgumentParser, checkpoint: bool = False, method: str | None = None) -> None:
    p.add_argument("method", nargs="?", help=FIELDS["method"].help)
    for key in run_flag_keys():
        field_flag(p, key)
    if checkpoint:
        field_flag(p, "checkpoint", required=True)
    p.add_argument("--config", help="YAML file with the same keys (flags override it)")
    p.add_argument("--results", help=RESULTS_HELP)
    p.add_argument("--force", action="store_true", help="re-run and replace a finished run")
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="print every resolved setting as YAML, with where each came from; run nothing",
    )
    p.add_argument(
        "--no-wait",
        action="store_true",
        help="if the identical run is in progress elsewhere, say so and exit (default: wait "
        "for it and report its record)",
    )
    if method in METHODS.names():
        p.description = f"{method}: {METHODS.get(method).description}"
    _method_option_flags(p, method)


def _export_maps(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_id")
    p.add_argument("--split", choices=("val", "test"), default="test")
    p.add_argument("--out", required=True, help="folder for the maps")
    p.add_argument("--results", help=RESULTS_HELP)
    for key in ("frame", "data_root", "device", "workers"):
        field_flag(p, key)


def _evaluate_maps(p: argparse.ArgumentParser) -> None:
    p.add_argument("folder", help="maps as <image id>.npy, 2-D floats in [0, 1]")
    p.add_argument("--dataset", help="dataset name (with --metadata: a label)")
    p.add_argument(
        "--metadata",
        type=Path,
        help="the WSOL benchmark's metadata folder for one dataset (DIR/<split>/*.txt); "
        "no images needed",
    )
    p.add_argument(
        "--mask-root", type=Path, help="with --metadata: folder the mask paths are relative to"
    )
    p.add_argument("--split", choices=("val", "test"), default="test")
    p.add_argument("--name", required=True, help="method name for the record")
    p.add_argument(
        "--threshold-on",
        choices=("val", "test"),
        default="val",
        help="split whose maps pick GT-known's box threshold (val maps in the same folder)",
    )
    p.add_argument(
        "--frame", choices=FRAMES, help="frame of the maps (default: manifest.json, else resize)"
    )
    p.add_argument(
        "--resize-maps",
        action="store_true",
        help="resize maps of another size to the frame (bicubic) instead of refusing them",
    )
    field_flag(p, "data_root")
    p.add_argument("--results", help=RESULTS_HELP)
    p.add_argument("--force", action="store_true", help="score again and replace")
    field_flag(p, "eval_workers")
    field_flag(p, "cam_curve_interval")


def _weights(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=("fetch", "list"))
    p.add_argument("backbones", nargs="*", metavar="NAME", help="fetch: timm model names")


def _benchmark_name(name: str) -> str:
    if name not in BENCHMARK_NAMES:
        raise argparse.ArgumentTypeError(
            f"unknown benchmark '{name}' (known: {', '.join(BENCHMARK_NAMES)})"
        )
    return name


def _bench(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "names",
        nargs="*",
        metavar="NAME",
        type=_benchmark_name,
        help=f"any of {', '.join(BENCHMARK_NAMES)} (default: all)",
    )
    p.add_argument("--images", type=int, default=1000, help="maps for `stream`, runs for `site`")
    p.add_argument("--profile", help="cluster profile for `slurm` (default slurm/test.yaml)")
    p.add_argument("--batch", type=int, help="`train`: batch size (default 8 CPU, 128 GPU)")
    p.add_argument("--device", help="`train`: cpu or cuda (default: cuda when there is one)")
    p.add_argument("--seeds", type=int, default=5, help="`mainjob`: seeds (default 5)")


def _pretrain(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default="pretrained", help="folder for weights + manifest")
    p.add_argument(
        "--backbone",
        default="wsolbench_vit_micro_patch8_64",
        help="which shipped micro trunk: wsolbench_vit_micro_patch8_64 (default) or "
        "wsolbench_resnet_micro_64",
    )
    p.add_argument("--epochs", type=int, help="default: the shipped weights' recipe")
    p.add_argument("--seed", type=int, help="default: the shipped weights' recipe")
    p.add_argument("--force", action="store_true", help="replace weights already there")


def _show(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_ids", nargs="+", metavar="RUN_ID")
    p.add_argument("--n", type=int, default=16, help="images to draw")
    pick = p.add_mutually_exclusive_group()
    texts = {
        "worst": "the test images of lowest IoU (default)",
        "best": "the test images of highest IoU",
        "random": "test images drawn at random (seed 0)",
    }
    for name in PICKS:
        pick.add_argument(
            f"--{name}", dest="pick", action="store_const", const=name, help=texts.get(name)
        )
    p.add_argument("--same-images", action="store_true", help="needed for several runs")
    p.add_argument("--out", help=".png or .pdf (default: show.png in the first run's folder)")
    field_flag(p, "data_root")
    p.add_argument("--results", help=RESULTS_HELP)


def _sweep(p: argparse.ArgumentParser) -> None:
    p.usage = "wsolbench sweep [status | collect] SWEEP [options]"
    p.description = (
        "Run a sweep (SWEEP: a YAML file or a built-in sweep's name), show the state of "
        "its runs, or collect the table of its finished runs."
    )
    p.add_argument("words", nargs="+", metavar="[status|collect] SWEEP")
    p.add_argument("--executor", choices=EXECUTORS, default="local", help="default: local")
    p.add_argument("--profile", help="cluster profile: slurm/NAME.yaml (or a .yaml path)")
    p.add_argument("--dry-run", action="store_true", help="list the runs, submit nothing")
    p.add_argument("--wait", action="store_true", help="slurm: wait for the array to finish")
    p.add_argument("--parallelism", type=int, help="local: runs at once (default: CPUs/task)")
    p.add_argument("--dataset", help="run the sweep's grid on this dataset instead")
    p.add_argument("--pretrained", help="hub, none or a checkpoint FILE for every run")
    p.add_argument("--format", choices=FORMATS, default="md", help="collect: table format")
    p.add_argument("--out", help="collect: write the table to this file")
    p.add_argument(
        "--mean", action="store_true", help="collect: mean ± sd over the seeds, per setting"
    )
    p.add_argument("--ci", action="store_true", help="collect --mean: 95%% t-interval, not sd")
    p.add_argument("--results", help=RESULTS_HELP)


def _report(p: argparse.ArgumentParser) -> None:
    from wsolbench.reporting.paperspec import load_specs  # reads the paper's spec file

    names = sorted(RUN_FIGURES) + list(load_specs()) + ["html"]
    p.add_argument(
        "figure",
        nargs="?",
        choices=names,
        help="paper table/figure, fig5/fig6, or html (the static site, --out DIR)",
    )
    p.add_argument("run_ids", nargs="*", metavar="RUN_ID", help="fig5/fig6: the runs to draw")
    p.add_argument("--dataset", help="paper tables/figures: dataset(s), comma-separated")
    p.add_argument(
        "--format",
        choices=(*FORMATS, *DATA_FORMATS, "png", "pdf"),
        help="md (default), csv, latex; parquet (the runs table as data, --out FILE); "
        "png / pdf for figures",
    )
    p.add_argument("--out", help="write to this file instead of the terminal")
    p.add_argument(
        "--ci", action="store_true", help="paper tables: 95%% t-interval over seeds, not sd"
    )
    p.add_argument("--results", help=RESULTS_HELP)
    p.add_argument(
        "--no-overlays",
        action="store_true",
        help="html: leave out the runs' worst / best / random test images",
    )
    field_flag(p, "data_root")


def _tune(p: argparse.ArgumentParser) -> None:
    p.add_argument("method", help=FIELDS["method"].help)
    p.add_argument("--dataset", default="synthetic", help="dataset name (default synthetic)")
    p.add_argument("--budget", type=int, default=8, help="trials, the same for every method")
    p.add_argument("--seeds", type=int, default=3, help="seeds of the choice on test (3)")
    p.add_argument("--seed", type=int, default=0, help="the search's seed: which trials")
    p.add_argument("--space", help="YAML space: NAME: {log|uniform|int: [lo, hi]}")
    field_flag(p, "epochs")
    p.add_argument("--executor", choices=EXECUTORS, default="local", help="default: local")
    p.add_argument("--profile", help="cluster profile: slurm/NAME.yaml (or a .yaml path)")
    p.add_argument("--parallelism", type=int, help="local: runs at once (default: CPUs/task)")
    p.add_argument("--results", help=RESULTS_HELP)


def _compare(p: argparse.ArgumentParser) -> None:
    for side in ("a", "b"):
        p.add_argument(
            side,
            metavar=side.upper(),
            help="run ids (comma-separated: one per seed) or a method name (its tuned choice)",
        )
    p.add_argument("--dataset", help="with method names: the dataset tuned on")
    p.add_argument("--draws", type=int, default=2000, help="bootstrap draws (2000)")
    p.add_argument("--results", help=RESULTS_HELP)


FLAGS = {
    "run": _run,
    "evaluate": lambda p, method=None: _run(p, True, method),
    "export-maps": _export_maps,
    "evaluate-maps": _evaluate_maps,
    "list": lambda p: None,
    "weights": _weights,
    "bench": _bench,
    "pretrain": _pretrain,
    "show": _show,
    "sweep": _sweep,
    "report": _report,
    "tune": _tune,
    "compare": _compare,
    "recipes": lambda p: p.add_argument("names", nargs="*", metavar="RECIPE", help="default: all"),
}


def build_parser(command: str | None = None, method: str | None = None) -> Parser:
    """Every command, with the flags of ``command`` only (None: no command's); for
    ``run`` / ``evaluate`` of a known ``method``, that method's options only."""
    parser = Parser(prog="wsolbench", description="Fair WSOL benchmarking.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    for name, add_flags in FLAGS.items():
        p = sub.add_parser(name, help=HELP[name])
        if command == name:
            add_flags(p, method=method) if name in ("run", "evaluate") else add_flags(p)
    return parser


def parse(argv: list[str]) -> argparse.Namespace:
    words = [a for a in argv if not a.startswith("-")]
    command = words[0] if words else None
    method = words[1] if command in ("run", "evaluate") and len(words) > 1 else None
    return build_parser(command, method).parse_args(argv)


def request_from(cls: type, args: argparse.Namespace, **given: Any) -> Any:
    """A request dataclass from the parsed flags of the same names; ``given`` sets the
    fields whose flags are named otherwise or need converting."""
    fields = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in vars(args).items() if k in fields} | given)
