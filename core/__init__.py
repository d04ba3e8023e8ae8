"""unitax engine: one image classifier over datasets whose class lists disagree.

Importing ``core`` is cheap (numpy, scipy, pandas): the torch-based modules (features,
training, the pipeline) load on first use of their names.
"""

from __future__ import annotations

import importlib

from core.crossdomain import (
    count_matrix,
    cross_domain_matrices,
    empty_classes,
    normalize_rows,
    ordered_pairs,
    prediction_matrix,
)
from core.metrics import best_parameters, per_pair_scores, rank_all, relationship_scores, score_selection, sweep
from core.selection import METHODS, Edges, RankedRows, rank_rows, select_edges, select_relationships
from core.synthetic import SyntheticTaxonomy, make_synthetic_taxonomy, sample_cross_counts
from core.taxonomy import UniversalTaxonomy, build_universal_taxonomy

_LAZY_MODULES = {  # module -> public names, loaded on first use (torch, PIL, yaml, ...)
    "core.registry": [
        "BACKBONES",
        "DEFAULT_BACKBONE",
        "DEFAULT_SHIFTS",
        "DEFAULT_SPLIT_SIZES",
        "DEVICES",
        "SHIFTS",
        "SOURCES",
        "SPLITS",
        "SYNTHETIC_BASES",
        "is_model_name",
    ],
    "core.domains": [
        "DomainSpec",
        "build_domain",
        "build_domains",
        "build_synthetic_domains",
        "check_data",
        "domains_from_config",
        "preview_grid",
    ],
    "core.sources": ["load_source", "stratified_split"],
    "core.procedural": ["concept_names", "render"],
    "core.shifts": ["apply_shift"],
    "core.device": ["pick_device"],
    "core.backbones": ["load_backbone"],
    "core.features": ["extract_features", "extract_features_report"],
    "core.config": ["ConfigError", "RunConfig", "config_from_dict", "load_config"],
    "core.pipeline": ["plan_steps", "run_domains", "run_pipeline"],
    "core.runs": [
        "CorruptRunError",
        "LockedError",
        "NotARunFolderError",
        "Run",
        "create_run_dir",
        "delete_run",
        "init_run_dir",
        "list_runs",
        "open_run",
        "runs_root",
    ],
    "core.runlock": ["RunLock", "lock_holder"],
    "core.fsio": ["atomic_write", "write_json", "write_npz", "write_text"],
    "core.jobs": ["cancel_job", "is_alive", "start_job"],
    "core.heads": ["MLPHead"],
    "core.universal": ["domain_predictions", "soft_targets", "train_universal"],
    "core.inference": ["predict_image"],
    "core.embedding": ["embed_2d"],
}
_LAZY = {name: module for module, names in _LAZY_MODULES.items() for name in names}

__all__ = [
    "METHODS",
    "Edges",
    "RankedRows",
    "SyntheticTaxonomy",
    "UniversalTaxonomy",
    "best_parameters",
    "build_universal_taxonomy",
    "count_matrix",
    "cross_domain_matrices",
    "empty_classes",
    "make_synthetic_taxonomy",
    "normalize_rows",
    "ordered_pairs",
    "per_pair_scores",
    "prediction_matrix",
    "rank_all",
    "rank_rows",
    "relationship_scores",
    "sample_cross_counts",
    "score_selection",
    "select_edges",
    "select_relationships",
    "sweep",
    *_LAZY,
]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'core' has no attribute {name!r}")
