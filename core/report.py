"""A run's report: one self-contained HTML file to hand over (``python -m core report RUN``).

The file needs nothing but a browser, offline: no script, no style sheet, font or image from
elsewhere; every figure is an inline SVG drawn here (no plotting library). Its sections, each
replaced by a one-line note when the run lacks what it shows (a run still at crossdomain, a run
without a sweep or without decisions):

1. the run: id, config name, created, state, versions and device, domains, key settings;
2. baselines vs universal models: test accuracy per domain with its interval, the paired
   differences from the baselines; the curated taxonomy's model appears as method ``curated``;
3. the selection: every saved method's edges, scores against the ground truth, universal classes;
4. the accuracy sweep: validation accuracy over each method's parameter (line plots);
5. the taxonomy of one method (default: the run's best, as the dashboard picks it): statistics
   and a picture of the universal classes that join two or more domains;
6. the researcher's decisions (:mod:`core.curation`) and how the method's edges score against them.

Every string read from the run (class and domain names, notes, authors) is escaped. The page
prints well (print styles: no navigation, no table or figure cut across pages).

The domain palette :data:`DOMAIN_COLOURS` is a copy of ``ui.graph.DOMAIN_COLOURS`` (core never
imports ui): change both together.
"""

from __future__ import annotations

import html
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np

from core.runs import CURATED, STEPS, F, Run

__all__ = [
    "DOMAIN_COLOURS",
    "MAX_GRAPH_NODES",
    "LABEL_CHARS",
    "build_report",
    "report_inputs",
    "chosen_method",
    "taxonomy_stats",
    "graph_svg",
    "line_plot_svg",
    "nice_ticks",
]

# Colour-blind friendly palette (Okabe-Ito), copied from ui/graph.py DOMAIN_COLOURS: keep in step.
DOMAIN_COLOURS = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#999999"]
UNIVERSAL_COLOUR = "#3d3d5c"
MAX_GRAPH_NODES = 60  # nodes in the taxonomy picture (universal classes + their members)
LABEL_CHARS = 20  # labels in figures are cut to this many characters (the full text is the tooltip)
EDGES_PER_DECISION = 6  # edges a decision lists before "and N more"
MAX_PROBLEMS = 20  # log problems listed
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


# ----------------------------------------------------------------------------- small HTML pieces


class _Html(str):
    """Markup built here (already escaped): table cells of this type are inserted as they are."""


def _e(value: object) -> str:
    """``value`` as text safe inside HTML and SVG (quotes too: it may go into an attribute)."""
    return html.escape(str(value), quote=True)


def _cut(text: object, n: int = LABEL_CHARS) -> str:
    text = str(text)
    return text if len(text) <= n else text[: n - 1] + "…"


def _note(text: str) -> str:
    return f'<p class="note">{_e(text)}</p>'


