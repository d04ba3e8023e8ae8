"""Widget groups of the 🗂️ Domains page; each returns a plain config section (dict)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.config import SHIFTS

__all__ = ["BACKBONES", "SOURCES", "synthetic_section", "datasets_section", "model_section"]

BACKBONES = ["efficientnet_lite0", "resnet18", "resnet50", "convnext_tiny", "vit_small_patch16_224"]
SOURCES = ["procedural", "digits", "cifar100", "caltech101", "caltech256", "imagefolder"]
SHIFT_HELP = "A: noisy greyscale · B: rotation + blur · C: random erasing + colour jitter + perspective"


def synthetic_section() -> dict:
    """Synthetic domains over a base source (DESIGN 4.2)."""
    c = st.columns(4)
    base = c[0].selectbox("Base images", ["procedural", "digits", "cifar100", "caltech256"], key="dom_base",
                          help="procedural and digits are built in; CIFAR-100/Caltech-256 need data_root")
    n_concepts = c[1].number_input("Concepts", 2, 500, 24, key="dom_n_concepts")
    n_domains = c[2].number_input("Domains", 2, 10, 3, key="dom_n_domains")
    c[3].number_input("Seed", 0, 2**31 - 1, 42, key="dom_seed")
    c = st.columns(4)
    concepts_mean = c[0].number_input("Concepts per domain (mean)", 1.0, 500.0, 14.0, key="dom_cm")
    concepts_var = c[1].number_input("… variance", 0.0, 500.0, 4.0, key="dom_cv")
    size_mean = c[2].number_input("Concepts per class (mean)", 1.0, 50.0, 1.8, key="dom_sm")
    size_var = c[3].number_input("… variance", 0.0, 50.0, 1.0, key="dom_sv")
    cols = st.columns(int(n_domains))
    shifts = [col.selectbox(f"Shift of syn{a}", SHIFTS, index=(a % 3) + 1, key=f"dom_shift_{a}", help=SHIFT_HELP)
              for a, col in enumerate(cols)]
    return {"base": base, "n_concepts": int(n_concepts), "n_domains": int(n_domains),
            "concepts_mean": float(concepts_mean), "concepts_var": float(concepts_var),
            "class_size_mean": float(size_mean), "class_size_var": float(size_var), "shifts": shifts}


def datasets_section() -> list[dict]:
    """Real datasets: one editable row per domain."""
    start = pd.DataFrame([{"name": "digits", "source": "digits", "shift": "none", "root": ""},
                          {"name": "shapes", "source": "procedural", "shift": "B", "root": ""}])
    table = st.data_editor(start, num_rows="dynamic", key="dom_table", width="stretch", column_config={
        "source": st.column_config.SelectboxColumn(options=SOURCES, required=True),
        "shift": st.column_config.SelectboxColumn(options=list(SHIFTS), required=True, help=SHIFT_HELP),
        "root": st.column_config.TextColumn(help="folder of this dataset (imagefolder: one sub-folder per class)"),
    })
    rows = []
    for r in table.to_dict("records"):
        if not r.get("name") and not r.get("source"):
            continue
        row = {"name": str(r.get("name") or ""), "source": str(r.get("source") or ""), "shift": r.get("shift") or "none"}
        root = r.get("root")
        if isinstance(root, str) and root.strip():  # an empty cell comes back as "" or NaN
            row["root"] = root.strip()
        rows.append(row)
    return rows


def model_section() -> dict:
    """Backbone, image size, training length and the selection methods to build."""
    c = st.columns(4)
    backbone = c[0].selectbox("Backbone", BACKBONES, key="dom_backbone", accept_new_options=True,
                              help="efficientnet_lite0 works offline; others need cached weights")
    size = c[1].select_slider("Image size", [32, 48, 64, 96, 128, 160, 224], 64, key="dom_size")
    epochs = c[2].number_input("Epochs", 1, 500, 30, key="dom_epochs")
    preset = c[3].selectbox("Heads", ["default", "thesis", "linear"], key="dom_head",
                            help="thesis: 6-layer FC baselines as published")
    head = {} if preset == "default" else {"preset": preset}
    return {"features": {"backbone": backbone, "image_size": int(size)},
            "baselines": {"head": head, "train": {"epochs": int(epochs)}}}
