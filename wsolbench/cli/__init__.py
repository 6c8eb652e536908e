"""Command line: ``wsolbench run | evaluate | sweep | export-maps | evaluate-maps |
list | report | show | bench | weights | pretrain``. A command's module (and with
it torch, pandas, ...) is imported only when that command runs."""

from __future__ import annotations

import importlib
import os
import signal
import sys

from wsolbench.core.errors import UserError
from wsolbench.core.startup import collector_paused

# command -> (module under wsolbench.cli, function)
COMMANDS = {
    "run": ("running", "cmd_run"),
    "evaluate": ("running", "cmd_run"),
    "export-maps": ("running", "cmd_export_maps"),
    "evaluate-maps": ("maps", "cmd_evaluate_maps"),
    "list": ("tools", "cmd_list"),
    "weights": ("tools", "cmd_weights"),
    "pretrain": ("tools", "cmd_pretrain"),
    "bench": ("tools", "cmd_bench"),
    "report": ("results", "cmd_report"),
    "show": ("results", "cmd_show"),
    "sweep": ("results", "cmd_sweep"),
    "tune": ("fair", "cmd_tune"),
    "compare": ("fair", "cmd_compare"),
    "recipes": ("tools", "cmd_recipes"),
}


class Terminated(BaseException):
    """SIGTERM outside SLURM (under SLURM, submitit's handler requeues the task)."""


def _terminate(signum: int, frame: object) -> None:
    raise Terminated


def check_early(argv: list[str]) -> None:
    """The run settings given as flags and in ``--config``, checked before the full
    parser (whose method options import the plugins, timm and torch) is built: bad
    input answers at once. Flags this light pass does not know are left to it."""
    if not argv or argv[0] not in ("run", "evaluate"):
        return
    from wsolbench.cli.parser import Parser, field_flag, run_flag_keys
    from wsolbench.core.config import check_value, load_yaml

    p = Parser(prog=f"wsolbench {argv[0]}", add_help=False, allow_abbrev=False)
    p.add_argument("method", nargs="?")
    p.add_argument("--config")
    keys = run_flag_keys()
    for key in keys:
        field_flag(p, key)
    args, _ = p.parse_known_args(argv[1:])
    if args.config:
        load_yaml(args.config)
    for key in keys:
        if (value := getattr(args, key)) is not None:
            check_value(key, value)  # kshot's check reads its text ("full" or a number)


def main(argv: list[str] | None = None) -> int:
    from wsolbench.cli.parser import parse

    if "SLURM_JOB_ID" not in os.environ:
        signal.signal(signal.SIGTERM, _terminate)
    try:
        words = sys.argv[1:] if argv is None else list(argv)
        check_early(words)
        with collector_paused():  # parsing and the command's module load the plugins
            args = parse(words)
            module, name = COMMANDS[args.command]
            command = getattr(importlib.import_module(f"wsolbench.cli.{module}"), name)
        return command(args)
    except UserError as e:
        print(f"wsolbench: error: {e.one_line()}", file=sys.stderr)
        return 2
    except Terminated:
        print("wsolbench: terminated (SIGTERM)", file=sys.stderr)
        return 143
    except BrokenPipeError:  # output piped into `head` and the like
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print("wsolbench: interrupted", file=sys.stderr)
        return 130
