"""The report's figures as inline SVG (no plotting library, no script): :func:`line_plot_svg`
(a line plot with axes, round ticks from :func:`nice_ticks`, a legend) and the taxonomy picture
:func:`graph_svg` (the universal classes joining two or more domains and their members, in two
columns, each universal class labelled by :func:`universal_labels`), with the counts the report
shows beside it (:func:`taxonomy_stats`).

Every text read from the run is escaped (:func:`core.report_html.esc`); colours are
:mod:`core.palette`'s, as in the dashboard.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence

import numpy as np

from core.palette import DOMAIN_COLOURS, UNIVERSAL_COLOUR
from core.report_html import LABEL_CHARS, cut, esc, num

__all__ = [
    "MAX_GRAPH_NODES",
    "nice_ticks",
    "axis_range",
    "line_plot_svg",
    "taxonomy_stats",
    "universal_labels",
    "graph_svg",
]

MAX_GRAPH_NODES = 60  # nodes in the taxonomy picture (universal classes + their members)


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


def axis_range(values: Sequence[float], pad: float = 0.05) -> tuple[float, float]:
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
    x0, x1 = axis_range(xs, pad=0.03) if not whole or min(xs) < max(xs) else (xs[0] - 1, xs[0] + 1)
    y0, y1 = y_range if y_range is not None else axis_range(ys)

    def px(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * pw

    def py(y: float) -> float:
        return top + (1 - (y - y0) / (y1 - y0)) * ph

    out = [
        f'<svg viewBox="0 0 {width} {total_h}" width="{width}" height="{total_h}" role="img" '
        f'aria-label="{esc(title or y_label)}">',
        f"<title>{esc(title or y_label)}</title>",
        f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#bbb"/>',
    ]
    if title:
        out.append(f'<text x="{left + pw / 2:.1f}" y="16" text-anchor="middle" font-size="12" '
                   f'font-weight="600">{esc(title)}</text>')  # fmt: skip
    for axis, lo, hi in (("x", x0, x1), ("y", y0, y1)):
        ticks = [t for t in nice_ticks(lo, hi, 5 if axis == "y" else 6) if lo <= t <= hi]
        if axis == "x" and whole and sum(t == round(t) for t in ticks) >= 2:
            ticks = [t for t in ticks if t == round(t)]
        step = ticks[1] - ticks[0] if len(ticks) > 1 else 1.0
        for t in ticks:
            text = esc(_tick_text(t, step))
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
                   f'font-size="11">{esc(x_label)}</text>')  # fmt: skip
    if y_label:
        cy = top + ph / 2
        out.append(f'<text x="12" y="{cy:.1f}" text-anchor="middle" font-size="11" '
                   f'transform="rotate(-90 12 {cy:.1f})">{esc(y_label)}</text>')  # fmt: skip
    for h in hlines:
        if h["y"] is None or not math.isfinite(float(h["y"])) or not y0 <= float(h["y"]) <= y1:
            continue
        y = py(float(h["y"]))
        out.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{left + pw}" y2="{y:.1f}" stroke="{esc(h["colour"])}" '
            f'stroke-width="1.5" stroke-dasharray="5 3"><title>{esc(h["label"])}: {esc(num(h["y"]))}</title></line>'
        )
    for s in series:
        pts = [(float(x), float(y)) for x, y in zip(s["x"], s["y"])
               if x is not None and y is not None and math.isfinite(float(x)) and math.isfinite(float(y))]  # fmt: skip
        pts.sort()
        colour = esc(s["colour"])
        if len(pts) > 1:
            path = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in pts)
            out.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="1.8"/>')
        for x, y in pts:
            tip = f"{esc(s['label'])}: {esc(num(x, 4).rstrip('0').rstrip('.'))} → {esc(num(y))}"
            ring = s.get("best") is not None and float(s["best"]) == x
            extra = ' r="5" fill="white" stroke-width="2"' if ring else ' r="2.6" fill="' + colour + '"'
            out.append(
                f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}"{extra} stroke="{colour}"><title>{tip}</title></circle>'
            )
    for k, (label, colour, dashed) in enumerate(legend):
        y = height + 4 + 15 * k
        dash = ' stroke-dasharray="5 3"' if dashed else ""
        out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + 22}" y2="{y:.1f}" stroke="{esc(colour)}" '
                   f'stroke-width="2"{dash}/>')  # fmt: skip
        out.append(f'<text x="{left + 28}" y="{y + 3.5:.1f}" font-size="11">{esc(cut(label, 48))}</text>')
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
SEPARATORS = " +_-/:.,;|"  # where a common prefix of labels may end


def _strip_common_prefix(names: Sequence[str]) -> list[str]:
    """``names`` without the prefix all of them share (cut back to a separator, so no word is
    split; marked ``…``); unchanged when they share none, are fewer than two, or one would be empty."""
    prefix = os.path.commonprefix(list(names)) if len(names) > 1 else ""
    while prefix and prefix[-1] not in SEPARATORS:
        prefix = prefix[:-1]
    if not prefix or any(len(n) <= len(prefix) for n in names):
        return list(names)
    return ["…" + n[len(prefix) :] for n in names]


def universal_labels(tax, drawn: Sequence[int]) -> dict[int, str]:
    """A label per drawn universal class that tells it from the others: ``U<u> (<members>)`` and
    the class name of its most distinctive member (the one fewest drawn universal classes hold;
    ties: a name no earlier label shows, then the first by domain and index), without the
    prefix those names all share. Universal names (``dom:class / dom:class ...``) start alike
    when classes share their first member, so they are only the tooltips."""
    held: dict[tuple[int, int], int] = {}
    for u in drawn:
        for c in tax.classes[u]:
            held[c] = held.get(c, 0) + 1
    picks, used = [], set()
    for u in drawn:
        a, i = min(sorted(tax.classes[u]), key=lambda c: (held[c], tax.class_names[c[0]][c[1]] in used))
        picks.append((a, i))
        used.add(tax.class_names[a][i])
    short = _strip_common_prefix([tax.class_names[a][i] for a, i in picks])
    return {u: f"U{u} ({len(tax.classes[u])}) {name}" for u, name in zip(drawn, short)}


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
    :func:`_two_column_layout`. A universal class is labelled by :func:`universal_labels`. Labels
    are cut to ``label_chars`` characters; the full names are the tooltips."""
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
        w = 18 + 6.6 * len(cut(name, label_chars)) + 14
        if x and x + w > width - 10:
            x, line = 0.0, line + 1
        legend.append((a, name, 10 + x, 14 + 16 * line))
        x += w
    order, uni_y, member_y = _two_column_layout(tax, drawn, top=16 * (line + 1) + 22)
    height = int(max([*member_y.values(), *uni_y.values()]) + 16)
    xu, xc = 150, 400
    mappings = tax.sparse_mappings  # (K_a, U) CSR: never dense at tens of thousands of classes
    out = [
        f'<svg viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
        'aria-label="universal classes joining two or more domains">',
        "<title>universal classes joining two or more domains</title>",
    ]
    for a, name, lx, ly in legend:
        colour = DOMAIN_COLOURS[a % len(DOMAIN_COLOURS)]
        out.append(f'<circle cx="{lx + 5}" cy="{ly - 4}" r="5" fill="{colour}"/>')
        out.append(f'<text x="{lx + 14}" y="{ly}" font-size="11">{esc(cut(name, label_chars))}<title>{esc(name)}'
                   "</title></text>")  # fmt: skip
    for u in order:
        for a, i in sorted(tax.classes[u]):
            w = float(mappings[a][i, u])
            colour = DOMAIN_COLOURS[a % len(DOMAIN_COLOURS)]
            out.append(
                f'<line x1="{xu}" y1="{uni_y[u]:.1f}" x2="{xc}" y2="{member_y[a, i]:.1f}" stroke="{colour}" '
                f'stroke-opacity="0.75" stroke-width="{0.8 + 2.2 * min(max(w, 0.0), 1.0):.2f}"><title>'
                f"U{u} ← {esc(domain_names[a])}: {esc(tax.class_names[a][i])} (weight {w:.2f})</title></line>"
            )
    labels = universal_labels(tax, order)
    for u in order:
        tip = f"U{u} {tax.names[u]} ({len(tax.classes[u])} members)"
        y = uni_y[u]
        out.append(f'<circle cx="{xu}" cy="{y:.1f}" r="6" fill="{UNIVERSAL_COLOUR}"><title>{esc(tip)}</title>'
                   "</circle>")  # fmt: skip
        out.append(f'<text x="{xu - 10}" y="{y + 4:.1f}" text-anchor="end" font-size="11">'
                   f"{esc(cut(labels[u], label_chars))}<title>{esc(tip)}</title></text>")  # fmt: skip
    for (a, i), y in member_y.items():
        colour = DOMAIN_COLOURS[a % len(DOMAIN_COLOURS)]
        full = f"{domain_names[a]}: {tax.class_names[a][i]}"
        out.append(f'<circle cx="{xc}" cy="{y:.1f}" r="5" fill="{colour}"><title>{esc(full)}</title></circle>')
        out.append(f'<text x="{xc + 10}" y="{y + 4:.1f}" font-size="11">{esc(cut(tax.class_names[a][i], label_chars))}'
                   f"<title>{esc(full)}</title></text>")  # fmt: skip
    out.append("</svg>")
    left_out = len(joining) - len(drawn)
    caption = (
        f"Universal classes (left: U index, members in brackets, and the member class that the fewest other "
        f"classes shown hold, less the prefix all these names share) joining two or more domains, with their "
        f"member classes "
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
