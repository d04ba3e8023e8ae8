"""Run configs in the dashboard: where 🗂️ Domains saves them, which ones can be launched, and
the checks a setup passes before it is shown as valid."""

from __future__ import annotations

import re
from pathlib import Path

import streamlit as st
import yaml

from ui.common import REPO

__all__ = ["configs_dir", "config_choices", "checked_config", "save_config"]

CONFIG_NAME = re.compile(r"[A-Za-z0-9_.-]+")


def configs_dir() -> Path:
    """Where 🗂️ Domains saves configs: ``<runs root>/_configs`` (travels with the runs)."""
    from core.runs import runs_root

    return runs_root() / "_configs"


def config_choices() -> dict[str, Path]:
    """Launchable configs: the shipped ones (assets/configs) and the saved ones, by label."""
    out = {f"📦 {p.stem}": p for p in sorted((REPO / "assets" / "configs").glob("*.yaml"))}
    if configs_dir().is_dir():
        out.update({f"💾 {p.stem}": p for p in sorted(configs_dir().glob("*.yaml"))})
    return out


def checked_config(cfg: dict) -> dict:
    """``cfg`` validated and resolved (every default filled in), its datasets found on disk;
    otherwise the page stops with an error saying what to fix."""
    from core.config import config_from_dict, config_to_dict
    from core.domains import check_data

    try:
        parsed = config_from_dict(cfg)
        resolved = config_to_dict(parsed)
    except (ValueError, TypeError) as exc:
        st.error(f"🚫 The setup is not valid yet: {exc}\n\n👉 Fix the field named at the start of the message.")
        st.stop()
    try:
        check_data(parsed)
    except ValueError as exc:
        st.error(
            f"🚫 A dataset is missing: {exc}\n\n👉 Set data_root (or the row's root) to the folder "
            "that holds it; nothing is downloaded."
        )
        st.stop()
    return resolved


def save_config(name: str, resolved: dict) -> None:
    """Write ``resolved`` as ``<configs_dir>/<name>.yaml`` (a plain name only), with a toast."""
    if not CONFIG_NAME.fullmatch(name) or name in ("config", ".", ".."):
        st.error("🚫 Use letters, digits, '_', '.', '-' for the config name.")
        return
    configs_dir().mkdir(parents=True, exist_ok=True)
    (configs_dir() / f"{name}.yaml").write_text(yaml.safe_dump(resolved, sort_keys=False), encoding="utf-8")
    st.toast(f"Saved {name}.yaml — launch it from 🧪 Cross-domain", icon="💾")
