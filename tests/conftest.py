from __future__ import annotations

import os

# No test reaches the Hugging Face hub: weights come from caches the tests write.
os.environ["HF_HUB_OFFLINE"] = "1"
# Read once, when tqdm is imported: no progress bars in test output.
os.environ["TQDM_DISABLE"] = "1"
# One thread per xdist worker (and per process it starts): two workers on two cores
# each spinning two OpenMP threads run slower than one thread each.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("MKL_NUM_THREADS", "1")
import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from pathlib import Path

import pytest

from wsolbench.core.startup import collector_paused

# A worker's collection imports torch, timm and every test module: the collector
# paused meanwhile, as a wsolbench process does (resumed in pytest_collection_finish).
COLLECTING = ExitStack()
if os.environ.get("PYTEST_XDIST_WORKER"):
    COLLECTING.enter_context(collector_paused())

from wsolbench.cli import main  # noqa: E402
from wsolbench.core.config import RunConfig, build_config  # noqa: E402
from wsolbench.core.registry import METHODS  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


# Run by the controller in two processes at once: numba compiles each rule's kernels
# on one core (18-22 s and 7-9 s on a fresh clone; PxAP's with the second), the
# synthetic splits are drawn.
WARM = (
    "from wsolbench.evaluation.componenttree import warm_up; warm_up('contour')",
    "from wsolbench.evaluation.componenttree import warm_up; warm_up('largest'); "
    "from wsolbench.evaluation import histogram; histogram.warm_up(); "
    "from wsolbench.core.registry import DATASETS; DATASETS.get('synthetic')().load(None)",
)
# The file the controller writes once the caches are warm (its path in the workers' env).
WARM_DONE = "WSOLBENCH_TEST_WARM_DONE"


def _warm(procs: list[subprocess.Popen], done: Path) -> None:
    failed = [p.args[-1] for p in procs if p.wait() != 0]
    done.write_text("\n".join(failed) or "ok")


def pytest_configure(config):
    """numba's kernels compiled and the synthetic splits drawn once, by the controller,
    so the workers and the processes tests start read both from their caches. Under
    xdist the workers start and collect meanwhile, and wait for it before their first
    test (``warm_caches``)."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        return
    procs = [subprocess.Popen([sys.executable, "-c", code]) for code in WARM]
    done = Path(tempfile.mkdtemp(prefix="wsolbench-warm-")) / "done"
    config.add_cleanup(lambda: shutil.rmtree(done.parent, ignore_errors=True))
    if config.getoption("numprocesses", None):
        os.environ[WARM_DONE] = str(done)  # the workers, started after this, inherit it
        threading.Thread(target=_warm, args=(procs, done), daemon=True).start()
        return
    _warm(procs, done)
    if done.read_text() != "ok":
        raise pytest.UsageError(f"warming the caches failed: {done.read_text()}")


def pytest_collection_modifyitems(items):
    """The slow tests first (a stable sort, the same on every xdist worker), so the
    two workers end on short tests together rather than one waiting on the other's
    last long run."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


def pytest_collection_finish(session):
    COLLECTING.close()


@pytest.fixture(scope="session", autouse=True)
def warm_caches() -> None:
    """In an xdist worker: until the controller's warm-up has finished."""
    done = os.environ.get(WARM_DONE)
    if not done or not os.environ.get("PYTEST_XDIST_WORKER"):
        return
    deadline = time.monotonic() + 600
    while not os.path.exists(done):
        assert time.monotonic() < deadline, "the caches' warm-up did not finish in 600 s"
        time.sleep(0.1)
    result = Path(done).read_text()
    assert result == "ok", f"warming the caches failed: {result}"


@pytest.fixture
def cli(tmp_path, monkeypatch, capsys):
    """Run ``wsolbench`` in this process, as the command would (``main(argv)``) in
    ``cwd`` with ``env`` added; returns (exit code, stdout, stderr)."""

    def run(*args: str, cwd: Path | None = None, env: dict | None = None):
        monkeypatch.chdir(cwd or tmp_path)
        for key, value in (env or {}).items():
            monkeypatch.setenv(key, value)
        capsys.readouterr()  # what earlier calls printed is theirs
        code = main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    return run


