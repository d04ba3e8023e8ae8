"""Forms that start a background run: launch a saved or shipped config (🧪 Cross-domain), and
train the universal model for chosen selection methods (🎯 Universal model)."""

from __future__ import annotations

import copy

import streamlit as st

from core.runs import Run
from ui import data
from ui.configs import config_choices
from ui.jobs import launch

__all__ = ["config_launcher", "method_params", "method_trainer"]


def config_launcher() -> None:
    """Pick a config and launch it in the background (the new run becomes the current one)."""
    choices = config_choices()
    if not choices:
        st.info("No config found: save one on 🗂️ Domains.")
        return
    label = st.selectbox("Config", list(choices), key="cd_config")
    if st.button("Launch in the background", type="primary", key="cd_launch"):
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
