"""``run`` / ``evaluate`` ``--dry-run``: every resolved setting as YAML with the run
config file's keys, each with a comment saying where it came from. Saved to a file,
the output runs the same run again with ``--config``. Nothing is written."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import yaml

from wsolbench.core.config import FIELDS, RunConfig
from wsolbench.train.plan import configure, run_recipe

# Digests are set by planning from the files themselves, never by a config file.
NOT_IN_FILES = ("data_sha256", "weights_sha256", "checkpoint_sha256")


def _line(key: str, value: Any) -> str:
    """``key: value`` as one line of YAML (lists and mappings in flow style)."""
    text = yaml.safe_dump(value, default_flow_style=True, width=1000).splitlines()[0]
    return f"{key}: {text}"


def _origin(key: str, flags: set[str], config: str | None, file_keys: set[str], recipe) -> str:
    name, values = recipe
    if key == "recipe":
        return "flag --recipe" if key in flags else "the default"
    if key in ("method", "checkpoint") and key in flags:
        return "command line"
    if key in flags:
        return f"flag --{key.replace('_', '-')}"
    if key in file_keys:
        return f"config {config}"
    if key in values:
        return f"recipe {name}: {values[key].source}"
    return "default"


def config_lines(cfg: RunConfig, origin: Callable[[str], str]) -> list[str]:
    """Every set value of ``cfg`` as a run config file's line, ``origin(key)`` after it."""
    lines = []
    for key in FIELDS:
        value = _value(cfg, key)
        if value is None or key in NOT_IN_FILES:
            continue
        if key == "options":
            where = "the method's options (defaults, unless set)"
        elif key == "recipe":
            where = f"{origin(key)}; values: `wsolbench recipes {value}`"
        else:
            where = origin(key)
        lines.append(f"{_line(key, value)}  # {where}")
    return lines


def dry_run(
    given: Mapping[str, Any], flags: set[str], config: str | None, file_keys: set[str]
) -> str:
    """The resolved settings of the run ``given`` describes, one commented line each."""
    method, _, cfg = configure(dict(given))
    recipe, values, trust = run_recipe(method, dict(given))
    head = [
        f"# wsolbench {cfg.method} on {cfg.dataset}, as it would run; nothing was written.",
        f"# recipe {recipe.name} ({trust}): {recipe.about}",
        "# save this output and rerun it with --config FILE; weights and data digests",
        "# are read when it runs",
    ]
    unused = [k for k in values if k in FIELDS and cfg[k] is None]
    body = config_lines(
        cfg, lambda key: _origin(key, flags, config, file_keys, (recipe.name, values))
    )
    tail = [f"# not used by {cfg.method}: {', '.join(unused)}"] if unused else []
    return "\n".join(head + body + tail)


def sweep_cell(cfg: RunConfig, recipe: Mapping[str, Any]) -> str:
    """One planned sweep cell as a YAML document: a value the recipe gave names its
    source; any other value set differently from the default is the sweep's."""

    def origin(key: str) -> str:
        if key in recipe["sources"] and key not in recipe["overridden"]:
            return f"recipe {recipe['name']}: {recipe['sources'][key]}"
        return "default" if cfg[key] == FIELDS[key].default else "the sweep"

    return "\n".join([f"--- # {cfg.run_id}", *config_lines(cfg, origin)])


def _value(cfg: RunConfig, key: str) -> Any:
    value = cfg[key]
    return dict(value) if isinstance(value, dict) else value
