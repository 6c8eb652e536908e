"""The example method in docs/adding-a-method.md, shipped as a separate installed
distribution through the `wsolbench.methods` entry point, trains, evaluates and
records without any change to wsolbench."""

import json
import re

from conftest import REPO


def test_guide_example_runs_from_an_installed_distribution(cli_process, tmp_path):
    guide = (REPO / "docs" / "adding-a-method.md").read_text()
    code = re.search(r"```python\n(.*?)```", guide, re.S).group(1)
    site = tmp_path / "site"
    (site / "guide_example").mkdir(parents=True)
    (site / "guide_example" / "__init__.py").write_text(code)
    dist = site / "guide_example-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: guide-example\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[wsolbench.methods]\npatchnorm = guide_example\n")
    env = {"PYTHONPATH": str(site)}

    rc, out, err = cli_process("list", env=env)
    assert rc == 0 and "patchnorm" in out and "norm of each final patch token" in out
    store = tmp_path / "store"
    rc, out, err = cli_process(
        "run", "patchnorm", "--epochs", "1", "--kshot", "5", "--results", str(store), env=env
    )
    assert rc == 0, err
    (record,) = store.glob("patchnorm-synthetic-*/record.json")
    rec = json.loads(record.read_text())
    assert rec["method"] == "patchnorm" and rec["class_aware"] is False
    assert len(rec["history"]) == 1 and 0 <= rec["metrics"]["gt_known_loc"] <= 100
