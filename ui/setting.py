"""The current selection setting: one relationship-selection method, its parameter and its value.

🔗 Relationships sets it with :func:`setting_picker`; 🌳 Taxonomy builds its live taxonomy from
:func:`current_setting`; both keep it in the URL (``?method=density&p=0.5``) so a view can be
shared. The session keeps a copy under :data:`SETTING_KEY`, because Streamlit forgets a widget's
value on a page that does not draw the widget. Whatever the session or the URL holds is checked
with :func:`ui.urlstate.coerce`: an unknown method gives ``threshold``, a bad value the default.
"""

from __future__ import annotations

from typing import NamedTuple

import streamlit as st

from ui import data
from ui.urlstate import coerce, widget_value

__all__ = [
    "SETTING_KEY",
    "METHOD_KEY",
    "Setting",
    "param_key",
    "run_value",
    "current_setting",
    "setting_picker",
    "apply_setting",
]

SETTING_KEY = "_selection_setting"  # session copy of the current Setting (no widget's key)
METHOD_KEY = "rel_method"  # key of the Relationships page's method selectbox
DEFAULT_METHOD = "threshold"
HELPS = {
    "t": "Keep edges with P ≥ t.",
    "p": "Shortest prefix of a sorted row reaching mass p.",
    "k_max": "Largest k tested, inclusive (k = 0..k_max; the thesis code's upper_bound=5 is k_max=4).",
}


class Setting(NamedTuple):
    """A selection method with its parameter's name and value (both None without a parameter)."""

    method: str
    param: str | None = None
    value: float | int | None = None

    def query(self) -> dict[str, object]:
        """The URL parameters of the setting: ``{"method": ..., <param>: value}``."""
        return {"method": self.method, **({self.param: self.value} if self.param else {})}

    def describe(self) -> str:
        """'density (p=0.5)', or only the method's name when it has no parameter."""
        return self.method + (f" ({self.param}={self.value})" if self.param else "")


def param_key(method: str, param: str) -> str:
    """Session key of the Relationships slider of ``method``'s parameter ``param``."""
    return f"rel_{method}_{param}"


def run_value(run_cfg: dict, method: str) -> float | int | None:
    """``method``'s parameter value in the run's own config (``selection.methods``), checked;
    else the method's default; None for a method without a parameter."""
    spec = data.param_spec(method)
    if spec is None:
        return None
    for m in (run_cfg.get("selection") or {}).get("methods") or []:
        if isinstance(m, dict) and m.get("name") == method and spec.name in (m.get("params") or {}):
            return coerce(m["params"][spec.name], spec.default, lo=spec.lo, hi=spec.hi)
    return spec.default


def _unchecked() -> tuple[object, dict]:
    """The method and ``{param: value}`` the session's copy holds, else the URL's, unchecked."""
    stored = st.session_state.get(SETTING_KEY)
    if isinstance(stored, tuple) and len(stored) == 3:
        method, param, value = stored
        return method, ({param: value} if isinstance(param, str) else {})
    return st.query_params.get("method"), st.query_params


def current_setting(run_cfg: dict) -> Setting:
    """The current setting: the session's (last set on 🔗 Relationships), else the URL's, else
    the run's own; every part checked. A chosen setting (on a page or in a link) is kept in the
    session, so it carries over from one page to the other; an untouched one follows the run."""
    raw_method, raw_params = _unchecked()
    method = coerce(raw_method, DEFAULT_METHOD, choices=data.method_names())
    spec = data.param_spec(method)
    setting = Setting(method)
    if spec is not None:
        value = coerce(raw_params.get(spec.name), run_value(run_cfg, method), lo=spec.lo, hi=spec.hi)
        setting = Setting(method, spec.name, value)
    if raw_method is not None:  # chosen by someone (a page, a link): it carries over; else each
        st.session_state[SETTING_KEY] = setting  # run shows its own value until one is chosen
    return setting


def setting_picker(run_cfg: dict, method_col, param_col) -> Setting:
    """The method selectbox (in ``method_col``) and its parameter's slider (in ``param_col``),
    starting from :func:`current_setting`. Their choice becomes the current setting."""
    start = current_setting(run_cfg)
    methods = data.method_names()
    widget_value(METHOD_KEY, start.method, DEFAULT_METHOD, choices=methods)
    method = method_col.selectbox("Method", methods, key=METHOD_KEY, format_func=data.method_label)
    spec = data.param_spec(method)
    if spec is None:
        param_col.caption("This method has no parameter.")
        setting = Setting(method)
    else:
        key = param_key(method, spec.name)
        first = start.value if start.method == method else None
        widget_value(key, first, run_value(run_cfg, method), lo=spec.lo, hi=spec.hi)
        value = param_col.slider(spec.name, spec.lo, spec.hi, step=spec.step, key=key, help=HELPS.get(spec.name))
        setting = Setting(method, spec.name, value)
    st.session_state[SETTING_KEY] = setting
    return setting


def apply_setting(method: str, value: float | int | None = None) -> Setting:
    """Make ``method`` (with its parameter at ``value``, checked and clamped like a URL value)
    the current setting, the Relationships widgets included: call it from a button's
    ``on_click``, before the widgets are drawn, so the slider moves and the URL follows."""
    method = coerce(method, DEFAULT_METHOD, choices=data.method_names())
    spec = data.param_spec(method)
    setting = Setting(method)
    if spec is not None:
        checked = coerce(value, spec.default, lo=spec.lo, hi=spec.hi)
        setting = Setting(method, spec.name, round(checked, 6) if isinstance(checked, float) else checked)
        st.session_state[param_key(method, spec.name)] = setting.value
    st.session_state[METHOD_KEY] = method
    st.session_state[SETTING_KEY] = setting
    return setting
