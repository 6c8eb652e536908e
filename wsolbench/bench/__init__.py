"""Speed and memory benchmarks: measurements side by side in one run, as ratios."""

BENCHMARK_NAMES = (
    "mainjob",
    "metrics",
    "evalmaps",
    "train",
    "stream",
    "loading",
    "slurm",
    "cli",
    "site",
)
