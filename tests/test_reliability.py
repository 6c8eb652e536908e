"""Never the wrong number, never a traceback: every input enters a run's identity by
content, non-finite values are refused, every failure is one line with nothing left
behind (real read-only and full filesystems, truncated files, hostile YAML), and
identical work runs once (two processes started together)."""

import errno
import hashlib
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import copy_runs
from miniature import write_metadata

from wsolbench.core.errors import UserError
from wsolbench.core.lock import held
from wsolbench.core.store import write_json
from wsolbench.evaluation.metrics import MapBatch, PixelAP
from wsolbench.train.runner import resumable


def files_under(root: Path) -> set[Path]:
    return {p for p in root.rglob("*")} if root.exists() else set()


def one_line_exit_2(rc: int, out: str, err: str) -> str:
    """Exit 2, no traceback, and the failure in one line: the last on stderr and the
    only error there (progress lines of the work done before it may precede it)."""
    assert rc == 2, (rc, err)
    lines = err.strip().splitlines()
    assert "Traceback" not in err and lines[-1].startswith("wsolbench: error: "), err
    assert sum(line.startswith("wsolbench: error") for line in lines) == 1, err
    return lines[-1]


@pytest.fixture
def maps_case(tmp_path):
    """Benchmark metadata for two images (no image files) and their maps."""
    meta, maps = tmp_path / "metadata" / "CUB", tmp_path / "maps"
    write_metadata(
        meta / "test",
        [("a.jpg", 0, 224, 224, ["50,50,99,99"]), ("b.jpg", 0, 224, 224, ["0,0,9,9"])],
    )
    for name, box in (("a.jpg", (50, 50, 100, 100)), ("b.jpg", (0, 0, 10, 10))):
        m = np.zeros((224, 224), np.float32)
        m[box[1] : box[3], box[0] : box[2]] = 1.0
        maps.mkdir(exist_ok=True)
        np.save(maps / f"{name}.npy", m)
    return meta, maps


def score(cli, maps_case, results, *extra):
    meta, maps = maps_case
    return cli("evaluate-maps", str(maps), "--metadata", str(meta), "--name", "x",
               "--results", str(results), *extra)  # fmt: skip


@pytest.fixture
def mount(tmp_path):
    """A real tmpfs of a few KiB (a full disk) or read-only (a read-only store)."""
    made = []

    def make(name: str, kib: int = 64, read_only: bool = False) -> Path:
        folder = tmp_path / name
        folder.mkdir()
        opts = f"size={kib}k" + (",ro" if read_only else "")
        if subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(folder)]).returncode:
            pytest.skip("mounting a tmpfs needs root (CI runs as root)")
        made.append(folder)
        return folder

    yield make
    for folder in made:
        subprocess.run(["umount", "-l", str(folder)], check=False)


# 1. Identity covers every input.


def test_changed_maps_in_the_same_folder_are_new_work(cli, tmp_path, maps_case):
    rc, _, err = score(cli, maps_case, tmp_path / "results")
    assert rc == 0, err
    (first,) = (tmp_path / "results").glob("*/record.json")
    before = json.loads(first.read_text())
    np.save(maps_case[1] / "b.jpg.npy", np.zeros((224, 224), np.float32))  # b now misses
    rc, _, err = score(cli, maps_case, tmp_path / "results")
    assert rc == 0 and "already finished" not in err, err
    records = [json.loads(p.read_text()) for p in (tmp_path / "results").glob("*/record.json")]
    assert len(records) == 2
    after = next(r for r in records if r["run_id"] != before["run_id"])
    assert before["metrics"]["maxboxaccv2"] == 100.0 and after["metrics"]["maxboxaccv2"] == 50.0