def _num(value: object, digits: int = 3, *, signed: bool = False) -> str:
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


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def _table(header: Sequence[str], rows: Sequence[Sequence[object]], *, row_class: Sequence[str] | None = None) -> str:
    """An HTML table; a cell is escaped unless it is :class:`_Html`; numbers align right."""
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = []
    for r, row in enumerate(rows):
        cells = []
        for cell in row:
            if isinstance(cell, _Html):
                numeric = getattr(cell, "numeric", False)
                cells.append(f'<td class="n">{cell}</td>' if numeric else f"<td>{cell}</td>")
            elif _is_number(cell):
                cells.append(f'<td class="n">{_e(_num(cell))}</td>')
            else:
                cells.append(f"<td>{_e(DASH if cell is None else cell)}</td>")
        cls = f' class="{_e(row_class[r])}"' if row_class and row_class[r] else ""
        body.append(f"<tr{cls}>{''.join(cells)}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _cell(markup: str, *, numeric: bool = True) -> _Html:
    out = _Html(markup)
    out.numeric = numeric  # type: ignore[attr-defined]
    return out


def _meta(pairs: Sequence[tuple[str, object]]) -> str:
    """A two-column key/value table."""
    rows = "".join(
        f"<tr><td>{_e(k)}</td><td>{v if isinstance(v, _Html) else _e(DASH if v in (None, '') else v)}</td></tr>"
        for k, v in pairs
    )
    return f'<table class="meta"><tbody>{rows}</tbody></table>'


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


# ----------------------------------------------------------------------------- SVG figures


def nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """About ``n`` round tick values (steps of 1, 2 or 5 times a power of ten) inside [lo, hi];
    [lo] when the range is empty. ValueError for a non-finite bound."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError(f"tick range [{lo}, {hi}] is not finite")
    if hi < lo:
        lo, hi = hi, lo
    if hi == lo:
        return [float(lo)]
    raw = (hi - lo) / max(n, 1)
    power = 10.0 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw * (1 - 1e-9))
    first = math.ceil(lo / step - 1e-9)
    ticks = []
    k = first
    while k * step <= hi + step * 1e-9:
        ticks.append(round(k * step, 12) + 0.0)  # + 0.0: no "-0"
        k += 1
    return ticks


def _tick_text(v: float, step: float) -> str:
    decimals = max(0, -math.floor(math.log10(step) + 1e-9)) if step > 0 else 0
    return f"{v:.{decimals}f}"


def _range(values: Sequence[float], pad: float = 0.05) -> tuple[float, float]:
    vals = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    if not vals:
        return 0.0, 1.0
    lo, hi = min(vals), max(vals)
    if hi == lo:
        half = abs(lo) * 0.05 or 0.5
        return lo - half, hi + half
    span = hi - lo
    return lo - pad * span, hi + pad * span


def line_plot_svg(
    series: Sequence[Mapping],
    *,
    hlines: Sequence[Mapping] = (),
    title: str = "",
    x_label: str = "",
    y_label: str = "",
    y_range: tuple[float, float] | None = None,
    width: int = 360,
    height: int = 250,
) -> str:
    """An inline SVG line plot with axes, ticks, grid and a legend below.

    series: ``{"label", "x": (N,), "y": (N,), "colour"[, "best": x of a point to ring]}`` each
    (points sorted by x; NaN y left out); hlines: ``{"label", "y", "colour"}`` drawn dashed
    across the plot (reference values). Every text is escaped.
    """
    legend = [(s["label"], s["colour"], False) for s in series] + [(h["label"], h["colour"], True) for h in hlines]
    left, right, top, bottom = 54, 14, 26 if title else 10, 40
    legend_h = 15 * len(legend) + (6 if legend else 0)
    total_h = height + legend_h
    pw, ph = width - left - right, height - top - bottom
    xs = [float(x) for s in series for x in s["x"] if x is not None and math.isfinite(float(x))]
    ys = [float(y) for s in series for y in s["y"] if y is not None and math.isfinite(float(y))]
    ys += [float(h["y"]) for h in hlines if h["y"] is not None and math.isfinite(float(h["y"]))]
    whole = bool(xs) and all(x == round(x) for x in xs)  # an integer parameter (k_max): integer ticks
    x0, x1 = _range(xs, pad=0.03) if not whole or min(xs) < max(xs) else (xs[0] - 1, xs[0] + 1)
    y0, y1 = y_range if y_range is not None else _range(ys)

    def px(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * pw

    def py(y: float) -> float:
        return top + (1 - (y - y0) / (y1 - y0)) * ph

    out = [
        f'<svg viewBox="0 0 {width} {total_h}" width="{width}" height="{total_h}" role="img" '
        f'aria-label="{_e(title or y_label)}">',
        f"<title>{_e(title or y_label)}</title>",
        f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#bbb"/>',
    ]
    if title:
        out.append(f'<text x="{left + pw / 2:.1f}" y="16" text-anchor="middle" font-size="12" '
                   f'font-weight="600">{_e(title)}</text>')  # fmt: skip
    for axis, lo, hi in (("x", x0, x1), ("y", y0, y1)):
        ticks = [t for t in nice_ticks(lo, hi, 5 if axis == "y" else 6) if lo <= t <= hi]
        if axis == "x" and whole and sum(t == round(t) for t in ticks) >= 2:
            ticks = [t for t in ticks if t == round(t)]
        step = ticks[1] - ticks[0] if len(ticks) > 1 else 1.0
        for t in ticks:
            text = _e(_tick_text(t, step))
            if axis == "x":
                x = px(t)
                out.append(f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{top + ph + 4}" stroke="#eee"/>')
                out.append(f'<line x1="{x:.1f}" y1="{top + ph}" x2="{x:.1f}" y2="{top + ph + 4}" stroke="#555"/>')
                out.append(f'<text x="{x:.1f}" y="{top + ph + 15}" text-anchor="middle" font-size="10">{text}</text>')
            else:
                y = py(t)
                out.append(f'<line x1="{left - 4}" y1="{y:.1f}" x2="{left + pw}" y2="{y:.1f}" stroke="#eee"/>')
                out.append(f'<line x1="{left - 4}" y1="{y:.1f}" x2="{left}" y2="{y:.1f}" stroke="#555"/>')
                out.append(f'<text x="{left - 6}" y="{y + 3.5:.1f}" text-anchor="end" font-size="10">{text}</text>')
    out.append(f'<line x1="{left}" y1="{top + ph}" x2="{left + pw}" y2="{top + ph}" stroke="#555"/>')
    out.append(f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + ph}" stroke="#555"/>')
    if x_label:
        out.append(f'<text x="{left + pw / 2:.1f}" y="{top + ph + 30}" text-anchor="middle" '
                   f'font-size="11">{_e(x_label)}</text>')  # fmt: skip
    if y_label:
        cy = top + ph / 2
        out.append(f'<text x="12" y="{cy:.1f}" text-anchor="middle" font-size="11" '
                   f'transform="rotate(-90 12 {cy:.1f})">{_e(y_label)}</text>')  # fmt: skip
    for h in hlines:
        if h["y"] is None or not math.isfinite(float(h["y"])) or not y0 <= float(h["y"]) <= y1:
            continue
        y = py(float(h["y"]))
        out.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{left + pw}" y2="{y:.1f}" stroke="{_e(h["colour"])}" '
            f'stroke-width="1.5" stroke-dasharray="5 3"><title>{_e(h["label"])}: {_e(_num(h["y"]))}</title></line>'
        )
    for s in series:
        pts = [(float(x), float(y)) for x, y in zip(s["x"], s["y"])
               if x is not None and y is not None and math.isfinite(float(x)) and math.isfinite(float(y))]  # fmt: skip
        pts.sort()
        colour = _e(s["colour"])
        if len(pts) > 1:
            path = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in pts)
            out.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="1.8"/>')
        for x, y in pts:
            tip = f"{_e(s['label'])}: {_e(_num(x, 4).rstrip('0').rstrip('.'))} → {_e(_num(y))}"
            ring = s.get("best") is not None and float(s["best"]) == x
            extra = ' r="5" fill="white" stroke-width="2"' if ring else ' r="2.6" fill="' + colour + '"'
            out.append(
                f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}"{extra} stroke="{colour}"><title>{tip}</title></circle>'
            )
    for k, (label, colour, dashed) in enumerate(legend):
        y = height + 4 + 15 * k
        dash = ' stroke-dasharray="5 3"' if dashed else ""
        out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + 22}" y2="{y:.1f}" stroke="{_e(colour)}" '
                   f'stroke-width="2"{dash}/>')  # fmt: skip
        out.append(f'<text x="{left + 28}" y="{y + 3.5:.1f}" font-size="11">{_e(_cut(label, 48))}</text>')
    out.append("</svg>")
    return "\n".join(out)


def _n_domains(members) -> int:
    return len({a for a, _ in members})


def taxonomy_stats(tax) -> dict:
    """Counts of a UniversalTaxonomy: ``{"n_universal", "n_domain_classes", "members_min",
    "members_median", "members_mean", "members_max", "size_counts": {members: universal classes},
    "n_joining" (classes joining >= 2 domains), "n_split" (domain classes in > 1 universal class),
    "per_domain": [{"domain", "classes", "universal"}]}``."""
    sizes = np.array([len(m) for m in tax.classes], dtype=np.int64)
    per_class: dict[tuple[int, int], int] = {}
    for members in tax.classes:
        for dc in members:
            per_class[dc] = per_class.get(dc, 0) + 1
    values, counts = np.unique(sizes, return_counts=True) if sizes.size else (np.zeros(0), np.zeros(0))
    return {
        "n_universal": int(sizes.size),
        "n_domain_classes": int(sum(tax.class_counts)),
        "members_min": int(sizes.min()) if sizes.size else 0,
        "members_median": float(np.median(sizes)) if sizes.size else float("nan"),
        "members_mean": float(sizes.mean()) if sizes.size else float("nan"),
        "members_max": int(sizes.max()) if sizes.size else 0,
        "size_counts": {int(v): int(c) for v, c in zip(values, counts)},
        "n_joining": int(sum(_n_domains(m) >= 2 for m in tax.classes)),
        "n_split": int(sum(n > 1 for n in per_class.values())),
        "per_domain": [
            {
                "domain": tax.domain_names[a],
                "classes": int(k),
                "universal": int(sum(any(d == a for d, _ in m) for m in tax.classes)),
            }
            for a, k in enumerate(tax.class_counts)
        ],
    }


def _pick_classes(tax, max_nodes: int) -> tuple[list[int], list[int]]:
    """(universal classes joining >= 2 domains, those of them drawn): the most domains first,
    then the most members, added while the nodes (with their members) stay within ``max_nodes``."""
    joining = [u for u, m in enumerate(tax.classes) if _n_domains(m) >= 2]
    ranked = sorted(joining, key=lambda u: (-_n_domains(tax.classes[u]), -len(tax.classes[u]), u))
    drawn, members = [], set()
    for u in ranked:
        new = set(tax.classes[u]) - members
        if len(drawn) + 1 + len(members) + len(new) <= max_nodes:
            drawn.append(u)
            members |= new
    return joining, drawn


ROW = 17  # pixels between two nodes of a column


def _two_column_layout(
    tax, drawn: Sequence[int], *, top: float, sweeps: int = 4
) -> tuple[list[int], dict[int, float], dict[tuple[int, int], float]]:
    """A bipartite layout of the universal classes ``drawn`` (left) and their members (right):
    ``(universal order, {u: y}, {(a, i): y})``. Each connected group of the graph (networkx) gets
    a band, largest first; inside it both columns are spread over the band's height and ordered by
    the barycentre heuristic (each node moves to the mean position of its neighbours, ``sweeps``
    times), which keeps lines short and crossings few."""
    import networkx as nx

    g = nx.Graph()
    for u in drawn:
        g.add_node(("u", u))
        g.add_edges_from((("u", u), ("c", a, i)) for a, i in tax.classes[u])
    groups = sorted(
        (
            (sorted(n[1] for n in comp if n[0] == "u"), sorted((n[1], n[2]) for n in comp if n[0] == "c"))
            for comp in nx.connected_components(g)
        ),
        key=lambda grp: (-len(grp[0]) - len(grp[1]), grp[0][0]),
    )

    def spread(items: list) -> dict:
        n = len(items)
        return {x: (k / (n - 1) if n > 1 else 0.5) for k, x in enumerate(items)}

    order: list[int] = []
    uni_y: dict[int, float] = {}
    member_y: dict[tuple[int, int], float] = {}
    y0 = top
    for us, cs in groups:
        members = {u: sorted(tax.classes[u]) for u in us}
        owners: dict[tuple[int, int], list[int]] = {c: [] for c in cs}
        for u in us:
            for c in members[u]:
                owners[c].append(u)
        pc = spread(cs)
        for _ in range(max(sweeps, 1)):
            pu = spread(sorted(us, key=lambda u: (np.mean([pc[c] for c in members[u]]), u)))
            pc = spread(sorted(cs, key=lambda c: (np.mean([pu[u] for u in owners[c]]), c)))
        band = (max(len(us), len(cs)) - 1) * ROW
        order += sorted(us, key=lambda u: pu[u])
        uni_y.update({u: y0 + pu[u] * band for u in us})
        member_y.update({c: y0 + pc[c] * band for c in cs})
        y0 += band + ROW + 8  # a little more space between two groups
    return order, uni_y, member_y


def graph_svg(tax, *, max_nodes: int = MAX_GRAPH_NODES, label_chars: int = LABEL_CHARS) -> tuple[str, str]:
    """A picture of a UniversalTaxonomy as inline SVG, and its caption: ``(svg, caption)``; svg
    is "" when no universal class joins two domains.

    Drawn: the universal classes joining >= 2 domains (most domains, then most members first,
    while at most ``max_nodes`` nodes) in the left column, their member classes in the right
    column, coloured by domain, a line per mapping (width: its weight); see
    :func:`_two_column_layout`. Labels are cut to ``label_chars`` characters; the full names are the tooltips."""
    if max_nodes < 2:
        raise ValueError(f"max_nodes must be at least 2, got {max_nodes}")
    joining, drawn = _pick_classes(tax, max_nodes)
    n_single = tax.n_universal - len(joining)
    if not drawn:
        return "", (
            f"No universal class joins two domains: all {tax.n_universal} universal classes hold the classes "
            "of a single domain."
        )
    domain_names = tax.domain_names
    width = 150 + 250 + 12 + int(label_chars * 6.6) + 10
    legend, x, line = [], 0.0, 0  # domain colour swatches, wrapped at the figure's width
    for a, name in enumerate(domain_names):
        w = 18 + 6.6 * len(_cut(name, label_chars)) + 14
        if x and x + w > width - 10:
            x, line = 0.0, line + 1
        legend.append((a, name, 10 + x, 14 + 16 * line))
        x += w
    order, uni_y, member_y = _two_column_layout(tax, drawn, top=16 * (line + 1) + 22)
    height = int(max([*member_y.values(), *uni_y.values()]) + 16)
    xu, xc = 150, 400
    mappings = tax.mappings
    out = [
        f'<svg viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
        'aria-label="universal classes joining two or more domains">',
        "<title>universal classes joining two or more domains</title>",
    ]
    for a, name, lx, ly in legend:
        colour = DOMAIN_COLOURS[a % len(DOMAIN_COLOURS)]
        out.append(f'<circle cx="{lx + 5}" cy="{ly - 4}" r="5" fill="{colour}"/>')
        out.append(f'<text x="{lx + 14}" y="{ly}" font-size="11">{_e(_cut(name, label_chars))}<title>{_e(name)}'
                   "</title></text>")  # fmt: skip
    for u in order:
        for a, i in sorted(tax.classes[u]):
            w = float(mappings[a][i, u])
            colour = DOMAIN_COLOURS[a % len(DOMAIN_COLOURS)]
            out.append(
                f'<line x1="{xu}" y1="{uni_y[u]:.1f}" x2="{xc}" y2="{member_y[a, i]:.1f}" stroke="{colour}" '
                f'stroke-opacity="0.75" stroke-width="{0.8 + 2.2 * min(max(w, 0.0), 1.0):.2f}"><title>'
                f"U{u} ← {_e(domain_names[a])}: {_e(tax.class_names[a][i])} (weight {w:.2f})</title></line>"
            )
    for u in order:
        name = f"U{u} {tax.names[u]}"
        y = uni_y[u]
        out.append(f'<circle cx="{xu}" cy="{y:.1f}" r="6" fill="{UNIVERSAL_COLOUR}"><title>{_e(name)} '
                   f"({len(tax.classes[u])} members)</title></circle>")  # fmt: skip
        out.append(f'<text x="{xu - 10}" y="{y + 4:.1f}" text-anchor="end" font-size="11">'
                   f"{_e(_cut(name, label_chars))}<title>{_e(name)}</title></text>")  # fmt: skip
    for (a, i), y in member_y.items():
        colour = DOMAIN_COLOURS[a % len(DOMAIN_COLOURS)]
        full = f"{domain_names[a]}: {tax.class_names[a][i]}"
        out.append(f'<circle cx="{xc}" cy="{y:.1f}" r="5" fill="{colour}"><title>{_e(full)}</title></circle>')
        out.append(f'<text x="{xc + 10}" y="{y + 4:.1f}" font-size="11">{_e(_cut(tax.class_names[a][i], label_chars))}'
                   f"<title>{_e(full)}</title></text>")  # fmt: skip
    out.append("</svg>")
    left_out = len(joining) - len(drawn)
    caption = (
        f"Universal classes (left, U index and name) joining two or more domains, with their member classes "
        f"(right, coloured by domain; line width: the member's weight). Shown: {len(drawn)} of the "
        f"{len(joining)} such classes ({len(drawn) + len(member_y)} nodes)"
        + (
            f"; {left_out} more left out to stay within {max_nodes} nodes (most domains and members first)"
            if left_out
            else ""
        )  # fmt: skip
        + f". Not shown: the {n_single} universal classes of a single domain. Labels are cut to {label_chars} "
        "characters; hover for the full names."
    )
    return "\n".join(out), caption


# ----------------------------------------------------------------------------- which method


def _best(headline: Mapping | None, keys: Sequence[str]) -> str | None:
    """The key of ``keys`` with the best mean universal test accuracy in the headline (ties: the
    first); the same rule as ui.runview.best_method (copied: core never imports ui)."""
    scored = []
    for pos, key in enumerate(keys):
        value = (headline or {}).get(f"universal_mean/{key}")
        if _is_number(value) and value == value:
            scored.append((-float(value), pos, key))
    return min(scored)[2] if scored else None


def chosen_method(run: Run, method: str | None = None) -> str | None:
    """The method key whose taxonomy and decisions the report details: ``method`` (ValueError
    when the run saved no taxonomy under it), else the run's best (its results' headline), else
    the first saved, else None."""
    keys = run.methods()
    if method is not None:
        if method not in keys:
            raise ValueError(f"method {method!r} has no saved taxonomy in run {run.id!r}; saved: {keys or 'none'}")
        return method
    results = run.results_json()
    headline = results.get("headline") if isinstance(results, dict) else None
    return _best(headline if isinstance(headline, dict) else None, keys) or (keys[0] if keys else None)


def report_inputs(run: Run) -> list[str]:
    """The run files (relative paths, core.runs.F) the report reads: their modification times
    make a cache key (the dashboard rebuilds the report when one changes)."""
    files = [F.CONFIG, F.ENVIRONMENT, F.STATUS, F.DOMAINS, F.GROUND_TRUTH, F.RESULTS_JSON, F.RESULTS_CSV]
    files += [F.SWEEP_CSV, F.CURATION, F.universal(CURATED, "metrics.json")]
    for key in run.methods():
        files += [F.taxonomy(key, n) for n in ("relationships.npz", "selection.json", "taxonomy.json")]
    return files


# ----------------------------------------------------------------------------- the sections


@dataclass
class _Ctx:
    run: Run
    method: str | None
    names: list[str]
    class_names: list[list[str]]
    status: dict
    explicit: bool = False  # the method was given (not the run's best)


def _section_run(ctx: _Ctx) -> str:
    run, status = ctx.run, ctx.status
    env, cfg = run.environment(), run.config
    done = status.get("steps_done") or []
    state = f"{status.get('state', '?')}"
    if status.get("state") != "done" and status.get("step"):
        state += f" (step {status['step']})"
    if status.get("error"):
        state += f": {status['error']}"
    packages = env.get("packages") if isinstance(env.get("packages"), dict) else {}
    versions = ", ".join(f"{k} {v}" for k, v in packages.items() if v)
    device = env.get("device") or cfg.get("device")
    if env.get("gpu"):
        device = f"{device} ({env['gpu']})"
    parts = [
        ("run", run.id),
        ("config", cfg.get("name")),
        ("created", env.get("created") or env.get("start_time") or status.get("updated")),
        ("state", state),
        ("steps done", f"{len(done)}/{len(STEPS)}: {', '.join(done) if done else 'none'}"),
        ("seed", cfg.get("seed", env.get("seed"))),
        ("python", env.get("python")),
        ("packages", versions),
        ("device", device),
        ("platform", env.get("platform")),
    ]
    out = [_meta(parts)]
    out.append("<h3>Domains</h3>")
    domains = run.domains()
    if domains:
        rows = [
            [d.get("name"), d.get("source"), d.get("shift"), len(d.get("class_names") or []),
             d.get("n_train"), d.get("n_val"), d.get("n_test")]
            for d in domains
        ]  # fmt: skip
        out.append(_table(["domain", "source", "shift", "classes", "train", "val", "test"], rows))
        if run.ground_truth() is not None:
            out.append(_note("The domains come from a synthetic world: its true relationships score the selection."))
    else:
        out.append(_note("No domains yet: the run has not finished its domains step."))
    out.append("<h3>Key settings</h3>")
    if cfg:
        features = cfg.get("features") or {}
        methods = (cfg.get("selection") or {}).get("methods") or []
        shown = []
        for m in methods:
            if not isinstance(m, dict):
                continue
            params = ", ".join(f"{k}={v}" for k, v in (m.get("params") or {}).items())
            label = f"{m.get('name')}" + (f" ({params})" if params else "")
            if m.get("label") and m.get("label") != m.get("name"):
                label += f" as {m['label']}"
            shown.append(label)
        evaluation = cfg.get("evaluation") or {}
        out.append(
            _meta(
                [
                    ("backbone", f"{features.get('backbone')} at {features.get('image_size')} px"),
                    ("cross-domain matrix", (cfg.get("crossdomain") or {}).get("matrix")),
                    ("selection methods", "; ".join(shown)),
                    ("universal loss", (cfg.get("universal") or {}).get("loss")),
                    (
                        "evaluation",
                        f"{evaluation.get('bootstrap')} bootstrap resamples, level "
                        f"{evaluation.get('level')}, {evaluation.get('seeds')} seed(s)",
                    ),
                ]  # fmt: skip
            )
        )
    else:
        out.append(_note("No config in the run folder."))
    return "\n".join(out)


def _results_columns(ctx: _Ctx, table) -> tuple[list[str], list[str], dict[str, dict[str, float]]]:
    """(domains, model columns, {column: {domain|"mean": accuracy}}) of the results table, plus
    the curated model's metrics as ``universal/curated`` when the table lacks them."""
    domains = [str(d) for d in table["domain"] if str(d) != "mean"]
    cols = [c for c in table.columns if c == "baseline" or str(c).startswith("universal/")]
    values = {c: {str(d): v for d, v in zip(table["domain"], table[c])} for c in cols}
    curated = f"universal/{CURATED}"
    metrics = ctx.run.universal_metrics(CURATED) if curated not in cols else None
    if isinstance(metrics, dict) and metrics:
        per = {d: metrics.get(d) for d in domains}
        nums = [float(v) for v in per.values() if _is_number(v)]
        per["mean"] = float(np.mean(nums)) if nums else None
        cols.append(curated)
        values[curated] = per
    return domains, cols, values


