"""One way to write a report page: a self-contained HTML page of figures, and PNG files written atomically.

A page of plotly figures inlines plotly.js once, so it opens offline; the callers import matplotlib and plotly (their
`plots` extra)."""

from __future__ import annotations

import html
import io
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from training.common.atomic import atomic_write_bytes, check_folder, check_output_folder

# (heading, the figure: a PNG file name beside the page, a plotly Figure, or None; a note shown instead of no figure)
Section = tuple[str, Any, str]
# How every page `report_page` writes begins: an earlier report's index.html is known by it.
_HEAD = '<!doctype html>\n<html><head><meta charset="utf-8"><title>'


def report_page(
    title: str, intro: str, sections: Sequence[Section], appendix: str = "", links: Sequence[tuple[str, str]] = ()
) -> str:
    """The page: `title`, `intro` and `links` (text, href), each section's figure (or note), then `appendix`."""
    parts, inlined = [], False
    for heading, figure, note in sections:
        if figure is None:
            body = f"<p><em>Skipped: {html.escape(note)}</em></p>"
        elif isinstance(figure, str):
            body = f'<img src="{html.escape(figure)}" alt="{html.escape(heading)}">'
        else:
            body = figure.to_html(full_html=False, include_plotlyjs=not inlined, config={"displaylogo": False})
            inlined = True
        parts.append(f"<section><h2>{html.escape(heading)}</h2>{body}</section>")
    anchors = "".join(f' <a href="{html.escape(href)}">{html.escape(text)}</a>' for text, href in links)
    tail = f"<section><pre>{html.escape(appendix)}</pre></section>" if appendix else ""
    return (
        f"{_HEAD}{html.escape(title)}</title>"
        "<style>body{font-family:sans-serif;margin:2em}pre{font-size:12px}img{max-width:100%}</style></head><body>\n"
        f"<h1>{html.escape(title)}</h1>\n<p>{html.escape(intro)}{anchors}</p>\n"
        + "\n".join(parts)
        + f"\n{tail}</body></html>\n"
    )


def save_png(figure: Any, path: str | os.PathLike[str]) -> None:
    """Write a matplotlib figure as a PNG file (atomically: a reader never sees half a file) and close it."""
    atomic_write_bytes(path, png_bytes(figure))


def png_bytes(figure: Any) -> bytes:
    """A matplotlib figure as PNG bytes; the figure is closed."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    try:
        figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    finally:
        plt.close(figure)
    return buffer.getvalue()


def check_report_folder(path: str | os.PathLike[str]) -> None:
    """Refuse, before any work, a report folder path that is (or lies inside) a file, or an existing folder that holds
    anything and is not an earlier report (a config folder, a run): the report's pages and plots would mix with its
    files, or replace those of the same name."""
    check_folder(path, "a folder for the report")
    write = "the report would write its pages and plots among its files"
    check_output_folder(path, is_report, "a report folder", write)


def is_report(folder: str | os.PathLike[str]) -> bool:
    """Whether `folder` holds an earlier report, which a new one may write over: nothing but a report's files (pages,
    PNG plots, `trials.txt`; hidden entries such as staging leftovers or `.DS_Store`), an `index.html` being
    `report_page`'s. One cut short before its `index.html` (written last) counts too."""
    try:
        entries = list(Path(folder).iterdir())
        if not all(entry.name.startswith(".") or (entry.is_file() and _in_reports(entry.name)) for entry in entries):
            return False
        page = Path(folder) / "index.html"
        return not page.is_file() or page.read_bytes()[: len(_HEAD.encode())] == _HEAD.encode()
    except OSError:  # no folder, or an unreadable one
        return False


def _in_reports(name: str) -> bool:
    return name.endswith((".html", ".png")) or name == "trials.txt"