def test_checkpoint_in_a_config_file_is_its_content(tiny_runs, cli, tmp_path):
    """checkpoint: given in a config file is hashed like --checkpoint: two files, two
    runs, each record naming its own file's sha256; the same file by flag or by
    config is the same run."""
    a = tiny_runs["sat"] / "model.pt"
    state = torch.load(a, weights_only=True)
    state["model"] = {k: v + 0.5 if k.startswith("head") else v for k, v in state["model"].items()}
    b = tmp_path / "b.pt"
    torch.save(state, b)
    ids = {}
    for name, path in (("a", a), ("b", b)):
        cfg = tmp_path / f"{name}.yaml"
        cfg.write_text(
            f"method: sat\ncheckpoint: {path}\nepochs: 1\nkshot: 5\nseed: 3\neval_split: val\n"
        )
        rc, out, err = cli("run", "--config", str(cfg), "--results", str(tmp_path / "r"))
        assert rc == 0, err
        (rec,) = [
            json.loads(p.read_text())
            for p in (tmp_path / "r").glob("*/record.json")
            if json.loads(p.read_text())["run_id"] not in ids.values()
        ]
        ids[name] = rec["run_id"]
        assert rec["config"]["checkpoint_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert ids["a"] != ids["b"]
    rc, out, err = cli("evaluate", "sat", "--checkpoint", str(b), "--epochs", "1", "--kshot", "5",
                       "--seed", "3", "--eval-split", "val",
                       "--results", str(tmp_path / "r"))  # fmt: skip
    assert rc == 0 and "already finished" in err and ids["b"] in out


# 2. Finite, sane values.


@pytest.mark.parametrize(
    "args, message",
    [
        (["--lambda", "nan"], "lambda: must be a finite number, got nan"),
        (["--lr", "inf"], "lr: must be a finite number, got inf"),
        (["--weight-decay", "nan"], "weight_decay: must be a finite number"),
        (["--drop-path", "nan"], "drop_path: must be a finite number"),
        (["--loss-delay", "nan"], "loss_delay: must be a finite number"),
        (["--epochs", "1000000000000"], "epochs: must be <= 10000, got 1000000000000"),
        (["--kshot", "-1"], "kshot: must be >= 1, got -1"),
    ],
)
def test_non_finite_and_absurd_settings_are_one_line(cli, tmp_path, args, message):
    err = one_line_exit_2(*cli("run", "sat", *args, "--results", str(tmp_path / "r")))
    assert message in err and not (tmp_path / "r").exists()


def test_non_finite_method_option_and_sweep_value(cli, tmp_path):
    err = one_line_exit_2(*cli("run", "has", "--drop-rate", "nan"))
    assert "options: drop_rate must be a finite number, got nan" in err
    sweep = tmp_path / "s.yaml"
    sweep.write_text("method: sat\nsettings: {lr: .nan}\n")
    err = one_line_exit_2(*cli("sweep", str(sweep), "--dry-run"))
    assert "lr: must be a finite number" in err


@pytest.mark.parametrize(
    "line, message",
    [
        ("a.jpg,nan,10,120,80", "localization.txt:1: 'nan' is not a finite number"),
        ("a.jpg,0,0,inf,inf", "localization.txt:1: 'inf' is not a finite number"),
        ("a.jpg,300,300,400,400", "image 'a.jpg': a box lies wholly outside its 224x224 image"),
    ],
)
def test_metadata_coordinates_are_finite_and_inside(cli, tmp_path, line, message):
    meta = tmp_path / "m"
    write_metadata(meta / "test", [("a.jpg", 0, 224, 224, [line.split(",", 1)[1]])])
    np.save(tmp_path / "a.jpg.npy", np.zeros((224, 224), np.float32))
    err = one_line_exit_2(*cli("evaluate-maps", str(tmp_path), "--metadata", str(meta),
                               "--name", "x"))  # fmt: skip
    assert message in err


def test_a_one_pixel_box_is_legal_as_in_the_benchmark(cli, tmp_path):
    """x1 == x0: the benchmark's box of one pixel column, scored. A map lit exactly there:
    boundingRect (5, 5, 1, 11) gives the box (5, 5, 6, 16), +1 area 2 x 12 = 24; GT
    (5, 5, 5, 15) has area 11, all inside it: IoU 11 / 24 = 0.458, a hit at 0.3 only."""
    meta = tmp_path / "m"
    write_metadata(meta / "test", [("a.jpg", 0, 224, 224, ["5,5,5,15"])])
    m = np.zeros((224, 224), np.float32)
    m[5:16, 5] = 1.0
    np.save(tmp_path / "a.jpg.npy", m)
    rc, _, err = cli("evaluate-maps", str(tmp_path), "--metadata", str(meta), "--name", "x")
    assert rc == 0, err
    (rec,) = (tmp_path / "results").glob("*/record.json")
    metrics = json.loads(rec.read_text())["metrics"]
    assert (metrics["maxboxacc_iou30"], metrics["maxboxacc_iou50"]) == (100.0, 0.0)


def test_pxap_with_no_object_pixel_is_undefined(cli, tmp_path):
    """Masks with no object pixel: one line, as the benchmark refuses them, not 0.00."""
    acc = PixelAP()
    acc.update(MapBatch(np.full((1, 4, 4), 0.5), [np.zeros((0, 4))], np.zeros((1, 4, 4), np.uint8)))
    with pytest.raises(UserError, match="no object pixel"):
        acc.require_object_pixels()
    meta, masks = tmp_path / "m", tmp_path / "masks"
    write_metadata(meta / "test", [("a.jpg", 0, 8, 8, ["masks/a.png,"])])
    masks.mkdir()
    import cv2

    cv2.imwrite(str(masks / "a.png"), np.zeros((8, 8), np.uint8))
    np.save(tmp_path / "a.jpg.npy", np.full((224, 224), 0.5, np.float32))
    err = one_line_exit_2(*cli("evaluate-maps", str(tmp_path), "--metadata", str(meta),
                               "--mask-root", str(tmp_path), "--name", "x"))  # fmt: skip
    assert "PxAP: no object pixel in the masks scored" in err


def test_record_json_is_strict_json(tiny_runs, tmp_path):
    text = (tiny_runs["sat"] / "record.json").read_text()

    def refuse(name: str) -> None:
        raise ValueError(name)

    json.loads(text, parse_constant=refuse)  # no NaN, Infinity
    with pytest.raises(UserError, match="NaN or infinite; not written"):
        write_json(tmp_path / "r.json", {"loss": float("nan")})
    assert not list(tmp_path.iterdir())


# 3. One line for every failure, nothing left behind.

# An alias bomb: each level 9 copies of the one before (9 ** 13 strings if expanded),
# 108 aliases in all.
_NAMES = "abcdefghijklmn"
_LEVELS = "".join(
    f"{c}: &{c} [{', '.join([f'*{p}'] * 9)}]\n"
    for p, c in zip(_NAMES[:-1], _NAMES[1:], strict=True)
)
HOSTILE = {
    "deep": "a: " + "[" * 100_000 + "]" * 100_000,
    "aliases": "a: &a [x, x, x, x, x, x, x, x, x]\n" + _LEVELS + "batch_size: [*n]\n",
    # Fewer aliases, all under one key: the value is refused, and quoted short.
    "bomb": "batch_size: [&a [x, x, x, x, x, x, x, x, x], &b [*a, *a, *a, *a, *a, *a, *a, "
    "*a, *a], &c [*b, *b, *b, *b, *b, *b, *b, *b, *b], [*c, *c, *c, *c, *c, *c, *c, *c]]\n",
    "duplicate": "lr: 0.1\nlr: 0.2\n",
    "digest": "checkpoint_sha256: deadbeef\n",
    "pickle": "lr: !!python/object/apply:os.system ['true']\n",
}
HOSTILE_MESSAGES = {
    "deep": "nested deeper than 50 levels",
    "aliases": "more than 100 aliases",
    "bomb": "batch_size: must be an integer, got [['x', 'x', 'x', 'x', ...], [[...], [...],",
    "duplicate": "line 2: duplicate key 'lr'",
    "digest": "checkpoint_sha256: set by wsolbench from the files read",
    "pickle": "is not valid YAML",
}


@pytest.mark.parametrize("kind", sorted(HOSTILE) + ["binary", "huge", "endless"])
def test_hostile_config_files_are_one_line(cli, tmp_path, kind):
    path = tmp_path / "c.yaml"
    if kind == "endless":  # a device that claims size 0 and never ends
        path = Path("/dev/zero")
    elif kind == "binary":
        path.write_bytes(b"lr: \xff\xfe\n")
    elif kind == "huge":
        path.write_text("# " + "x" * (2 << 20))
    else:
        path.write_text(HOSTILE[kind])
    before = files_under(tmp_path)
    t0 = time.perf_counter()
    err = one_line_exit_2(*cli("run", "sat", "--config", str(path)))
    assert time.perf_counter() - t0 < 30  # not minutes of alias expansion
    want = {"binary": "not UTF-8 text (byte 4)", "huge": "larger than 1 MiB",
            "endless": "larger than 1 MiB"}.get(kind)  # fmt: skip
    assert (want or HOSTILE_MESSAGES[kind]) in err and str(path) in err and len(err) < 400
    assert files_under(tmp_path) == before


def test_bad_utf8_in_metadata_names_the_byte(cli, tmp_path):
    meta = tmp_path / "m" / "test"
    write_metadata(meta, [("a.jpg", 0, 224, 224, ["0,0,9,9"])])
    (meta / "class_labels.txt").write_bytes(b"a.jpg,\xff\n")
    err = one_line_exit_2(*cli("evaluate-maps", str(tmp_path), "--metadata", str(meta.parent),
                               "--name", "x"))  # fmt: skip
    assert "class_labels.txt: not UTF-8 text (byte 6)" in err


def test_an_unreadable_checkpoint_is_set_aside_and_the_run_starts_over(tmp_path, capsys):
    ckpt = tmp_path / "run" / "checkpoint.pt"
    ckpt.parent.mkdir()
    torch.save({"model": {}, "epoch": 2}, ckpt)
    ckpt.write_bytes(ckpt.read_bytes()[:40])  # truncated
    assert resumable(ckpt) == 0
    (aside,) = ckpt.parent.glob("checkpoint.unreadable-*.pt")
    assert not ckpt.exists() and aside.stat().st_size == 40
    assert "set aside" in capsys.readouterr().err
    good = {"model": {}, "optimizer": {}, "scheduler": {}, "rng": torch.get_rng_state(),
            "history": [], "epoch": 3}  # fmt: skip
    torch.save(good, ckpt)
    assert resumable(ckpt) == 3


def test_truncated_per_image_file_and_job_line(tiny_runs, cli, tmp_path):
    run = copy_runs(tiny_runs, ["sat"], tmp_path / "store")["sat"]
    npz = run / "per_image.npz"
    npz.write_bytes(npz.read_bytes()[:100])
    err = one_line_exit_2(*cli("show", run.name, "--results", str(tmp_path / "store")))
    assert "per_image.npz: not a readable per-image file" in err
    sweep = tmp_path / "s.yaml"
    sweep.write_text("name: t\nmethod: sat\nsettings: {epochs: 1, kshot: 5, seed: 3}\n")
    jobs = tmp_path / "store" / ".sweeps" / "t" / "jobs.jsonl"
    jobs.parent.mkdir(parents=True)
    jobs.write_text('\n{"run_id": "sa')  # a submission cut short mid-line
    rc, out, err = cli("sweep", "status", str(sweep), "--results", str(tmp_path / "store"))
    assert rc == 0 and "jobs.jsonl:2: not a job entry; skipped" in err
    assert f"| {run.name} |" in out and "| done " in out


def test_a_read_only_store_fails_before_the_work(cli, tmp_path, maps_case, mount):
    store = mount("ro", read_only=True)
    err = one_line_exit_2(*score(cli, maps_case, store))
    assert str(store) in err and "Read-only file system" in err
    err = one_line_exit_2(*cli("run", "sat", "--epochs", "1", "--results", str(store)))
    assert "Read-only file system" in err
    assert files_under(store) == set()


def test_a_full_disk_is_one_line_and_leaves_nothing(cli, tmp_path, maps_case, mount):
    store = mount("full", kib=16)
    filler = store / "filler"
    with open(filler, "wb", buffering=0) as f, pytest.raises(OSError):
        while True:
            f.write(b"\0" * 4096)
            f.flush()
    err = one_line_exit_2(*score(cli, maps_case, store))
    assert "No space left on device" in err
    assert files_under(store) == {filler}


def test_enospc_on_the_record_write_through_a_patched_fsync(cli, tmp_path, maps_case, monkeypatch):
    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr("wsolbench.core.store.os.fsync", full)
    err = one_line_exit_2(*score(cli, maps_case, tmp_path / "results"))
    assert "record.json: cannot write (No space left on device)" in err
    assert files_under(tmp_path / "results") == set()


def test_out_paths_of_the_wrong_kind(tiny_runs, cli, tmp_path):
    copy_runs(tiny_runs, ["sat"], tmp_path / "store")
    run_id = tiny_runs["sat"].name
    (tmp_path / "a-file").write_text("")
    err = one_line_exit_2(*cli("export-maps", run_id, "--out", str(tmp_path / "a-file"),
                               "--results", str(tmp_path / "store")))  # fmt: skip
    assert "a-file: is a file, not a folder" in err
    err = one_line_exit_2(*cli("report", "--results", str(tmp_path / "nowhere")))
    assert "--results" in err and "no such folder" in err


# 4. Identical work runs once.


def test_two_identical_evaluations_started_together_run_once(tiny_runs, tmp_path):
    """Two processes: one evaluates, the other waits for it (or finds its record) and
    prints the same record; one run folder."""
    model = str(tiny_runs["sat"] / "model.pt")
    # Scored on val: the race is the same at a third of the scoring.
    args = ["wsolbench", "evaluate", "sat", "--checkpoint", model, "--epochs", "1",
            "--kshot", "5", "--seed", "3", "--eval-split", "val",
            "--results", str(tmp_path / "r")]  # fmt: skip
    procs = [subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]  # fmt: skip
    results = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], results
    assert results[0][0] == results[1][0]  # the same table, the same run id
    assert sum("already finished" in err for _, err in results) == 1
    assert len(list((tmp_path / "r").glob("*/record.json"))) == 1
    assert not (tmp_path / "r" / ".locks").exists()


