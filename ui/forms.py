"""Widget groups of the 🗂️ Domains page; each returns a plain config section (dict)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd
import streamlit as st

from core.config import DomainConfig, RunConfig, default_domain_names
from core.registry import BACKBONES, DEFAULT_BACKBONE, SHIFTS, SOURCES, SYNTHETIC_BASES

__all__ = ["synthetic_section", "datasets_section", "model_section"]

# Names, notes and defaults come from core (core.registry, the config's defaults): none is repeated here.
_DEFAULTS = RunConfig()
_SYN = _DEFAULTS.domains.synthetic
_NO_SHIFT = next(f.default for f in dataclasses.fields(DomainConfig) if f.name == "shift")
_SHIFT_HELP = " · ".join(f"{name}: {text}" for name, text in SHIFTS.items())
_BASE_HELP = " · ".join(f"{name}: `{SOURCES[name]}`" for name in SYNTHETIC_BASES)
_SOURCE_HELP = " · ".join(f"{name}: `{text}`" for name, text in SOURCES.items())
DEMO_CONFIG = Path(__file__).resolve().parent.parent / "assets" / "configs" / "demo.yaml"
IMAGE_SIZES = [32, 48, 64, 96, 128, 160, 224]


def _start_image_size() -> int:
    """The image size the form starts on: the shipped demo's (the README's default setup, tuned
    for this), else RunConfig()'s."""
    from core.config import load_config

    try:
        size = load_config(DEMO_CONFIG).features.image_size
    except (OSError, ValueError, TypeError):
        size = _DEFAULTS.features.image_size
    return size if size in IMAGE_SIZES else _DEFAULTS.features.image_size


def _backbone_help() -> str:
    """Which known backbones work offline (their notes, grouped), and that any timm name may be typed."""
    by_note: dict[str, list[str]] = {}
    for name, info in BACKBONES.items():
        by_note.setdefault(info.note, []).append(name)
    return (
        " · ".join(f"{', '.join(names)}: {note}" for note, names in by_note.items())
        + " · or type any timm / torchvision model name"
    )


def synthetic_section() -> dict:
    """Synthetic domains over a base source: classes are sets of its concepts."""
    c = st.columns(4)
    base = c[0].selectbox(
        "Base images", SYNTHETIC_BASES, index=SYNTHETIC_BASES.index(_SYN.base), key="dom_base", help=_BASE_HELP
    )
    n_concepts = c[1].number_input("Concepts", 2, 500, _SYN.n_concepts, key="dom_n_concepts")
    n_domains = c[2].number_input("Domains", 2, 10, _SYN.n_domains, key="dom_n_domains")
    c[3].number_input("Seed", 0, 2**31 - 1, _DEFAULTS.seed, key="dom_seed")
    c = st.columns(4)
    concepts_mean = c[0].number_input("Concepts per domain (mean)", 1.0, 500.0, _SYN.concepts_mean, key="dom_cm")
    concepts_var = c[1].number_input("… variance", 0.0, 500.0, _SYN.concepts_var, key="dom_cv")
    size_mean = c[2].number_input("Concepts per class (mean)", 1.0, 50.0, _SYN.class_size_mean, key="dom_sm")
    size_var = c[3].number_input("… variance", 0.0, 50.0, _SYN.class_size_var, key="dom_sv")
    cols = st.columns(int(n_domains))
    names, options = default_domain_names(int(n_domains)), list(SHIFTS)
    defaults = [options.index(_SYN.shifts[a % len(_SYN.shifts)]) for a in range(int(n_domains))]
    shifts = [
        col.selectbox(f"Shift of {names[a]}", options, index=defaults[a], key=f"dom_shift_{a}", help=_SHIFT_HELP)
        for a, col in enumerate(cols)
    ]
    return {
        "base": base,
        "n_concepts": int(n_concepts),
        "n_domains": int(n_domains),
        "concepts_mean": float(concepts_mean),
        "concepts_var": float(concepts_var),
        "class_size_mean": float(size_mean),
        "class_size_var": float(size_var),
        "shifts": shifts,
    }


def datasets_section() -> list[dict]:
    """Real datasets: one editable row per domain."""
    start = pd.DataFrame(
        [
            {"name": "digits", "source": "digits", "shift": "none", "root": ""},
            {"name": "shapes", "source": "procedural", "shift": "B", "root": ""},
        ]
    )
    table = st.data_editor(
        start,
        num_rows="dynamic",
        key="dom_table",
        width="stretch",
        column_config={
            "source": st.column_config.SelectboxColumn(options=list(SOURCES), required=True, help=_SOURCE_HELP),
            "shift": st.column_config.SelectboxColumn(options=list(SHIFTS), required=True, help=_SHIFT_HELP),
            "root": st.column_config.TextColumn(help="folder of this dataset (imagefolder: one sub-folder per class)"),
        },
    )
    rows = []
    for r in table.to_dict("records"):
        if not r.get("name") and not r.get("source"):
            continue
        row = {
            "name": str(r.get("name") or ""),
            "source": str(r.get("source") or ""),
            "shift": r.get("shift") or _NO_SHIFT,
        }
        root = r.get("root")
        if isinstance(root, str) and root.strip():  # an empty cell comes back as "" or NaN
            row["root"] = root.strip()
        rows.append(row)
    return rows


def model_section() -> dict:
    """Backbone, image size, training length and the selection methods to build."""
    c = st.columns(4)
    backbones = list(BACKBONES)
    backbone = c[0].selectbox(
        "Backbone",
        backbones,
        index=backbones.index(DEFAULT_BACKBONE),
        key="dom_backbone",
        accept_new_options=True,
        help=_backbone_help(),
    )
    size = c[1].select_slider(
        "Image size",
        IMAGE_SIZES,
        _start_image_size(),
        key="dom_size",
        help="Backbone input size in pixels: the demo's 96 for the built-in images, 224 for real photos.",
    )
    epochs = c[2].number_input("Epochs", 1, 500, _DEFAULTS.baselines.train.epochs, key="dom_epochs")
    preset = c[3].selectbox(
        "Heads",
        ["default", "thesis_baseline_head", "linear_6x512", "linear"],
        key="dom_head",
        help="thesis_baseline_head: the thesis's baseline head (D-1024-512-256-128-C, dropout 0.5 then 0.2, "
        "no activations); linear_6x512: six 512-wide Linear layers without activations; linear: a linear probe",
    )
    head = {} if preset == "default" else {"preset": preset}
    return {
        "features": {"backbone": backbone, "image_size": int(size)},
        "baselines": {"head": head, "train": {"epochs": int(epochs)}},
    }