def _model_name(col: str) -> str:
    return col.split("/", 1)[1] if col.startswith("universal/") else col


def _section_results(ctx: _Ctx) -> str:
    run = ctx.run
    table = run.results()
    if table is None:
        return _note(
            f"No results yet: the run has not finished its results step (state {ctx.status.get('state')}, "
            f"step {ctx.status.get('step') or DASH})."
        )
    if "domain" not in table.columns:
        raise ValueError(f"{F.RESULTS_CSV} has no domain column")
    summary = run.results_json() or {}
    intervals = summary.get("intervals") if isinstance(summary.get("intervals"), dict) else None
    domains, cols, values = _results_columns(ctx, table)
    heads = [*domains, "mean"]
    best = {}
    for d in heads:
        nums = [float(values[c][d]) for c in cols if _is_number(values[c].get(d)) and values[c][d] == values[c][d]]
        best[d] = max(nums) if nums else None
    acc = (intervals or {}).get("accuracy") or {}
    rows, classes = [], []
    for c in cols:
        row = [_model_name(c)]
        for d in heads:
            v = values[c].get(d)
            text = _e(_num(v))
            if _is_number(v) and best[d] is not None and float(v) == best[d]:
                text = f"<b>{text}</b>"
            ci = (acc.get(c) or {}).get(d)
            if isinstance(ci, list) and len(ci) == 3:
                text += f' <span class="ci">[{_e(_num(ci[1]))}, {_e(_num(ci[2]))}]</span>'
            row.append(_cell(text))
        rows.append(row)
        classes.append("chosen" if _model_name(c) == ctx.method else "")
    out = [_table(["model", *heads], rows, row_class=classes)]
    caption = "Test accuracy per domain and its mean over domains; the best model per column in bold."
    if intervals:
        caption += (f" In brackets: {_num(intervals.get('level', 0.95) * 100, 0)}% bootstrap intervals over the test "
                    f"images ({intervals.get('n_boot')} resamples).")  # fmt: skip
    if f"universal/{CURATED}" in cols:
        caption += " The row 'curated' is the universal model trained on the curated taxonomy."
    out.append(f'<p class="note">{_e(caption)}</p>')
    diff = (intervals or {}).get("vs_baseline") or {}
    if diff:
        out.append("<h3>Universal minus baseline (paired, same test images)</h3>")
        drows = []
        for c, per in diff.items():
            row = [_model_name(c)]
            for d in ["mean", *domains]:
                x = per.get(d) if isinstance(per, dict) else None
                if not isinstance(x, dict):
                    row.append(DASH)
                    continue
                verdict = "within noise" if x.get("within_noise") else ("better" if x.get("diff", 0) > 0 else "worse")
                row.append(_cell(f"{_e(_num(x.get('diff'), signed=True))} <span class=\"ci\">["
                                 f"{_e(_num(x.get('lo'), signed=True))}, {_e(_num(x.get('hi'), signed=True))}] "
                                 f"{_e(verdict)}</span>"))  # fmt: skip
            drows.append(row)
        out.append(_table(["model", "mean", *domains], drows))
        out.append(_note("'within noise': the interval holds 0, so these test images cannot tell the two apart."))
    seeds = summary.get("seeds")
    if isinstance(seeds, dict) and seeds:
        srows = []
        for c, per in seeds.items():
            try:
                runs = np.mean([np.asarray(v, dtype=float) for v in per.values()], axis=0)
            except (TypeError, ValueError, AttributeError):
                continue
            spread = f" ± {_num(runs.std(ddof=1))}" if runs.size > 1 else ""
            srows.append([_model_name(c), _cell(f"{_e(_num(runs.mean()))}{_e(spread)}"), int(runs.size)])
        if srows:
            out.append("<h3>Spread over training seeds (mean over domains)</h3>")
            out.append(_table(["model", "mean ± std", "seeds"], srows))
    return "\n".join(out)


