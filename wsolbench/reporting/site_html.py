"""The HTML report's primitives: escaping, a page with the site's navigation, a
sortable table, and the digest a page is redrawn by (``site``, ``site_pages``)."""

from __future__ import annotations

import hashlib
import html
import json
from pathlib import Path

from wsolbench.core.record import RunRecord
from wsolbench.core.store import atomic_write

SETTINGS = ["method", "dataset", "backbone", "recipe", "kshot", "freeze", "lambda", "frame"]
NAV = [("index.html", "runs"), ("tables.html", "paper tables"), ("compare.html", "comparisons"),
       ("sweeps.html", "sweeps")]  # fmt: skip


def esc(value: object) -> str:
    return html.escape("" if value is None else str(value))


def page(out: Path, name: str, title: str, body: str, depth: int = 0) -> None:
    """A page with the site's navigation, stylesheet and script (relative paths)."""
    up = "../" * depth
    nav = " ".join(f'<a href="{up}{href}">{text}</a>' for href, text in NAV)
    text = (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{esc(title)}'
        f'</title><link rel="stylesheet" href="{up}assets/site.css">'
        f'<script src="{up}assets/site.js"></script></head><body><nav>{nav}</nav>'
        f"<h1>{esc(title)}</h1>{body}</body></html>"
    )
    atomic_write(out / name, lambda f: f.write(text.encode()))


def table(headers: list[tuple[str, str]], rows: list[list[tuple[str, object]]], cls: str) -> str:
    """An HTML table; ``headers`` (key, label); each cell (html, sort value)."""
    head = "".join(
        f'<th data-key="{esc(k)}" class="{"text" if k in TEXT else ""}">{esc(label)}</th>'
        for k, label in headers
    )
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="{"text" if k in TEXT else ""}" data-value="{esc(v)}">{cell}</td>'
            for (k, _), (cell, v) in zip(headers, row, strict=True)
        )
        + "</tr>"
        for row in rows
    )
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


TEXT = {"run_id", *SETTINGS, "protocol", "runs", "metric", "state", "error", "log", "row",
        "source"}  # fmt: skip


def digest(record: RunRecord) -> str:
    return hashlib.sha256(
        json.dumps(record.to_dict(), sort_keys=True, default=str).encode()
    ).hexdigest()
