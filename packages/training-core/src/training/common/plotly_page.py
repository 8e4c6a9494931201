"""One self-contained HTML page of interactive plotly figures: plotly.js is inlined once, so it opens offline.

Both reports (a study's and a run's) build their figures and hand them here; plotly is imported by the callers, from
their `plots` extra.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

Section = tuple[str, Any, str]  # (heading, a plotly Figure or None, a note shown instead of a missing figure)


def plotly_page(title: str, intro: str, sections: Sequence[Section], appendix: str = "") -> str:
    """The page: `title`, the `intro` text, each section's figure (or its note), then `appendix` (preformatted)."""
    parts, inlined = [], False
    for heading, figure, note in sections:
        if figure is None:
            body = f"<p><em>Skipped: {html.escape(note)}</em></p>"
        else:
            body = figure.to_html(full_html=False, include_plotlyjs=not inlined, config={"displaylogo": False})
            inlined = True
        parts.append(f"<section><h2>{html.escape(heading)}</h2>{body}</section>")
    tail = f"<section><pre>{html.escape(appendix)}</pre></section>" if appendix else ""
    return (
        f'<!doctype html>\n<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        "<style>body{font-family:sans-serif;margin:2em}pre{font-size:12px}</style></head><body>\n"
        f"<h1>{html.escape(title)}</h1>\n<p>{html.escape(intro)}</p>\n" + "\n".join(parts) + f"\n{tail}</body></html>\n"
    )
