"""Tables and exports around a UniversalTaxonomy (no streamlit import, no maths beyond lookups)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from core.mapping_io import defuse

__all__ = ["universal_table", "member_pairs", "evidence_indices", "exports"]


def universal_table(tax, class_names: list[list[str]], domain_names: list[str]) -> pd.DataFrame:
    """One row per universal class: id, name, member count, domains, members "domain: class"."""
    rows = []
    for u, members in enumerate(tax.classes):
        mem = sorted(members)
        rows.append(
            {
                "universal": f"U{u}",
                "name": tax.names[u],
                "size": len(mem),
                "domains": len({a for a, _ in mem}),
                "members": ", ".join(f"{domain_names[a]}: {class_names[a][i]}" for a, i in mem),
            }
        )
    return pd.DataFrame(rows)


def matching_classes(tax, domains: tuple[int, ...], search: str = "") -> list[int]:
    """Universal classes with a member in ``domains`` whose name contains ``search`` (any case),
    the same filter the graph applies."""
    needle = search.strip().lower()
    return [
        u
        for u, members in enumerate(tax.classes)
        if any(a in domains for a, _ in members) and needle in tax.names[u].lower()
    ]


def member_pairs(members, counts: dict, mats: dict, class_names, domain_names) -> pd.DataFrame:
    """Cross-domain evidence inside one universal class: for members a:i and b:j of different
    domains, the number of a:i test images the domain-b model predicted as j, and P_ab[i, j]."""
    rows = []
    mem = sorted(members)
    for a, i in mem:
        for b, j in mem:
            if a == b or (a, b) not in mats:
                continue
            C = counts.get((a, b))
            rows.append(
                {
                    "from": f"{domain_names[a]}: {class_names[a][i]}",
                    "seen by": f"{domain_names[b]} model as {class_names[b][j]}",
                    "images": int(C[i, j]) if C is not None else None,
                    "P": float(mats[(a, b)][i, j]),
                    "a": a,
                    "i": i,
                    "b": b,
                    "j": j,
                }
            )
    return pd.DataFrame(rows, columns=["from", "seen by", "images", "P", "a", "i", "b", "j"])


def evidence_indices(predictions: dict | None, a: int, i: int, b: int, j: int) -> np.ndarray:
    """Indices in domain a's test split of the images of class i that domain b's model
    predicted as j (prediction rows mapped through ``item``: unreadable images have no row)."""
    if predictions is None or a not in predictions["true"] or (a, b) not in predictions["pred"]:
        return np.zeros(0, dtype=np.int64)
    true, pred = predictions["true"][a], predictions["pred"][(a, b)]
    rows = np.flatnonzero((true == i) & (pred == j))
    item = predictions.get("item", {}).get(a)
    return rows if item is None else np.asarray(item)[rows]


def exports(tax, relations: pd.DataFrame | None = None) -> dict[str, tuple[bytes, str, str]]:
    """Download payloads: {label: (bytes, file name, mime type)} for JSON, GraphML, CSV, label map
    and, given ``relations`` (ui.evidence_data.relation_table), the relationships as "Edges CSV"
    (one row per selected edge a:i -> b:j with its relation type, confidence and evidence)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "taxonomy.graphml"
        tax.to_graphml(path)
        graphml = path.read_bytes()
    return {
        "Taxonomy JSON": (tax.to_json().encode(), "taxonomy.json", "application/json"),
        "GraphML": (graphml, "taxonomy.graphml", "application/xml"),
        "Mappings CSV": (defuse(tax.mapping_table()).to_csv(index=False).encode(), "mappings.csv", "text/csv"),
        "label_map JSON": (json.dumps(tax.label_map(), indent=2).encode(), "label_map.json", "application/json"),
        **(
            {}
            if relations is None
            else {"Edges CSV": (defuse(relations).to_csv(index=False).encode(), "edges.csv", "text/csv")}
        ),
    }
