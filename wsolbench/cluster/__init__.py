"""Sweeps: files of run grids, submitted as SLURM job arrays (submitit) or run as
local processes, with cluster profiles."""

EXECUTORS = ("slurm", "local", "debug")
