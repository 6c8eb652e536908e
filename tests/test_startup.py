"""The collector pause while a process loads its heavy modules (core/startup.py)."""

import subprocess
import sys

PROBE = """
import gc, sys
from wsolbench.core.startup import collector_paused
{before}
with collector_paused():
    paused = not gc.isenabled()
    import decimal  # stands in for torch and the plugins
print(paused, gc.isenabled(), gc.get_freeze_count() > 0)
"""


def probe(before: str) -> list[str]:
    code = PROBE.format(before=before)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


def test_a_fresh_process_pauses_then_freezes_what_it_loaded():
    assert probe("") == ["True", "True", "True"]


def test_a_process_that_already_loaded_torch_is_left_alone():
    # A test's or a notebook's objects are never frozen: torch loaded means not a start.
    assert probe("sys.modules['torch'] = sys") == ["False", "True", "False"]