def test_no_wait_names_the_holder_and_a_dead_holder_is_taken_over(cli, tmp_path):
    from wsolbench.train.plan import plan

    store = tmp_path / "results"
    run_id = plan({"method": "sat", "epochs": 1}).cfg.run_id
    lock = store / ".locks" / f"{run_id}.lock"
    with held(lock, what="x") as first:
        assert first
        err = one_line_exit_2(*cli("run", "sat", "--epochs", "1", "--no-wait", "--results",
                                   str(store)))  # fmt: skip
        assert f"run {run_id} is running elsewhere ({socket.gethostname()}, pid" in err
    assert not store.exists()  # the lock's folders went with it
    # A lock left by a process that died is stale: the next holder takes it over.
    lock.parent.mkdir(parents=True)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()  # fmt: skip
    lock.write_text(json.dumps({"host": socket.gethostname(), "pid": int(dead), "since": 0}))
    with held(lock, wait=False, what="x") as first:
        assert first
    assert not lock.exists()


def test_no_wait_refuses_a_live_twin(tmp_path):
    lock = tmp_path / ".locks" / "r.lock"
    with held(lock, what="run r"):
        with pytest.raises(UserError, match=r"run r is running elsewhere \(.*pid \d+, since"):
            with held(lock, wait=False, what="run r"):
                pass
    assert not lock.parent.exists()


