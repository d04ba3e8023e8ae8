"""Slow, obviously-correct reference implementations, for tests and benchmarks only.

Per-row Python loops for the selection methods, and the thesis-style rule engine that restarts
a full scan after every change. The fast versions in ``core.selection`` and ``core.taxonomy``
must agree with these.
"""

from __future__ import annotations

import numpy as np


def _order(x: np.ndarray) -> np.ndarray:
    return np.argsort(-x, kind="stable")  # value desc, column asc


def select_row(x: np.ndarray, method: str, **params: float) -> dict[int, float]:
    """Edges {j: weight} of one row x (K_b,) of P."""
    k_b = x.size
    if method == "threshold":
        return {j: float(x[j]) for j in range(k_b) if x[j] >= params["t"] and x[j] > 0}
    if x.sum() == 0:
        return {}
    order = _order(x)
    if method in ("mcfp", "mcfp_binary"):
        j = int(order[0])
        return {j: 1.0 if method == "mcfp_binary" else float(x[j])}
    if method == "density":
        out, total = {}, 0.0
        for j in order:
            if total >= params["p"] - 1e-9 or x[j] <= 0:
                break
            out[int(j)] = float(x[j])
            total += x[j]
        return out
    if method == "hypothesis":
        xs = x[order]
        costs = [float(np.abs(xs - 1.0 / k_b).sum())]
        for k in range(1, min(int(params["k_max"]), k_b) + 1):
            costs.append(float(np.abs(xs[:k] - 1.0 / k).sum() + xs[k:].sum()))
        best = min(range(len(costs)), key=lambda k: (round(costs[k], 12), k))
        return {int(j): float(x[j]) for j in order[:best] if x[j] > 0}
    raise ValueError(method)


def select_loop(P: np.ndarray, method: str, **params: float) -> np.ndarray:
    """W (K_a, K_b) by a Python loop over rows."""
    w = np.zeros_like(P, dtype=np.float64)
    for i in range(P.shape[0]):
        for j, v in select_row(P[i], method, **params).items():
            w[i, j] = v
    return w


def build_taxonomy_restart(relationships: dict, class_counts: list[int]) -> dict:
    """The rule engine applied literally: one change, then a full rescan from rule 1.

    Returns {(a, i): {frozenset of (a, i): weight}}, the universal links of every domain class.
    """
    edges = {}
    for (a, b), w in relationships.items():
        w = np.asarray(w)
        for i, j in zip(*np.nonzero(w > 0)):
            edges[((a, int(i)), (b, int(j)))] = float(w[i, j])
    nodes = [(a, i) for a, k in enumerate(class_counts) for i in range(k)]
    links: dict = {node: {} for node in nodes}

    def step() -> bool:
        touched = {x for e in edges for x in e}
        for node in nodes:  # rule 1
            if node not in touched and not links[node]:
                links[node][frozenset([node])] = 1.0
                return True
        for x, y in sorted(edges):  # rule 2
            if (y, x) in edges:
                w = (edges[(x, y)] + edges[(y, x)]) / 2
                s = frozenset([x, y])
                links[x][s] = w
                links[y][s] = w
                del edges[(x, y)], edges[(y, x)]
                return True
        for x, y in sorted(edges):  # rule 3
            for y2, z in sorted(e for e in edges if e[0] == y):
                if z[0] == x[0] and z != x:
                    if edges[(x, y)] < edges[(y2, z)]:
                        del edges[(x, y)]
                    else:
                        del edges[(y2, z)]
                    return True
        for x, y in sorted(edges):  # rule 4
            w, s = edges.pop((x, y)), frozenset([x, y])
            links[x][s] = w
            links[y][s] = w
            links[y][frozenset([y])] = 1.0
            return True
        return False

    while step():
        pass
    return links
