"""Plugins are found by folder and by entry point; the top-level datasets/ folder
never shadows an installed `datasets` package."""

import subprocess
import sys
import uuid

from conftest import REPO, listed

from wsolbench.core.registry import METHODS

PLUGIN = """
from wsolbench.models.method import Method
from wsolbench.core.registry import register_method


@register_method("{name}")
class Demo(Method):
    description = "{description}"
"""


def test_new_file_in_methods_folder_is_listed(cli, tmp_path, monkeypatch):
    # A second folder on the methods package's path stands for the checkout's
    # methods/ folder, so the test writes nothing into the checkout.
    import wsolbench.methods as package

    name = f"zz_demo_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(
        PLUGIN.format(name=name, description="a method dropped into methods/")
    )
    METHODS.names()  # the shipped plugins found first: they register only on import
    monkeypatch.setattr(package, "__path__", [*package.__path__, str(tmp_path)])
    monkeypatch.setattr(METHODS, "_items", dict(METHODS._items))
    monkeypatch.setattr(METHODS, "_discovered", False)
    code, out, err = cli("list")
    sys.modules.pop(f"wsolbench.methods.{name}", None)
    assert code == 0, err
    assert name in out and "a method dropped into methods/" in out
    assert "sat" in out and "synthetic" in out


def test_entry_point_plugin_from_installed_distribution(cli, tmp_path, monkeypatch):
    site = tmp_path / "site"
    (site / "extmethod_pkg").mkdir(parents=True)
    (site / "extmethod_pkg" / "__init__.py").write_text(
        PLUGIN.format(name="ext_demo", description="shipped in another distribution")
    )
    dist = site / "extmethod_pkg-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: extmethod-pkg\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[wsolbench.methods]\next_demo = extmethod_pkg\n")
    out = listed(cli, monkeypatch, site, "extmethod_pkg")
    assert "ext_demo" in out and "shipped in another distribution" in out


def test_top_level_datasets_folder_does_not_shadow(tmp_path):
    fake = tmp_path / "site" / "datasets"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("ORIGIN = 'installed'\n")
    probe = (
        "import datasets; from wsolbench.core.registry import DATASETS; "
        "print(datasets.ORIGIN, 'synthetic' in DATASETS.names())"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(tmp_path / "site"), "PATH": "/usr/bin:/bin"},
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["installed", "True"]
    assert not (REPO / "datasets" / "__init__.py").exists()