# 6. A shared store.


def test_store_files_follow_the_umask_and_a_corrupt_record_is_skipped(tiny_runs, cli, tmp_path):
    assert (tiny_runs["sat"] / "record.json").stat().st_mode & 0o044 == 0o044  # umask 022
    runs = copy_runs(tiny_runs, ["sat", "tscam"], tmp_path / "store")
    (runs["tscam"] / "record.json").write_text('{"run_id": "tscam-')
    rc, out, err = cli("report", "--results", str(tmp_path / "store"))
    assert rc == 0 and runs["sat"].name in out and runs["tscam"].name not in out
    assert "warning: skipped:" in err and "tscam" in err
    evil = json.loads((runs["sat"] / "record.json").read_text()) | {"run_id": "../../etc/evil"}
    (runs["sat"] / "record.json").write_text(json.dumps(evil))
    rc, out, err = cli("report", "--results", str(tmp_path / "store"))
    assert rc == 0 and "evil" not in out and "is not its folder's name" in err


# 5. and 7. Cheap validation; SIGTERM.


def test_bad_settings_are_refused_before_torch_is_imported():
    code = ("import sys; from wsolbench.cli import main; rc = main(['run', 'sat', '--kshot', "
            "'-1']); print(rc, 'torch' in sys.modules)")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout
    assert out.split() == ["2", "False"]