def _truth(run: Run):
    """The run's true relationships ``{(a, b): W_ab}`` (Run.true_relationships: an imported truth,
    else the synthetic world's), or None."""
    if hasattr(run, "true_relationships"):
        return run.true_relationships()
    gt = run.ground_truth()
    return gt.true_relationships() if gt is not None else None


def _scores_of(run: Run, key: str, sel: Mapping, truth) -> dict | None:
    """The scores the selection saved, else computed now against ``truth`` (None without one)."""
    scores = sel.get("scores")
    if isinstance(scores, dict):
        return scores
    if truth is None:
        return None
    from core.metrics import relationship_scores

    try:
        return relationship_scores(run.relationships(key), truth, run.class_counts())
    except ValueError:
        return None


def _section_selection(ctx: _Ctx) -> str:
    run = ctx.run
    keys = run.methods()
    if not keys:
        return _note("No selection yet: the run has not saved a taxonomy (its selection and taxonomy steps).")
    truth = _truth(run)
    rows, classes, any_scores = [], [], False
    for key in keys:
        sel = run.selection(key)
        sel = sel if isinstance(sel, dict) else {}
        n_edges = sel.get("n_edges")
        if not _is_number(n_edges):
            n_edges = int(sum(int(np.count_nonzero(w)) for w in run.relationships(key).values()))
        tax = run.taxonomy(key)
        scores = _scores_of(run, key, sel, truth) or {}
        any_scores = any_scores or bool(scores)
        params = sel.get("params") if isinstance(sel.get("params"), dict) else {}
        method = sel.get("method") or (CURATED if key == CURATED else DASH)
        shown = ", ".join(f"{k}={v}" for k, v in params.items()) or DASH
        base = sel.get("base")
        if isinstance(base, dict):  # the curated taxonomy: the setting it corrects (core.curated)
            value = f" {base.get('param')}={base.get('value')}" if base.get("param") else ""
            shown = f"decisions on {base.get('method')}{value}"
        rows.append(
            [key, method, shown, sel.get("matrix") or (base or {}).get("matrix") or DASH,
             n_edges, tax.n_universal if tax is not None else None,
             *(scores.get(m) for m in ("edr", "precision", "recall", "f1"))]
        )  # fmt: skip
        classes.append("chosen" if key == ctx.method else "")
    header = ["key", "method", "parameters", "matrix", "edges", "universal classes"]
    if any_scores:
        header += ["EDR", "precision", "recall", "F1"]
    else:
        rows = [r[:6] for r in rows]
    out = [_table(header, rows, row_class=classes)]
    note = "Every saved selection method (highlighted: the one detailed below)."
    note += (
        " Scores against the ground truth: EDR (0 = the true graph), precision, recall, F1 of the edges."
        if any_scores
        else " No ground truth in this run: no scores."
    )
    out.append(_note(note))
    return "\n".join(out)


