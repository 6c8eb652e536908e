"""The example method in docs/adding-a-method.md, shipped as a separate installed
distribution through the `wsolbench.methods` entry point, trains, evaluates and
records without any change to wsolbench."""

import json
import re
import sys

import pytest
from conftest import REPO, listed, with_distribution


def install(tmp_path, code: str, name: str) -> dict:
    """``code`` as an installed distribution exposing it under the entry point group."""
    site = tmp_path / f"site-{name}"
    (site / f"guide_{name}").mkdir(parents=True)
    (site / f"guide_{name}" / "__init__.py").write_text(code)
    dist = site / f"guide_{name}-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: guide-{name}\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(f"[wsolbench.methods]\n{name} = guide_{name}\n")
    return {"PYTHONPATH": str(site)}


def guide_examples() -> list[str]:
    guide = (REPO / "docs" / "adding-a-method.md").read_text()
    return re.findall(r"```python\n(.*?)```", guide, re.S)


# Scored on val (300 images) in test's place, as a tuning trial is: the whole path runs,
# at a third of the scoring.
EXAMPLE_RUN = ("--epochs", "1", "--kshot", "5", "--eval-split", "val")


def run_example(cli_process, tmp_path, name: str, *extra: str) -> dict:
    """The example's record, run by the installed command in a new process."""
    env = install(tmp_path, guide_examples()[["patchnorm", "mixcam"].index(name)], name)
    store = tmp_path / "store"
    args = (*EXAMPLE_RUN, *extra)
    rc, out, err = cli_process("run", name, *args, "--results", str(store), env=env)
    assert rc == 0, err
    (record,) = store.glob(f"{name}-synthetic-*/record.json")
    return json.loads(record.read_text())


@pytest.mark.slow
def test_guide_example_runs_from_an_installed_distribution(cli_process, cli, tmp_path, monkeypatch):
    rec = run_example(cli_process, tmp_path, "patchnorm")
    listing = listed(cli, monkeypatch, tmp_path / "site-patchnorm", "guide_patchnorm")
    assert "patchnorm" in listing and "norm of each final patch token" in listing
    assert rec["method"] == "patchnorm" and rec["class_aware"] is False
    assert len(rec["history"]) == 1 and 0 <= rec["metrics"]["gt_known_loc"] <= 100


def test_guide_cnn_example_overrides_the_training_step(cli, tmp_path, monkeypatch):
    # In this process (the example above proves a new process finds a distribution).
    env = install(tmp_path, guide_examples()[1], "mixcam")
    with_distribution(monkeypatch, env["PYTHONPATH"])
    try:
        rc, _, err = cli("run", "mixcam", *EXAMPLE_RUN, "--alpha", "0.5", "--results", "store")
    finally:
        sys.modules.pop("guide_mixcam", None)
    assert rc == 0, err
    (record,) = (tmp_path / "store").glob("mixcam-synthetic-*/record.json")
    rec = json.loads(record.read_text())
    assert rec["config"]["backbone"] == "wsolbench_resnet_micro_64"
    assert rec["config"]["options"] == {"alpha": 0.5} and rec["class_aware"] is True
    assert 0 < rec["history"][0]["lam"] < 1  # logged by its own training step
    lrs = sorted(g["lr"] for g in rec["param_groups"])
    assert lrs[1] == 10 * lrs[0]  # the classifier at 10x, as CAMBase sets it
    assert 0 <= rec["metrics"]["maxboxaccv2"] <= 100