@pytest.mark.slow
def test_sigterm_is_one_line_and_leaves_no_empty_run_folder(tmp_path):
    proc = subprocess.Popen(["wsolbench", "run", "sat", "--epochs", "3", "--results",
                             str(tmp_path / "r")], stderr=subprocess.PIPE, text=True)  # fmt: skip
    # The lock exists once the run is planned (the handler installed long before) and
    # training is about to start: terminate then, before the first epoch's checkpoint.
    deadline = time.monotonic() + 300
    while not list((tmp_path / "r").glob(".locks/*.lock")) and time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()[1]
        time.sleep(0.2)
    proc.terminate()
    _, err = proc.communicate(timeout=120)
    assert (
        proc.returncode == 143 and err.strip().splitlines()[-1] == "wsolbench: terminated (SIGTERM)"
    )
    assert "Traceback" not in err
    for folder in (tmp_path / "r").glob("sat-*"):
        assert (folder / "checkpoint.pt").exists()  # a folder only with a checkpoint to resume
    assert not (tmp_path / "r" / ".locks").exists()


def _hostile(tmp_path: Path) -> Path:
    path = tmp_path / "hostile.yaml"
    path.write_text(HOSTILE["deep"])
    return path


@pytest.mark.parametrize(
    "argv",
    [
        ["run", "sat", "--config", "{hostile}"],
        ["evaluate", "sat", "--checkpoint", "{tmp}/none.pt"],
        ["sweep", "{hostile}", "--dry-run"],
        ["sweep", "status", "{hostile}"],
        ["tune", "sat", "--space", "{hostile}"],
        ["report", "table1", "--results", "{tmp}/none"],
        ["show", "../../etc", "--results", "{tmp}"],
        ["compare", "sat-x", "sat-y", "--results", "{tmp}"],
        ["export-maps", "sat-x", "--out", "{tmp}/o", "--results", "{tmp}"],
        ["evaluate-maps", "{tmp}", "--metadata", "{tmp}/none", "--name", "x"],
        ["bench", "metrics", "--images", "0"],
        ["pretrain", "--backbone", "resnet9000"],
        ["run", "sat", "--lambda", "nan"],
    ],
    ids=lambda argv: " ".join(argv[:2]),
)
def test_every_command_refuses_bad_input_in_one_line(cli, tmp_path, argv):
    hostile = _hostile(tmp_path)
    args = [a.format(hostile=hostile, tmp=tmp_path) for a in argv]
    before = files_under(tmp_path)
    one_line_exit_2(*cli(*args))
    assert files_under(tmp_path) == before