METHOD_COLOURS = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#999999"]


def _section_sweep(ctx: _Ctx) -> str:
    table = ctx.run.sweep_table()
    if table is None or table.empty:
        return _note("No accuracy sweep in this run (python -m core sweep RUN trains one universal head per "
                     "selection setting and scores it on the validation images).")  # fmt: skip
    from core.sweep_summary import best_by_accuracy

    methods = list(dict.fromkeys(table["method"].astype(str)))
    colour = {m: METHOD_COLOURS[k % len(METHOD_COLOURS)] for k, m in enumerate(methods)}
    ok = table.dropna(subset=["val_acc_mean"])
    y_range = _range(ok["val_acc_mean"].tolist(), pad=0.08)
    curves, flat = [], []
    for m in methods:
        rows = ok[ok["method"].astype(str) == m]
        if rows.empty:
            continue
        if rows["value"].notna().any():
            curves.append((m, rows.dropna(subset=["value"]).sort_values("value")))
        else:
            y = float(rows["val_acc_mean"].iloc[0])
            flat.append({"label": f"{m}: {_num(y)}", "y": y, "colour": colour[m]})
    panels = []
    for m, rows in curves:
        param = str(rows["param"].iloc[0]) if "param" in rows and rows["param"].notna().any() else "parameter"
        best = rows.loc[rows["val_acc_mean"].idxmax()]
        series = [{"label": m, "x": rows["value"].astype(float).tolist(), "y": rows["val_acc_mean"].tolist(),
                   "colour": colour[m], "best": float(best["value"])}]  # fmt: skip
        panels.append(line_plot_svg(series, hlines=flat, title=f"{m} ({param})", x_label=param,
                                    y_label="validation accuracy (mean)", y_range=y_range))  # fmt: skip
    if not panels and flat:
        panels.append(line_plot_svg([], hlines=flat, title="parameter-free methods",
                                    y_label="validation accuracy (mean)", y_range=y_range))  # fmt: skip
    out = []
    if panels:
        caption = (
            "Validation accuracy (mean over domains) of a universal head trained for every selection setting, "
            "over each method's parameter; the ring marks the best setting; dashed: parameter-free methods, for "
            "reference. The test images play no part in it."
        )
        out.append(
            f'<figure><div class="panels">{"".join(panels)}</div><figcaption>{_e(caption)}</figcaption></figure>'
        )
    else:
        out.append(_note("The sweep has no scored setting yet."))
    best = best_by_accuracy(table)
    if len(best):
        cols = [c for c in ("method", "param", "value", "n_edges", "n_universal", "val_acc_mean", "f1")
                if c in best.columns]  # fmt: skip
        if "f1" in cols and not best["f1"].notna().any():
            cols.remove("f1")
        rows = [
            [None if (_is_number(v) and v != v) else (f"{v:g}" if c == "value" else v) for c, v in zip(cols, r)]
            for r in best[cols].itertuples(index=False)
        ]
        names = {"param": "parameter", "n_edges": "edges", "n_universal": "universal classes",
                 "val_acc_mean": "val. accuracy", "f1": "F1"}  # fmt: skip
        out.append("<h3>Best setting per method (validation accuracy)</h3>")
        out.append(_table([names.get(c, c) for c in cols], rows))
    return "\n".join(out)


