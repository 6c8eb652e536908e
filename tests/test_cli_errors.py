"""Bad input: one line naming what is wrong, exit 2, no traceback, nothing written."""

import subprocess
import sys

import pytest
import torch

from wsolbench.cli import COMMANDS, main


@pytest.fixture
def store(tmp_path):
    return tmp_path / "results"


def run_bad(capsys, store, *argv):
    code = main(["run", *argv, "--results", str(store)])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.startswith("wsolbench: error: ") and "\n" not in err, err
    assert "Traceback" not in err
    assert not store.exists() or not any(store.iterdir())
    return err


@pytest.mark.parametrize(
    "argv, expect",
    [
        (
            ["nosuch"],
            "unknown method 'nosuch' (known: acol, adl, attnmap, cam, cutmix, has, sat, spg, "
            "tscam)",
        ),
        (["sat", "--dataset", "nosuch"], "unknown dataset 'nosuch' (known:"),
        (["sat", "--freeze", "z"], "freeze: unknown preset 'z' (known: a, b, c, d, e, e_proj)"),
        (["sat", "--lambda", "1.5"], "lambda: must be in (0.0, 1.0), got 1.5"),
        (["sat", "--batch-size", "0"], "batch_size: must be >= 1, got 0"),
        (["sat", "--epochs", "abc"], "argument --epochs: invalid int value: 'abc'"),
        (["sat", "--kshot", "two"], "kshot: must be an integer, got 'two'"),
        (["sat", "--schedule", "linear"], "schedule: must be one of constant, cosine, step"),
        (["sat", "--schedule", "step"], "lr_steps: the step schedule needs the epochs"),
        (["sat", "--lr-steps", "3,x"], "lr_steps: must be epochs separated by commas"),
        (["sat", "--lr", "nan"], "lr: must be a finite number, got nan"),
        (["sat", "--recipe", "tscam-cub"], "recipe: dataset synthetic has one recipe"),
        (["tscam", "--box-rule", "tscam"], "cam_threshold: the tscam box rule needs"),
        (
            ["cam", "--optimizer", "sgd", "--nesterov", "--momentum", "0"],
            "nesterov: Nesterov momentum needs momentum > 0",
        ),
        (["sat", "--backbone", "no_such_vit"], "backbone 'no_such_vit': Unknown model"),
        (["sat", "--backbone", "resnet18"], "backbone: resnet18 is a CNN; method sat needs a ViT"),
        (["has", "--drop-rate", "2"], "options: drop_rate must be in [0, 1], got 2.0"),
        (["adl", "--at", "layer9.0"], "options: at: 'layer9.0': the trunk has no module 'layer9'"),
        (["sat", "--pretrained", "missing.pt"], "missing.pt: weights file not found"),
        (["sat", "--sat-blocks", "x"], "argument --sat-blocks: invalid int value: 'x'"),
        (["sat", "--loss-delay", "2"], "loss_delay: must be in [0.0, 1.0), got 2.0"),
        (["sat", "--eval-workers", "-1"], "eval_workers: must be >= 0, got -1"),
        ([], "no method given"),
    ],
)
def test_bad_flags(capsys, store, argv, expect):
    assert expect in run_bad(capsys, store, *argv)


def test_kshot_larger_than_a_class(capsys, store):
    err = run_bad(capsys, store, "sat", "--kshot", "401")
    assert "kshot: 401 is more than class" in err and "(400 training images)" in err


def test_unreadable_checkpoint(capsys, store, tmp_path):
    bad = tmp_path / "garbage.pt"
    bad.write_bytes(b"this is not a checkpoint")
    assert "garbage.pt: not a readable checkpoint" in run_bad(
        capsys, store, "sat", "--pretrained", str(bad)
    )


def test_mismatched_checkpoint_names_key_and_shapes(capsys, store, tmp_path):
    ckpt = tmp_path / "other.pth"
    torch.save({"model": {"blocks.0.attn.qkv.weight": torch.zeros(3, 3)}}, ckpt)
    err = run_bad(capsys, store, "sat", "--pretrained", str(ckpt))
    assert "first mismatch: blocks.0.attn.qkv.weight: checkpoint (3, 3) vs model (288, 96)" in err


@pytest.mark.parametrize(
    "text, expect",
    [
        ("lamda: 0.3\n", "run.yaml: lamda: unknown key"),
        ("seed: x\n", "run.yaml: seed: must be an integer"),
    ],
)
def test_bad_config_file(capsys, store, tmp_path, text, expect):
    cfg = tmp_path / "run.yaml"
    cfg.write_text(text)
    assert expect in run_bad(capsys, store, "sat", "--config", str(cfg))


def test_real_process_prints_one_line(cli_process, tmp_path):
    code, out, err = cli_process("run", "sat", "--lambda", "2", "--results", str(tmp_path / "r"))
    assert code == 2 and out == ""
    assert err == "wsolbench: error: lambda: must be in (0.0, 1.0), got 2.0\n"
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_every_help_prints(capsys, command):
    argv = ["--help"] if command is None else [command, "--help"]
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 0
    assert capsys.readouterr().out.startswith("usage: wsolbench")


def test_help_answers_without_importing_torch():
    probe = (
        "import sys, contextlib, io\n"
        "from wsolbench.cli import main\n"
        "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
        "    main(['--help'])\n"
        "print(sorted(m for m in ('torch', 'pandas', 'timm') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def _help(capsys, *argv: str) -> str:
    with pytest.raises(SystemExit):
        main([*argv, "--help"])
    return capsys.readouterr().out


def test_help_texts_say_what_each_choice_is(capsys):
    """bench lists its benchmarks by name (no empty choice); show's picks have text; run
    without a method names which methods own an option, not their defaults."""
    bench = _help(capsys, "bench")
    assert "{," not in bench and "any of mainjob, metrics, evalmaps, train" in bench
    show = " ".join(_help(capsys, "show").split())
    assert "--worst the test images of lowest IoU (default)" in show
    run = " ".join(_help(capsys, "run").split())
    assert "--drop-rate DROP_RATE an option of adl, has: see `wsolbench run adl --help`" in run
    assert "(default has:" not in run