def test_a_map_whose_header_claims_a_huge_shape_is_refused_before_allocating(cli, tmp_path):
    """A 200-byte .npy claiming 400,000 x 400,000 float64 (1.2 TB) is one line, not a
    MemoryError: the header is checked against the file before anything is read."""
    import io

    meta = tmp_path / "m"
    write_metadata(meta / "test", [("a.jpg", 0, 224, 224, ["0,0,9,9"])])
    buf = io.BytesIO()
    np.save(buf, np.zeros((2, 2)))
    (tmp_path / "a.jpg.npy").write_bytes(buf.getvalue().replace(b"(2, 2)", b"(400000, 400000)"))
    err = one_line_exit_2(*cli("evaluate-maps", str(tmp_path), "--metadata", str(meta),
                               "--name", "x"))  # fmt: skip
    assert "a.jpg.npy: the header claims shape (400000, 400000), the file holds less" in err


def test_a_signal_landing_just_after_the_lock_is_taken_leaves_nothing(tmp_path, monkeypatch):
    """SIGTERM can arrive between the lock file appearing and the holder's cleanup being
    set up: the lock (whole, with this attempt's token) and its folders go anyway."""
    import wsolbench.core.lock as lock_module

    real_link = os.link

    def link_then_signal(src, dst):
        real_link(src, dst)
        raise KeyboardInterrupt  # as the SIGTERM handler's exception would land here

    monkeypatch.setattr(lock_module.os, "link", link_then_signal)
    lock = tmp_path / "results" / ".locks" / "r.lock"
    with pytest.raises(KeyboardInterrupt):
        with held(lock, what="run r"):
            pass
    assert not (tmp_path / "results").exists()
    # A twin holding the same lock in this process keeps it when a second attempt fails.
    monkeypatch.setattr(lock_module.os, "link", real_link)
    with held(lock, what="run r"):
        with pytest.raises(UserError, match="running elsewhere"):
            with held(lock, wait=False, what="run r"):
                pass
        assert json.loads(lock.read_text())["pid"] == os.getpid()
    assert not (tmp_path / "results").exists()


def test_a_filesystem_without_hard_links_still_locks(tmp_path, monkeypatch):
    import wsolbench.core.lock as lock_module

    def no_links(src, dst):
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(lock_module.os, "link", no_links)
    lock = tmp_path / ".locks" / "r.lock"
    with held(lock, what="run r"):
        assert json.loads(lock.read_text())["pid"] == os.getpid()
        with pytest.raises(UserError, match="running elsewhere"):
            with held(lock, wait=False, what="run r"):
                pass
    assert not lock.parent.exists()


def test_a_full_disk_without_hard_links_leaves_no_empty_lock(tmp_path, monkeypatch):
    """Where the lock is made by an exclusive create and then written, a write that
    fails (a full disk) is one line, and the empty lock file goes with its folders."""
    import wsolbench.core.lock as lock_module

    def no_links(src, dst):
        raise OSError(errno.EPERM, "Operation not permitted")

    def full(obj, f):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(lock_module.os, "link", no_links)
    monkeypatch.setattr(lock_module.json, "dump", full)
    lock = tmp_path / "results" / ".locks" / "r.lock"
    with pytest.raises(UserError, match=r"r\.lock: cannot take the lock \(No space left"):
        with held(lock, what="run r"):
            pass
    assert not (tmp_path / "results").exists()