def _section_taxonomy(ctx: _Ctx) -> str:
    if ctx.method is None:
        return _note("No taxonomy saved yet: the run has not finished its taxonomy step.")
    tax = ctx.run.taxonomy(ctx.method)
    if tax is None:
        return _note(f"Method {ctx.method} has no saved taxonomy.")
    s = taxonomy_stats(tax)
    sizes = " · ".join(f"{k}: {v}" for k, v in s["size_counts"].items())
    how = "chosen on the command line" if ctx.explicit else "the run's best universal model, else the first saved"
    out = [
        _note(f"Method {ctx.method} ({how})."),
        _meta(
            [
                ("universal classes", s["n_universal"]),
                ("domain classes", s["n_domain_classes"]),
                ("classes joining ≥ 2 domains", f"{s['n_joining']} of {s['n_universal']}"),
                (
                    "members per universal class",
                    f"min {s['members_min']}, median {_num(s['members_median'], 1)}, "
                    f"mean {_num(s['members_mean'], 2)}, max {s['members_max']}",
                ),
                ("universal classes by members", f"{sizes} (members: classes)"),
                ("domain classes in > 1 universal class", s["n_split"]),
            ]  # fmt: skip
        ),
        _table(
            ["domain", "classes", "universal classes it joins"],
            [[d["domain"], d["classes"], d["universal"]] for d in s["per_domain"]],
        ),  # fmt: skip
    ]
    svg, caption = graph_svg(tax)
    if svg:
        out.append(f"<figure>{svg}<figcaption>{_e(caption)}</figcaption></figure>")
    else:
        out.append(_note(caption))
    return "\n".join(out)


