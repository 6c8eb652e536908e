"""The README and docs/ cannot rot: every relative link and image resolves, and every
``wsolbench`` command in a shell block either runs here (synthetic data, help, lists,
dry runs, reports of an empty store) or says what it needs with ``# needs: ...``."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from conftest import REPO

PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
BLOCK = re.compile(r"```(\w*)\n(.*?)```", re.S)
SHELL = ("bash", "sh", "shell", "console")


def links(page: Path) -> list[str]:
    text = BLOCK.sub("", page.read_text())  # links inside code are code, not links
    return [t for t in LINK.findall(text) if not re.match(r"[a-z]+:", t) and not t.startswith("#")]


def commands(page: Path) -> list[str]:
    """The ``wsolbench`` lines of the page's shell blocks (continuations joined)."""
    out = []
    for lang, body in BLOCK.findall(page.read_text()):
        if lang not in SHELL:
            continue
        for line in body.replace("\\\n", " ").splitlines():
            line = line.strip().removeprefix("$ ")
            if "wsolbench " in line and not line.startswith("#"):
                out.append(line)
    return out


def runnable(line: str) -> str | None:
    """The command to run, or None when the line says what it needs."""
    code, _, comment = line.partition("#")
    if comment.strip().startswith("needs:"):
        return None
    return code.strip()


def test_every_relative_link_and_image_resolves():
    broken = [
        f"{page.relative_to(REPO)}: {target}"
        for page in PAGES
        for target in links(page)
        if not (page.parent / target.split("#")[0]).exists()
    ]
    assert not broken, broken
    assert len(links(REPO / "README.md")) >= 14  # the docs map: one link per page


def test_the_readme_is_a_tour():
    assert len((REPO / "README.md").read_text().splitlines()) <= 250


def test_the_readme_test_command_is_what_ci_runs():
    """``.ci/run`` runs the README's test command verbatim (its last line)."""
    (line,) = [c for c in commands_of(REPO / "README.md") if "python -m pytest" in c]
    ci = (REPO / ".ci" / "run").read_text().strip().splitlines()[-1]
    assert line.partition("  # needs:")[0].strip() == ci.strip()


def commands_of(page: Path) -> list[str]:
    """Every line of the page's shell blocks."""
    return [ln.strip() for lang, body in BLOCK.findall(page.read_text()) if lang in SHELL
            for ln in body.splitlines()]  # fmt: skip


RUNNABLE = [
    pytest.param(cmd, id=f"{page.name}:{cmd[:60]}")
    for page in PAGES
    for line in commands(page)
    if (cmd := runnable(line))
]


def test_the_pages_have_commands_and_every_other_one_says_what_it_needs():
    every = [line for page in PAGES for line in commands(page)]
    assert len(RUNNABLE) >= 5 and len(every) > len(RUNNABLE)
    for line in every:
        assert runnable(line) or re.search(r"# needs: \S", line), line


@pytest.mark.parametrize("cmd", RUNNABLE)
def test_runnable_command_exits_0(cli, tmp_path, cmd):
    """Run as the shell would (no pipes or redirections in these lines), in a fresh
    folder with an empty results store."""
    (tmp_path / "results").mkdir()
    args = shlex.split(cmd)
    assert args[0] == "wsolbench" and not {">", "|", "&&"} & set(args), cmd
    code, out, err = cli(*args[1:], cwd=tmp_path)
    assert code == 0, f"{cmd}: {err}"
