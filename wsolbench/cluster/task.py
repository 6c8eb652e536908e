"""What a sweep's job runs. Kept light: a job process unpickles ``RunTask`` (importing
this module) before any of our code runs, so the heavy modules load inside the call,
with the collector paused (``core/startup.py``)."""

from __future__ import annotations

import traceback
from typing import Any

import submitit

from wsolbench.core.startup import collector_paused


class RunTask(submitit.helpers.Checkpointable):
    """One run of a sweep, as a job calls it. On preemption or at the time limit
    submitit pickles this same call and requeues the job; the run then resumes from
    the ``checkpoint.pt`` that training leaves in its folder after every epoch."""

    def __call__(self, config: dict[str, Any], results: str, threads: int) -> str:
        with collector_paused():
            import torch

            from wsolbench.core.store import Store, atomic_write
            from wsolbench.train.plan import plan
            from wsolbench.train.runner import execute

            # Planning finds the plugins (and imports them): inside, too. Weights were
            # resolved before submitting.
            p = plan(config, cached_only=True)
        store = Store(results)
        # The task's CPUs, whatever the node has; given back after, as an in-process
        # (debug) task would otherwise leave its caller on the task's thread count.
        caller_threads = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            execute(p, store)
        except Exception:
            # Left in the run folder, so `sweep status` can show it; the task fails.
            error = store.run_dir(p.cfg.run_id) / "error.txt"
            atomic_write(error, lambda f: f.write(traceback.format_exc().encode()))
            raise
        finally:
            torch.set_num_threads(caller_threads)
        return p.cfg.run_id
