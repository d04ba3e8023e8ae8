"""The building blocks of the report's page (:mod:`core.report`): text made safe for HTML and
SVG (:func:`esc`, :func:`cut`), numbers as text (:func:`num`, ``–`` when missing), tables,
key/value lists and notes, and the page's style sheet (:data:`CSS`, print styles included).

Every string goes through :func:`esc` unless it is :class:`Html` (markup built here, already
escaped). No figure is drawn here (:mod:`core.report_svg`).
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence

import numpy as np

__all__ = [
    "CSS",
    "DASH",
    "LABEL_CHARS",
    "Html",
    "esc",
    "cut",
    "note",
    "num",
    "is_number",
    "table",
    "cell",
    "meta",
    "one_line",
]

LABEL_CHARS = 20  # labels in figures are cut to this many characters (the full text is the tooltip)
DASH = "–"  # a missing number

CSS = """
:root{--fg:#1d1d1f;--muted:#60606a;--line:#d0d0d7;--head:#f1f1f5}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;color:var(--fg);
max-width:1100px;margin:24px auto;padding:0 16px}
h1{font-size:1.55em;margin:0 0 .3em}
h2{font-size:1.2em;border-bottom:1px solid var(--line);padding-bottom:.2em;margin-top:1.8em}
h3{font-size:1em;margin:1.2em 0 .3em}
table{border-collapse:collapse;margin:.4em 0 .9em;font-size:13px}
th,td{border:1px solid var(--line);padding:3px 8px;text-align:left;vertical-align:top}
th{background:var(--head);font-weight:600}
td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
tr.chosen td{background:#fbf7e6}
.ci{color:var(--muted);font-size:.85em}
.nw{white-space:nowrap}
.note{color:var(--muted);font-style:italic;margin:.4em 0}
.meta td:first-child{color:var(--muted);white-space:nowrap}
figure{margin:.6em 0 1.2em}
figcaption{color:var(--muted);font-size:12px;max-width:90ch;margin-top:.3em}
svg{max-width:100%;height:auto;print-color-adjust:exact;-webkit-print-color-adjust:exact}
svg text{font-family:inherit}
.panels{display:flex;flex-wrap:wrap;gap:10px}
nav ol{margin:.3em 0;padding-left:1.4em;columns:2;max-width:50em}
footer{margin-top:2.5em;color:var(--muted);font-size:12px;border-top:1px solid var(--line);padding-top:.5em}
@media print{
body{max-width:none;margin:0;padding:0;font-size:11px}
nav{display:none}
h2{break-after:avoid;page-break-after:avoid}
table,figure,tr{break-inside:avoid;page-break-inside:avoid}
th,tr.chosen td{print-color-adjust:exact;-webkit-print-color-adjust:exact}
a{color:inherit;text-decoration:none}
}
@page{margin:14mm}
"""


class Html(str):
    """Markup built here (already escaped): table cells of this type are inserted as they are."""


def esc(value: object) -> str:
    """``value`` as text safe inside HTML and SVG (quotes too: it may go into an attribute)."""
    return html.escape(str(value), quote=True)


def cut(text: object, n: int = LABEL_CHARS) -> str:
    text = str(text)
    return text if len(text) <= n else text[: n - 1] + "…"


def note(text: str) -> str:
    return f'<p class="note">{esc(text)}</p>'


def num(value: object, digits: int = 3, *, signed: bool = False) -> str:
    """A number as text (``–`` for None, NaN or what is not a number)."""
    if isinstance(value, bool) or value is None:
        return DASH
    if isinstance(value, (int, np.integer)):
        return f"{int(value):+d}" if signed else str(int(value))
    try:
        v = float(value)
    except (TypeError, ValueError):
        return DASH
    if not math.isfinite(v):
        return DASH
    return f"{v:+.{digits}f}" if signed else f"{v:.{digits}f}"


def is_number(value: object) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def table(header: Sequence[str], rows: Sequence[Sequence[object]], *, row_class: Sequence[str] | None = None) -> str:
    """An HTML table; a cell is escaped unless it is :class:`Html`; numbers align right."""
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = []
    for r, row in enumerate(rows):
        cells = []
        for value in row:
            if isinstance(value, Html):
                numeric = getattr(value, "numeric", False)
                cells.append(f'<td class="n">{value}</td>' if numeric else f"<td>{value}</td>")
            elif is_number(value):
                cells.append(f'<td class="n">{esc(num(value))}</td>')
            else:
                cells.append(f"<td>{esc(DASH if value is None else value)}</td>")
        cls = f' class="{esc(row_class[r])}"' if row_class and row_class[r] else ""
        body.append(f"<tr{cls}>{''.join(cells)}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def cell(markup: str, *, numeric: bool = True) -> Html:
    out = Html(markup)
    out.numeric = numeric  # type: ignore[attr-defined]
    return out


def meta(pairs: Sequence[tuple[str, object]]) -> str:
    """A two-column key/value table."""
    rows = "".join(
        f"<tr><td>{esc(k)}</td><td>{v if isinstance(v, Html) else esc(DASH if v in (None, '') else v)}</td></tr>"
        for k, v in pairs
    )
    return f'<table class="meta"><tbody>{rows}</tbody></table>'


def one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")
