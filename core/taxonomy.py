"""Universal taxonomy from selected relationships (the thesis's rule engine; docs/architecture.md).

Relationships are directed edges (a,i) -> (b,j) between classes of different domains, with
weights W_ab[i, j] > 0. The rules, applied one change at a time in this priority order until
nothing changes, always to the first match in (domain, class) order (the thesis's code takes the
first match in its graph's iteration order instead, which can differ under rule 3):

1. an isolated domain class A (no edges) maps to U{A}, weight 1;
2. a bidirectional pair A <-> B: both map to U{A, B}, weight = mean of the two weights, and
   both edges are removed;
3. a chain A -> B -> C with A and C in the same domain: the lighter edge is removed (on equal
   weights, B -> C, as the thesis does);
4. a one-way edge A -> B: A and B map to U{A, B} (weight w), B also to U{B} (weight 1), and the
   edge is removed.

Rules 1, 2 and 4 never create work for a higher-priority rule except rule 3 isolating a class,
and edges are only ever removed, so the fixed point is reached by phases: all bidirectional
pairs (vectorised), one ordered pass over the chains (the only order-dependent rule), then
rule 4 (vectorised) and rule 1. ``core._reference.build_taxonomy_restart`` is the literal
restart-after-every-change engine; the tests check that both agree.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import sparse

from core._validation import as_class_counts, as_matrix, check_pair_dict
from core.selection import Edges

Pair = tuple[int, int]
DomainClass = tuple[int, int]


@dataclass(frozen=True)
class UniversalTaxonomy:
    """Universal classes and the per-domain mappings derived from them.

    classes[u]: frozenset of domain classes (a, i); names[u]: readable name;
    links: (L, 4) float array of rows (a, i, u, weight), one per domain-class -> universal
    edge, sorted. mappings[a] (K_a, U) is derived from links.
    """

    classes: list[frozenset[DomainClass]]
    names: list[str]
    links: np.ndarray
    class_counts: list[int]
    class_names: list[list[str]]
    domain_names: list[str]

    @property
    def n_universal(self) -> int:
        """U, the number of universal classes."""
        return len(self.classes)

    @cached_property
    def sparse_mappings(self) -> list[sparse.csr_array]:
        """M_a as scipy.sparse CSR arrays (K_a, U), float64, one per domain: the form every
        large-scale path uses (a class maps to a handful of universal classes, so M_a holds
        about K_a entries; 1,000 x 75,000 dense would be 600 MB per domain)."""
        a, i, u = (self.links[:, c].astype(np.int64) for c in range(3))
        out = []
        for d, k in enumerate(self.class_counts):
            sel = a == d
            m = sparse.csr_array((self.links[sel, 3], (i[sel], u[sel])), shape=(k, self.n_universal))
            m.sum_duplicates()
            m.sort_indices()
            out.append(m)
        return out

    @cached_property
    def mappings(self) -> list[np.ndarray]:
        """M_a (K_a, U) dense, for every domain: M_a[i, u] = weight of a:i in universal class u.
        For small taxonomies (tables, reports, tests); large ones use :attr:`sparse_mappings`."""
        return [m.toarray() for m in self.sparse_mappings]

    @property
    def graph(self):
        """networkx DiGraph: domain nodes "a:i" -> universal nodes "u:k", attribute weight."""
        import networkx as nx

        g = nx.DiGraph()
        for a, names in enumerate(self.class_names):
            for i, name in enumerate(names):
                g.add_node(f"{a}:{i}", kind="domain", domain=self.domain_names[a], label=name)
        for u, name in enumerate(self.names):
            g.add_node(f"u:{u}", kind="universal", domain="universal", label=name, size=len(self.classes[u]))
        for a, i, u, w in self.links:
            g.add_edge(f"{int(a)}:{int(i)}", f"u:{int(u)}", weight=float(w))
        return g

    def to_graphml(self, path: str | Path) -> None:
        """Write the graph as GraphML."""
        import networkx as nx

        nx.write_graphml(self.graph, str(path))

    def mapping_table(self) -> pd.DataFrame:
        """One row per domain-class -> universal edge (the CSV export)."""
        rows = [
            {
                "domain": self.domain_names[int(a)],
                "class_index": int(i),
                "class_name": self.class_names[int(a)][int(i)],
                "universal_index": int(u),
                "universal_name": self.names[int(u)],
                "weight": float(w),
            }
            for a, i, u, w in self.links
        ]
        return pd.DataFrame(
            rows, columns=["domain", "class_index", "class_name", "universal_index", "universal_name", "weight"]
        )

    def label_map(self) -> dict:
        """UniDet-style label map: per domain, each class's main universal class (highest
        weight, ties: lowest index), plus every (universal index, weight) in ``label_map_multi``.
        Built from the links (never a dense K_a x U matrix)."""
        main: dict[str, list[int]] = {}
        multi: dict[str, list[list[list]]] = {}
        for a, m in enumerate(self.sparse_mappings):
            m = m.copy()
            m.eliminate_zeros()
            ptr, cols, vals = m.indptr.tolist(), m.indices.tolist(), m.data.tolist()  # columns sorted per row
            rows_main, rows_multi = [], []
            for lo, hi in zip(ptr[:-1], ptr[1:]):
                row_c, row_v = cols[lo:hi], vals[lo:hi]
                rows_main.append(row_c[row_v.index(max(row_v))] if row_c else 0)  # first maximum
                rows_multi.append([[c, v] for c, v in zip(row_c, row_v)])
            main[self.domain_names[a]] = rows_main
            multi[self.domain_names[a]] = rows_multi
        return {"unified_names": list(self.names), "label_map": main, "label_map_multi": multi}

    def to_json(self) -> str:
        """JSON text; ``from_json`` reads it back exactly."""
        return json.dumps(
            {
                "format": "unitax-taxonomy",
                "version": 1,
                "domain_names": self.domain_names,
                "class_counts": self.class_counts,
                "class_names": self.class_names,
                "classes": [
                    {"name": n, "members": sorted([int(a), int(i)] for a, i in c)}
                    for n, c in zip(self.names, self.classes)
                ],
                "links": [[int(a), int(i), int(u), w] for a, i, u, w in self.links.tolist()],
            }
        )

    @classmethod
    def from_json(cls, text: str) -> UniversalTaxonomy:
        try:
            d = json.loads(text)
            if not isinstance(d, dict) or d.get("format") != "unitax-taxonomy":
                raise ValueError(f"format is {d.get('format') if isinstance(d, dict) else type(d).__name__!r}")
            classes = [frozenset((int(a), int(i)) for a, i in c["members"]) for c in d["classes"]]
            links = np.array(d["links"], dtype=np.float64).reshape(-1, 4)
            counts = [int(k) for k in d["class_counts"]]
            _check_links(links, counts, len(classes))
            return cls(classes, [c["name"] for c in d["classes"]], links, counts, d["class_names"], d["domain_names"])
        except (KeyError, TypeError, ValueError, AttributeError, RecursionError) as exc:
            raise ValueError(f"not a taxonomy JSON: {exc}") from None


MAX_CLASSES = 10_000_000  # per domain and universal: more is a damaged file, not a dataset


def _check_links(links: np.ndarray, counts: list[int], n_universal: int) -> None:
    """ValueError unless every link (a, i, u, w) (L, 4) names an existing domain class and universal
    class by integer, with a finite weight > 0, at most once (the writer never repeats one)."""
    if not counts or min(counts) < 1 or max(counts) > MAX_CLASSES or not 0 <= n_universal <= MAX_CLASSES:
        raise ValueError(f"class counts {counts[:5]} / {n_universal} universal classes are out of range")
    ids = links[:, :3]
    if not np.isfinite(links).all() or (ids != np.round(ids)).any() or (links[:, 3] <= 0).any():
        raise ValueError("a link has a non-integer id or a weight that is not finite and > 0")
    a, i, u = (ids[:, c].astype(np.int64) for c in range(3))
    bad = (a < 0) | (a >= len(counts)) | (u < 0) | (u >= n_universal) | (i < 0)
    bad |= ~bad & (i >= np.asarray(counts, dtype=np.int64)[np.clip(a, 0, len(counts) - 1)])
    if bad.any():
        raise ValueError(f"link {links[np.argmax(bad)].tolist()} names a class the taxonomy does not have")
    if len(np.unique(ids, axis=0)) != len(links):
        raise ValueError("a link (domain, class, universal class) is listed twice")


def _edge_arrays(relationships: Mapping[Pair, object], counts: list[int]):
    """Global node ids (gid = offset[a] + i) and weights of every edge, sorted by (src, dst)."""
    offsets = np.concatenate(([0], np.cumsum(counts)[:-1]))
    src, dst, w = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)], [np.zeros(0)]
    for (a, b), mat in relationships.items():
        e = mat if isinstance(mat, Edges) else Edges.from_dense(as_matrix(mat, name=f"W[{(a, b)!r}]"))
        src.append(offsets[a] + e.rows)
        dst.append(offsets[b] + e.cols)
        w.append(e.weights)
    src, dst, w = np.concatenate(src), np.concatenate(dst), np.concatenate(w)
    order = np.lexsort((dst, src))
    return offsets, src[order], dst[order], w[order]


def _drop_chains(src: np.ndarray, dst: np.ndarray, w: np.ndarray, dom: np.ndarray) -> np.ndarray:
    """Rule 3 in (A, B, C) order: a keep-mask over the edges (sorted by src, dst)."""
    n_dom = int(dom.max()) + 1 if dom.size else 1
    # only edges A -> B where B has an edge into A's domain can start a chain
    has_out = np.unique(src * n_dom + dom[dst])
    starts = np.flatnonzero(np.isin(dst * n_dom + dom[src], has_out))
    keep = np.ones(src.size, dtype=bool)
    if starts.size == 0:
        return keep
    # out-edges of each node grouped by target domain, in (B, domain(C), C) order
    order = np.lexsort((dst, dom[dst], src))
    group_key = src[order] * n_dom + dom[dst[order]]
    lo = np.searchsorted(group_key, dst[starts] * n_dom + dom[src[starts]], side="left")
    hi = np.searchsorted(group_key, dst[starts] * n_dom + dom[src[starts]], side="right")
    order_l, w_l, keep_l = order.tolist(), w.tolist(), [True] * src.size
    for e, l0, h0 in zip(starts.tolist(), lo.tolist(), hi.tolist()):
        for k in range(l0, h0):
            if not keep_l[e]:
                break
            f = order_l[k]
            if not keep_l[f]:
                continue
            if w_l[e] < w_l[f]:
                keep_l[e] = False
            else:
                keep_l[f] = False
    return np.array(keep_l, dtype=bool)


def build_universal_taxonomy(
    relationships: Mapping[Pair, object],
    class_counts: Sequence[int],
    *,
    class_names: Sequence[Sequence[str]] | None = None,
    domain_names: Sequence[str] | None = None,
) -> UniversalTaxonomy:
    """Universal classes and mappings M_a from {(a, b): W_ab (K_a, K_b)} (dense or ``Edges``).

    Deterministic: the same relationships in any order give the same taxonomy.
    """
    counts = as_class_counts(class_counts)
    check_pair_dict(relationships, counts, name="relationships")
    dnames = (
        [str(n) for n in domain_names]
        if domain_names is not None
        else [chr(65 + a) if a < 26 else f"D{a}" for a in range(len(counts))]
    )
    if len(dnames) != len(counts):
        raise ValueError(f"got {len(dnames)} domain names for {len(counts)} domains")
    cnames = (
        [[str(n) for n in names] for names in class_names]
        if class_names is not None
        else [[str(i) for i in range(k)] for k in counts]
    )
    if [len(n) for n in cnames] != counts:
        raise ValueError(f"class_names sizes {[len(n) for n in cnames]} differ from class_counts {counts}")

    offsets, src, dst, w = _edge_arrays(relationships, counts)
    dom = np.repeat(np.arange(len(counts)), counts)
    n = int(sum(counts))
    links: list[tuple[tuple[int, ...], np.ndarray, np.ndarray]] = []  # (members, node, weight)

    # rule 2: bidirectional pairs
    key, rev = src * n + dst, dst * n + src
    pos = np.searchsorted(key, rev)
    pos[pos >= key.size] = 0
    bidir = key[pos] == rev if key.size else np.zeros(0, dtype=bool)
    pair = bidir & (src < dst)
    mean_w = (w[pair] + w[pos[pair]]) / 2
    members2 = np.stack([src[pair], dst[pair]], axis=1)
    links.append((members2, src[pair], mean_w))
    links.append((members2, dst[pair], mean_w))
    src, dst, w = src[~bidir], dst[~bidir], w[~bidir]

    # rule 3: chains within a domain, one ordered pass
    keep = _drop_chains(src, dst, w, dom)
    src, dst, w = src[keep], dst[keep], w[keep]

    # rule 4: one-way edges
    members4 = np.stack([np.minimum(src, dst), np.maximum(src, dst)], axis=1)
    links.append((members4, src, w))
    links.append((members4, dst, w))
    links.append((dst[:, None], dst, np.ones(dst.size)))

    # rule 1: classes left without any link (isolated from the start or by rule 3)
    linked = np.zeros(n, dtype=bool)
    for _, nodes, _ in links:
        linked[nodes] = True
    lone = np.flatnonzero(~linked)
    links.append((lone[:, None], lone, np.ones(lone.size)))

    return _assemble(links, offsets, counts, cnames, dnames)


def _assemble(links, offsets, counts, cnames, dnames) -> UniversalTaxonomy:
    """Number the universal classes (shared first, then singletons; each by members) and
    collect one link per (domain class, universal class)."""
    n = int(sum(counts))
    lo, hi, node, weight = [], [], [], []
    for members, nodes, weights in links:
        lo.append(members[:, 0])
        hi.append(members[:, 1] if members.shape[1] > 1 else np.full(len(members), -1))
        node.append(nodes)
        weight.append(weights)
    lo, hi = np.concatenate(lo).astype(np.int64), np.concatenate(hi).astype(np.int64)
    node, weight = np.concatenate(node).astype(np.int64), np.concatenate(weight)
    key = (hi < 0) * (n + 1) ** 2 + lo * (n + 1) + (hi + 1)
    ukeys, first, u = np.unique(key, return_index=True, return_inverse=True)
    u_lo, u_hi = lo[first], hi[first]
    _, keep = np.unique(node * len(ukeys) + u, return_index=True)  # repeats have equal weights
    node, u, weight = node[keep], u[keep], weight[keep]
    dom = np.repeat(np.arange(len(counts)), counts)
    local = np.arange(n) - offsets[dom]
    dl, ll = dom.tolist(), local.tolist()
    classes, names = [], []
    for a_g, b_g in zip(u_lo.tolist(), u_hi.tolist()):
        members = [(dl[a_g], ll[a_g])] + ([(dl[b_g], ll[b_g])] if b_g >= 0 else [])
        classes.append(frozenset(members))
        names.append(" / ".join(f"{dnames[a]}:{cnames[a][i]}" for a, i in members))
    arr = np.stack([dom[node], local[node], u, weight], axis=1).astype(np.float64)
    arr = arr[np.lexsort((arr[:, 2], arr[:, 1], arr[:, 0]))]
    return UniversalTaxonomy(classes, names, arr, list(counts), cnames, dnames)
