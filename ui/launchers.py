"""Forms that start a background run: launch a saved or shipped config (🧪 Cross-domain), and
train the universal model for chosen selection methods (🎯 Universal model)."""

from __future__ import annotations

import copy

import streamlit as st

from core.runs import Run
from ui import data, evidence_data
from ui.common import REPO, stamp
from ui.configs import config_choices
from ui.jobs import launch

__all__ = ["CONFIG_KEY", "DEFAULT_CONFIG", "MISSING_MARK", "config_launcher", "method_params", "method_trainer"]

CONFIG_KEY = "cd_config"
DEFAULT_CONFIG = REPO / "assets" / "configs" / "demo.yaml"  # the README's default: runs anywhere
MISSING_MARK = "⚠️ dataset not on disk"


def config_launcher() -> None:
    """Pick a config and launch it in the background (the new run becomes the current one).
    The list opens on the shipped demo; a config whose dataset is not on this machine is marked
    and cannot be launched (the reason is shown when it is picked)."""
    choices = config_choices()
    if not choices:
        st.info("No config found: save one on 🗂️ Domains.")
        return
    problems = {label: evidence_data.config_problem(str(path), stamp(path)) for label, path in choices.items()}
    labels = list(choices)
    if st.session_state.get(CONFIG_KEY) not in labels:
        fine = [x for x in labels if problems[x] is None]
        demo = [x for x in labels if choices[x] == DEFAULT_CONFIG]
        st.session_state[CONFIG_KEY] = (demo or fine or labels)[0]
    label = st.selectbox(
        "Config",
        labels,
        key=CONFIG_KEY,
        format_func=lambda x: f"{x} — {MISSING_MARK}" if problems[x] else x,
        help="📦 shipped with unitax (assets/configs), 💾 saved on 🗂️ Domains. Configs over real "
        "datasets (CIFAR-100, Caltech) need them on disk under their data_root.",
    )
    if problems[label]:
        st.warning(
            f"This config cannot run here: {problems[label]}\n\n👉 Put the dataset under the config's "
            "data_root (or save a copy with another data_root on 🗂️ Domains); nothing is downloaded.",
            icon="⚠️",
        )
    if st.button("Launch in the background", type="primary", key="cd_launch", disabled=bool(problems[label])):
        if launch(choices[label]):
            st.rerun()


def method_params(methods: list[str]) -> list[dict]:
    """One slider per method parameter (range and default from core.selection.METHODS):
    ``[{"name": method, "params": {...}}]`` as the config's ``selection.methods`` holds them."""
    specs = []
    for m in methods:
        spec = data.param_spec(m)
        params = {}
        if spec:
            params[spec.name] = st.slider(
                f"{m}: {spec.name}", spec.lo, spec.hi, spec.default, spec.step, key=f"uni_{m}_{spec.name}"
            )
        specs.append({"name": m, "params": params})
    return specs


def method_trainer(run: Run, cfg: dict, busy: bool) -> None:
    """Choose selection methods and rerun the run from its selection step with them."""
    methods = st.multiselect(
        "Methods", data.method_names(), default=["mcfp"], format_func=data.method_label, key="uni_methods"
    )
    specs = method_params(methods)
    if st.button("Train in the background", type="primary", disabled=busy or not specs, key="uni_train"):
        new = copy.deepcopy(cfg)
        new.setdefault("selection", {})["methods"] = specs
        if launch(new, run_id=run.id, from_step="selection"):
            st.rerun()
