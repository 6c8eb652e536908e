"""Cluster profiles: the resources of one sweep task, read from ``slurm/<name>.yaml``
and handed to submitit's SLURM executor."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from wsolbench.core.config import int_at_least, mapping, non_empty_str, number_in, read_yaml
from wsolbench.core.errors import UserError
from wsolbench.core.paths import SOURCE_DIR


def _lines(v: Any) -> list[str]:
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise ValueError(f"must be a list of shell lines, got {v!r}")
    return v


# field -> (check, default, submitit SlurmExecutor parameter)
PROFILE_FIELDS: dict[str, tuple[Callable[[Any], Any], Any, str]] = {
    "partition": (non_empty_str, None, "partition"),
    "account": (non_empty_str, None, "account"),
    "qos": (non_empty_str, None, "qos"),
    "constraint": (non_empty_str, None, "constraint"),
    "gpus_per_task": (int_at_least(0), 0, "gpus_per_task"),
    "cpus_per_task": (int_at_least(1), 2, "cpus_per_task"),
    "mem_gb": (number_in(0.0, open_lo=True), 8.0, "mem"),
    "time_min": (int_at_least(1), 60, "time"),
    "array_parallelism": (int_at_least(1), 32, "array_parallelism"),
    # Seconds between the warning signal (USR2) and the kill at the time limit.
    "signal_delay_s": (int_at_least(1), 90, "signal_delay_s"),
    "setup": (_lines, None, "setup"),  # e.g. `module load cuda`, before the task
    "sbatch": (mapping, None, "additional_parameters"),  # any other #SBATCH option
}
# Where `--profile NAME` is looked up: the working folder's slurm/, then the checkout's.
SEARCH = (Path("slurm"), SOURCE_DIR / "slurm")


def find_profile(name: str) -> Path:
    if name.endswith((".yaml", ".yml")):
        path = Path(name)
        if not path.is_file():
            raise UserError(f"{path}: cluster profile not found")
        return path
    for folder in SEARCH:
        if (folder / f"{name}.yaml").is_file():
            return folder / f"{name}.yaml"
    raise UserError(f"profile '{name}': no slurm/{name}.yaml here or in the wsolbench checkout")


def resolve_profile(name: str | None, overrides: dict[str, Any], source: str) -> dict[str, Any]:
    """Defaults, then the profile file, then the sweep file's ``slurm:`` overrides."""
    values = {k: default for k, (_, default, _) in PROFILE_FIELDS.items()}
    layers: list[tuple[str, dict]] = []
    if name:
        path = find_profile(name)
        data = read_yaml(path) or {}
        if not isinstance(data, dict):
            raise UserError(f"{path}: must hold a mapping of profile fields")
        layers.append((str(path), data))
    layers.append((f"{source}: slurm", overrides))
    for where, data in layers:
        for key, value in data.items():
            if key not in PROFILE_FIELDS:
                known = ", ".join(PROFILE_FIELDS)
                raise UserError(f"{where}: {key}: unknown profile field (known: {known})")
            try:
                values[key] = PROFILE_FIELDS[key][0](value)
            except ValueError as e:
                raise UserError(f"{where}: {key}: {e}") from None
    return values


def slurm_parameters(profile: dict[str, Any], job_name: str) -> dict[str, Any]:
    """submitit SlurmExecutor parameters; unset fields are left to the cluster."""
    params: dict[str, Any] = {"job_name": job_name}
    for key, value in profile.items():
        if value is None or (key == "gpus_per_task" and value == 0):
            continue
        params[PROFILE_FIELDS[key][2]] = f"{value:g}GB" if key == "mem_gb" else value
    return params