def _section_decisions(ctx: _Ctx) -> str:
    from core.curation import class_label, curation_scores, load_state

    run = ctx.run
    if not run.file(F.CURATION).exists() and not run.file(F.CURATION).is_symlink():
        return _note("No decisions logged: nobody has accepted, rejected or added a relationship in this run.")
    state = load_state(run)
    names, cls = ctx.names, ctx.class_names

    def edge(e) -> str:
        return f"{class_label(e.a, e.i, names, cls)} → {class_label(e.b, e.j, names, cls)}"

    out = []
    if state.applied:
        rows = []
        for d in state.applied:
            shown = [edge(e) for e in d.edges[:EDGES_PER_DECISION]]
            more = len(d.edges) - len(shown)
            text = "; ".join(shown) + (f"; and {more} more" if more > 0 else "")
            rows.append([_Html(f'<span class="nw">{_e(d.time.replace("T", " "))}</span>'), d.author, d.action, text,
                         d.relation, d.note])  # fmt: skip
        out.append(_table(["time", "author", "action", "edges", "relation", "note"], rows))
    out.append(_note(f"{len(state.applied)} decision(s) in force, {len(state.undone)} undone (not in force); "
                     f"{len(state.accepted)} edge(s) accepted, {len(state.rejected)} rejected."))  # fmt: skip
    if state.problems:
        items = "".join(f"<li>{_e(p)}</li>" for p in state.problems[:MAX_PROBLEMS])
        more = len(state.problems) - MAX_PROBLEMS
        extra = f"<li>{_e(f'and {more} more')}</li>" if more > 0 else ""
        out.append(f"<h3>Log problems ({len(state.problems)})</h3><ul>{items}{extra}</ul>")
    if ctx.method is not None:
        sc = curation_scores(run.relationships(ctx.method), state)
        out.append(f"<h3>The decisions as ground truth for {_e(ctx.method)}</h3>")
        out.append(
            _table(
                ["precision", "recall", "F1", "judged", "selected", "accepted", "rejected"],
                [
                    [
                        sc["precision"],
                        sc["recall"],
                        sc["f1"],
                        sc["n_judged"],
                        sc["n_selected"],
                        sc["n_accepted"],
                        sc["n_rejected"],
                    ]
                ],
            )  # fmt: skip
        )
        out.append(_note("Precision: accepted among the method's judged edges; recall: the accepted edges the "
                         "method selected. – where nothing was judged or accepted."))  # fmt: skip
    return "\n".join(out)


