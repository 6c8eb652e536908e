"""Command line: ``wsolbench run | evaluate | sweep | export-maps | evaluate-maps |
list | report | show | bench | weights | pretrain``. A command's module (and with
it torch, pandas, ...) is imported only when that command runs."""

from __future__ import annotations

import importlib
import os
import sys

from wsolbench.core.errors import UserError

# command -> (module under wsolbench.cli, function)
COMMANDS = {
    "run": ("running", "cmd_run"),
    "evaluate": ("running", "cmd_run"),
    "export-maps": ("running", "cmd_export_maps"),
    "evaluate-maps": ("running", "cmd_evaluate_maps"),
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


def main(argv: list[str] | None = None) -> int:
    from wsolbench.cli.parser import parse

    try:
        args = parse(sys.argv[1:] if argv is None else list(argv))
        module, name = COMMANDS[args.command]
        command = getattr(importlib.import_module(f"wsolbench.cli.{module}"), name)
        return command(args)
    except UserError as e:
        print(f"wsolbench: error: {e.one_line()}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into `head` and the like
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print("wsolbench: interrupted", file=sys.stderr)
        return 130
