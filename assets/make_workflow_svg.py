"""Writes assets/workflow.svg, the home page's picture (drawn here in code, nothing downloaded):
three domains with their own classes -> cross-domain matrices -> relationship graph -> one
universal model. Run: python assets/make_workflow_svg.py"""

from pathlib import Path

COLOURS = ["#0072B2", "#E69F00", "#009E73"]
W, H = 920, 260


def box(x, y, w, h, title, colour="#3d3d5c"):
    return (
        f'<rect x="{x}" y="{y}" width="{w}" height="{h}" rx="14" fill="none" stroke="{colour}" '
        f'stroke-width="2"/><text x="{x + w / 2}" y="{y + h + 22}" text-anchor="middle" '
        f'font-size="15" fill="#808495">{title}</text>'
    )


def arrow(x1, x2, y):
    return (
        f'<line x1="{x1}" y1="{y}" x2="{x2 - 8}" y2="{y}" stroke="#888" stroke-width="2.5"/>'
        f'<polygon points="{x2},{y} {x2 - 10},{y - 6} {x2 - 10},{y + 6}" fill="#888"/>'
    )


def svg() -> str:
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" font-family="sans-serif">']
    parts.append(box(20, 20, 170, 190, "domains, own classes"))
    for d, c in enumerate(COLOURS):  # three domains, a few classes each
        for k in range(3 + d % 2):
            parts.append(f'<circle cx="{50 + 45 * d}" cy="{50 + 40 * k}" r="13" fill="{c}" opacity="0.85"/>')
    parts.append(arrow(195, 245, 115))
    parts.append(box(250, 20, 170, 190, "cross-domain P_ab"))
    for r in range(6):
        for q in range(6):
            v = 0.15 + 0.85 * ((r == q) or (r + q) % 5 == 0) * (0.6 + 0.4 * ((r * q) % 3) / 2)
            parts.append(
                f'<rect x="{275 + 20 * q}" y="{45 + 22 * r}" width="18" height="20" fill="#3b6fd4" opacity="{v:.2f}"/>'
            )
    parts.append(arrow(425, 475, 115))
    parts.append(box(480, 20, 170, 190, "universal taxonomy"))
    hubs = [(565, 60), (530, 140), (610, 150)]
    leaves = [(505, 45, 0), (625, 45, 1), (500, 185, 2), (570, 110, 1), (640, 195, 0), (600, 95, 2)]
    for (x, y, d), (hx, hy) in zip(leaves, hubs * 2):
        parts.append(f'<line x1="{x}" y1="{y}" x2="{hx}" y2="{hy}" stroke="#aaa" stroke-width="1.5"/>')
        parts.append(f'<circle cx="{x}" cy="{y}" r="9" fill="{COLOURS[d]}"/>')
    for hx, hy in hubs:
        parts.append(
            f'<rect x="{hx - 10}" y="{hy - 10}" width="20" height="20" fill="#3d3d5c" '
            f'transform="rotate(45 {hx} {hy})"/>'
        )
    parts.append(arrow(655, 705, 115))
    parts.append(box(710, 20, 190, 190, "one universal model"))
    for layer, n in enumerate((5, 4, 6)):
        for k in range(n):
            parts.append(
                f'<circle cx="{750 + 55 * layer}" cy="{115 - 14 * (n - 1) + 28 * k}" r="8" '
                f'fill="{"#3b6fd4" if layer < 2 else "#3d3d5c"}"/>'
            )
    parts.append("</svg>")
    return "\n".join(parts)


if __name__ == "__main__":
    Path(__file__).with_name("workflow.svg").write_text(svg(), encoding="utf-8")