def with_distribution(monkeypatch, site: Path | str) -> None:
    """An installed distribution's ``site`` on this process's path (entry points are
    read from sys.path) and the method registry to be searched afresh, both undone
    after the test. The guide example's run, in its own process, proves a new process
    finds such a distribution too."""
    monkeypatch.syspath_prepend(str(site))
    # The built-ins first: their modules stay imported, so a registry that forgot them
    # could never find them again (a later test saw "unknown method (known: none)").
    METHODS.discover()
    monkeypatch.setattr(METHODS, "_items", dict(METHODS._items))
    monkeypatch.setattr(METHODS, "_discovered", False)


def listed(cli, monkeypatch, site: Path, module: str) -> str:
    """``wsolbench list``'s output in this process with the distribution at ``site``;
    ``module``, the plugin's, is forgotten after."""
    with_distribution(monkeypatch, site)
    try:
        rc, listing, err = cli("list")
    finally:
        sys.modules.pop(module, None)
    assert rc == 0, err
    return listing


@pytest.fixture
def cli_process(tmp_path):
    """Run the installed ``wsolbench`` command in a new process; for the tests that
    prove the console script itself, and for environments only a new process sees."""

    def run(*args: str, cwd: Path | None = None, env: dict | None = None):
        proc = subprocess.run(
            ["wsolbench", *args],
            capture_output=True,
            text=True,
            cwd=cwd or tmp_path,
            env={**os.environ, **(env or {})},
            timeout=900,
        )
        return proc.returncode, proc.stdout, proc.stderr

    return run


MICRO_RECIPE = {
    "backbone": "wsolbench_vit_micro_patch8_64",
    "lambda": 0.2,
    "batch_size": 4,
    "epochs": 1,
    "lr": 1e-3,
    "loss_delay": 0.0,
    "loss_ramp": 0.0,
}


def micro_config(method: str = "sat", **given) -> RunConfig:
    """A run config on the small synthetic backbone, without loading any data."""
    return build_config({"method": method, **given}, MICRO_RECIPE, METHODS.get(method).options)


@pytest.fixture
def empty_datasets(tmp_path, monkeypatch):
    """WSOLBENCH_DATA with an empty folder per real dataset: enough to plan runs (the
    annotation digest of no files), never to load them."""
    root = tmp_path / "empty-data"
    for name in ("cub", "imagenet", "openimages", "wsol"):
        (root / name).mkdir(parents=True)
    (root / "imagenet" / "train" / "n01440764").mkdir(parents=True)  # what check() asks
    monkeypatch.setenv("WSOLBENCH_DATA", str(root))
    return root


# Every method wsolbench ships, with whether it scores the ground-truth class's map.
CLASS_AWARE = {
    "adl": True,
    "attnmap": False,
    "cam": True,
    "cutmix": True,
    "has": True,
    "sat": False,
    "tscam": True,
}
METHOD_NAMES = sorted(CLASS_AWARE)

# The smallest real run: one epoch on 5 images per class (60), full val and test.
TINY = ["--epochs", "1", "--kshot", "5", "--seed", "3"]


def shared_dir(tmp_path_factory, name: str) -> Path:
    """A folder every xdist worker of this session sees (the workers' common base)."""
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent
    return base / name


@pytest.fixture(scope="session")
def tiny_runs(tmp_path_factory) -> dict[str, Path]:
    """A tiny run of every method, trained once per session through the CLI (by the
    first xdist worker that needs them; the others wait and read the same store):
    method -> its run folder. A test that changes a store copies what it needs first
    (``copy_runs``)."""
    from filelock import FileLock

    store = shared_dir(tmp_path_factory, "tiny-runs")
    with FileLock(f"{store}.lock"):
        if not (store / ".complete").exists():
            for method in METHOD_NAMES:
                assert main(["run", method, *TINY, "--results", str(store)]) == 0
            (store / ".complete").touch()
    return {
        json.loads((d / "record.json").read_text())["method"]: d
        for d in store.iterdir()
        if (d / "record.json").is_file()
    }


def copy_runs(runs: dict[str, Path], methods: list[str], store: Path) -> dict[str, Path]:
    """Copies of the given methods' run folders in ``store``: method -> folder."""
    store.mkdir(parents=True, exist_ok=True)
    return {m: Path(shutil.copytree(runs[m], store / runs[m].name)) for m in methods}