SECTIONS: list[tuple[str, str, Callable[[_Ctx], str]]] = [
    ("run", "The run", _section_run),
    ("results", "Baselines vs universal models", _section_results),
    ("selection", "Selection methods", _section_selection),
    ("sweep", "Accuracy sweep", _section_sweep),
    ("taxonomy", "Universal taxonomy", _section_taxonomy),
    ("decisions", "Decisions", _section_decisions),
]
SECTION_ERRORS = (ValueError, OSError, KeyError, TypeError, IndexError, AttributeError)


def build_report(run: Run | str | os.PathLike, *, method: str | None = None) -> str:
    """The run's report as one self-contained HTML page (see the module docstring).

    ``run``: a :class:`core.runs.Run` (or a run id / folder, opened with core.runs.open_run);
    ``method``: the key whose taxonomy and decisions are detailed (default :func:`chosen_method`;
    ValueError when the run saved no taxonomy under it). A section whose files cannot be read
    says so in one line; the others are still built."""
    if not isinstance(run, Run):
        from core.runs import open_run

        run = open_run(run)
    key = chosen_method(run, method)
    ctx = _Ctx(run, key, run.domain_names(), run.class_names(), run.status(), explicit=method is not None)
    body = []
    for sid, title, build in SECTIONS:
        try:
            html_ = build(ctx)
        except SECTION_ERRORS as exc:
            html_ = _note(f"This section could not be built: {_one_line(exc)}")
        body.append(f'<section id="{sid}">\n<h2>{_e(title)}</h2>\n{html_}\n</section>')
    toc = "".join(f'<li><a href="#{sid}">{_e(title)}</a></li>' for sid, title, _ in SECTIONS)
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    config_name = run.config.get("name")
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>Unitax report: {_e(run.id)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
        f"<header><h1>Unitax report: {_e(run.id)}</h1>\n"
        f'<p class="note">{_e(f"config {config_name}" if config_name else "no config")} · '
        f"state {_e(ctx.status.get('state', '?'))} · generated {_e(now)}</p></header>\n"
        f"<nav><ol>{toc}</ol></nav>\n" + "\n".join(body) + "\n"
        "<footer>Written by unitax (python -m core report). Self-contained: no script, nothing loaded from "
        "elsewhere. Numbers are read from the run folder as they were when the report was made.</footer>\n"
        "</body>\n</html>\n"
    )
