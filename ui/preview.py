"""Previews of a domain setup before launch: class counts and a grid of images per class."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

__all__ = ["synthetic_classes", "class_images", "synthetic_preview"]


@st.cache_data(show_spinner=False, max_entries=32)
def synthetic_classes(syn: dict, seed: int) -> list[list[list[int]]]:
    """Concept ids of every class of every synthetic domain: [a][i] -> sorted concept ids."""
    from core.synthetic import make_synthetic_taxonomy

    tax = make_synthetic_taxonomy(
        syn["n_concepts"],
        syn["n_domains"],
        syn["concepts_mean"],
        syn["concepts_var"],
        syn["class_size_mean"],
        syn["class_size_var"],
        seed=seed,
    )
    return [[sorted(int(c) for c in cls) for cls in dom] for dom in tax.domains]


@st.cache_data(show_spinner=False, max_entries=64)
def class_images(concepts: tuple[int, ...], n: int = 6, size: int = 64, seed: int = 0) -> list[np.ndarray]:
    """``n`` procedural images of a class (its concepts in turn), unshifted."""
    from core.procedural import render

    conc = np.array([concepts[k % len(concepts)] for k in range(n)])
    return list(render(conc, np.arange(n), size=size, seed=seed))


def synthetic_preview(cfg: dict) -> None:
    """Class counts per domain, and images of the first classes of one domain."""
    from core.config import default_domain_names
    from core.procedural import concept_names

    syn, seed = cfg["domains"]["synthetic"], int(cfg.get("seed", 42))
    classes = synthetic_classes(syn, seed)
    names = syn.get("names") or default_domain_names(len(classes))
    counts = pd.DataFrame(
        {"domain": names, "classes": [len(d) for d in classes], "concepts": [sum(len(c) for c in d) for d in classes]}
    )
    left, right = st.columns([1, 2])
    left.dataframe(counts, hide_index=True)
    a = right.selectbox("Preview domain", range(len(classes)), format_func=lambda a: names[a], key="dom_prev")
    if syn["base"] != "procedural":
        right.caption("Image previews are drawn for the built-in procedural base; other bases show class lists.")
    cnames = concept_names(max(syn["n_concepts"], 1)) if syn["base"] == "procedural" else None
    for i, conc in enumerate(classes[a][:8]):
        label = " + ".join(cnames[c] if cnames else f"concept {c}" for c in conc)
        right.markdown(f"**class {i}** · {label}")
        if cnames:
            right.image(class_images(tuple(conc)), width=64)
    if len(classes[a]) > 8:
        right.caption(f"… and {len(classes[a]) - 8} more classes")


@st.cache_resource(show_spinner=False, max_entries=4)
def built_domains(cfg_json: str) -> list:
    """The domains of a config, built exactly as the pipeline builds them (no run folder)."""
    import json

    from core.config import config_from_dict
    from core.domains import domains_from_config

    return domains_from_config(config_from_dict(json.loads(cfg_json)))


@st.cache_data(show_spinner=False, max_entries=32)
def domain_grid(cfg_json: str, a: int, max_classes: int = 12) -> tuple[np.ndarray, list[str]]:
    """core.domains.preview_grid of domain ``a`` (shift applied: what the model sees)."""
    from core.domains import preview_grid

    return preview_grid(built_domains(cfg_json)[a], per_class=6, max_classes=max_classes, size=64)


def domains_preview(cfg: dict) -> None:
    """Class counts and an image grid per domain of any config (synthetic or real)."""
    import json

    cfg_json = json.dumps(cfg, sort_keys=True, default=str)
    doms = built_domains(cfg_json)
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "domain": d.name,
                    "source": d.source,
                    "shift": d.shift,
                    "classes": len(d.class_names),
                    "train": len(d.labels["train"]),
                    "val": len(d.labels["val"]),
                    "test": len(d.labels["test"]),
                }
                for d in doms
            ]
        ),
        hide_index=True,
    )
    a = st.selectbox("Domain", range(len(doms)), format_func=lambda a: doms[a].name, key="dom_grid_a")
    grid, names = domain_grid(cfg_json, a)
    left, right = st.columns([1, 3])
    left.markdown("\n".join(f"{i}. {n}" for i, n in enumerate(names)))
    right.image(grid, caption=f"{doms[a].name}: 6 training images per class, shift {doms[a].shift}")
