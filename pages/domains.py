"""🗂️ Domains: set up the domains (synthetic or real datasets), shift and backbone; preview
classes and images; check the config before launch; save it or launch it."""

import streamlit as st
import yaml

from ui import preview
from ui.common import ensure_navigation, guard
from ui.configs import checked_config, save_config
from ui.forms import datasets_section, model_section, synthetic_section
from ui.jobs import launch

ensure_navigation()
st.title("🗂️ Domains")
c1, c2 = st.columns([1, 2])
name = c1.text_input("Config name", "my-setup", key="dom_name")
kind = c2.radio("Domains", ["🧬 Synthetic (with ground truth)", "📁 Datasets"], horizontal=True, key="dom_kind")
cfg: dict = {"name": name}
if kind.startswith("🧬"):
    syn = synthetic_section()
    cfg["seed"] = int(st.session_state.get("dom_seed", 42))
    cfg["domains"] = {"synthetic": syn}
else:
    cfg["domains"] = {"synthetic": None, "list": datasets_section()}
cfg["data_root"] = st.text_input("data_root (CIFAR-100, Caltech-101/256 live here)", "", key="dom_root") or None
cfg.update(model_section())

resolved = checked_config(cfg)  # stops the page, saying what to fix
st.success("✅ The setup is valid and its datasets are on disk.")

if kind.startswith("🧬"):
    with st.spinner("Drawing the synthetic classes…"):
        preview.synthetic_preview(resolved)
if st.toggle("🖼️ Preview the images (builds the domains as the run will)", key="dom_images"):
    with (
        st.spinner("Building the domains…"),
        guard("Building the domains", "Check data_root / root: the dataset must be on disk."),
    ):
        preview.domains_preview(resolved)
c1, c2, c3 = st.columns(3)
c1.download_button("⬇️ Download YAML", yaml.safe_dump(resolved, sort_keys=False), f"{name}.yaml", key="dom_dl")
if c2.button("💾 Save config", key="dom_save"):
    save_config(name, resolved)
if c3.button("🚀 Launch now", type="primary", key="dom_launch"):
    if launch(resolved):
        st.switch_page("pages/crossdomain.py")
