"""`wsolbench report html` in a real browser: headless Chromium from Debian's packages
(`slurm/cluster.sh install` installs it; CI runs it) opens the built site from
file://, runs its script, and takes screenshots."""

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import copy_runs
from PIL import Image

# One worker builds the module's site once (--dist loadgroup), not one site per worker.
pytestmark = pytest.mark.xdist_group("site")

CHROMIUM = shutil.which("chromium")
needs_browser = pytest.mark.skipif(
    CHROMIUM is None, reason="Debian's chromium is not installed (`slurm/cluster.sh install`)"
)


def browse(tmp_path: Path, url: str, *args: str) -> tuple[str, str]:
    """(DOM after the page's scripts ran, the browser's log) for ``url``."""
    flags = [
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={tmp_path / 'chromium-profile'}", "--enable-logging=stderr",
        "--log-level=0", "--virtual-time-budget=5000",
    ]  # fmt: skip
    proc = subprocess.run([CHROMIUM, *flags, *args, url], capture_output=True, text=True,
                          timeout=180)  # fmt: skip
    return proc.stdout, proc.stderr


def console_lines(log: str) -> list[str]:
    return [line for line in log.splitlines() if ":CONSOLE" in line]


@pytest.fixture(scope="module")
def site(tiny_runs, tmp_path_factory):
    """Three runs (two of them a comparable pair), a sweep with a failed run, the site."""
    from wsolbench.cli import main

    root = tmp_path_factory.mktemp("site")
    runs = copy_runs(tiny_runs, ["sat", "tscam", "cam"], root / "store")
    jobs = root / "store" / ".sweeps" / "mine" / "jobs.jsonl"
    jobs.parent.mkdir(parents=True)
    failed = root / "store" / "sat-synthetic-failedrun0"
    failed.mkdir()
    (failed / "error.txt").write_text("Traceback ...\nValueError: the last line\n")
    entries = [
        {"run_id": r, "job_id": str(i), "log": f"logs/{i}.out"}
        for i, r in enumerate([runs["sat"].name, failed.name])
    ]
    jobs.write_text("".join(json.dumps(e) + "\n" for e in entries))
    assert main(["report", "html", "--out", str(root / "site"), "--results",
                 str(root / "store")]) == 0  # fmt: skip
    return root, runs


def test_the_site_is_self_contained_and_rebuilds_only_what_changed(site, capsys):
    from wsolbench.cli import main

    root, runs = site
    text = "".join(
        p.read_text() for p in (root / "site").rglob("*") if p.suffix in (".html", ".css", ".js")
    )
    assert "http://" not in text and "https://" not in text  # no CDN, no network
    sweeps = (root / "site" / "sweeps.html").read_text()
    assert "failed" in sweeps and "ValueError: the last line" in sweeps and "logs/1.out" in sweeps
    capsys.readouterr()
    args = ["report", "html", "--out", str(root / "site"), "--results", str(root / "store")]
    assert main(args) == 0 and "(0 drawn anew)" in capsys.readouterr().out
    record = runs["cam"] / "record.json"
    data = json.loads(record.read_text())
    data["notes"] = ["changed"]
    record.write_text(json.dumps(data))
    assert main(args) == 0 and "(1 drawn anew)" in capsys.readouterr().out


@needs_browser
def test_the_index_opens_without_console_errors_and_lists_every_run(site, tmp_path):
    root, runs = site
    dom, log = browse(tmp_path, (root / "site" / "index.html").as_uri(), "--dump-dom")
    assert console_lines(log) == [], console_lines(log)
    for folder in runs.values():
        assert f'href="runs/{folder.name}.html"' in dom


@needs_browser
def test_sorting_a_column_reorders_the_rows(site, tmp_path):
    root, runs = site
    by_value = sorted(
        (json.loads((f / "record.json").read_text())["metrics"]["maxboxaccv2"], f.name)
        for f in runs.values()
    )
    for suffix, expected in (("", by_value), ("&desc", by_value[::-1])):
        url = (root / "site" / "index.html").as_uri() + f"#sort=maxboxaccv2{suffix}"
        dom, log = browse(tmp_path, url, "--dump-dom")
        assert console_lines(log) == []
        first_table = dom.split("</table>")[0]
        order = re.findall(r'<tr><td class="text" data-value="([^"]+)">', first_table)
        assert order == [name for _, name in expected]


@needs_browser
def test_a_run_page_loads_its_images_and_screenshots_are_not_blank(site, tmp_path):
    root, runs = site
    page = root / "site" / "runs" / f"{runs['sat'].name}.html"
    dom, log = browse(tmp_path, page.as_uri(), "--dump-dom")
    assert console_lines(log) == []
    loaded, total = map(int, re.search(r'data-images="(\d+)/(\d+)"', dom).groups())
    assert total == 3 and loaded == total  # the worst / best / random overlays
    assert dom.count("<svg") >= 4  # the curves
    for name, url in (("index", (root / "site" / "index.html").as_uri()), ("run", page.as_uri())):
        shot = tmp_path / f"{name}.png"
        browse(tmp_path, url, "--window-size=1280,900", f"--screenshot={shot}")
        pixels = np.asarray(Image.open(shot).convert("L"), np.float64)
        assert pixels.shape == (900, 1280) and pixels.std() > 10, name  # text and tables, not blank
