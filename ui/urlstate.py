"""URL-backed widget values: a page keeps its settings in the query string (``?method=mcfp&t=0.3``)
so a view can be shared. A URL is user input: every value is parsed strictly here, never trusted.

:func:`coerce` is the pure rule (no streamlit): unparsable, non-finite or unknown values give the
default, numbers outside ``[lo, hi]`` are clamped. :func:`widget_value` and
:func:`url_widget_value` apply it to a keyed widget's session state; :func:`write_url` writes a
page's settings back, keeping ``run``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

__all__ = ["MAX_PARAM_CHARS", "clean_text", "shown", "coerce", "widget_value", "url_widget_value", "write_url"]

MAX_PARAM_CHARS = 200  # longer query values are cut (text) or refused (numbers, choices)


def clean_text(raw: Any, max_chars: int = MAX_PARAM_CHARS) -> str:
    """``raw`` as printable text of at most ``max_chars`` characters (control characters,
    NUL included, are dropped); a non-string gives ''."""
    if not isinstance(raw, str):
        return ""
    return "".join(ch for ch in raw[: max_chars * 4] if ch.isprintable())[:max_chars]


def shown(value: object, max_chars: int = 80) -> str:
    """A user-supplied ``value`` made safe to quote in a message (markdown): printable characters
    only, markdown and HTML specials escaped (":" too: Streamlit reads ``:name[`` and ``:name:``
    as colours and icons), at most ``max_chars`` characters (then "…")."""
    text = value if isinstance(value, str) else repr(value)
    cut = len(text) > max_chars
    text = "".join(ch if ch.isprintable() else "?" for ch in text[:max_chars])
    return re.sub(r"([\\`*_{}\[\]<>()#+!|~$:])", r"\\\1", text) + ("…" if cut else "")


def _number(raw: Any, kind: type) -> float | int | None:
    """``raw`` as a finite int or float, or None. Accepts numbers and numeric strings
    ("0.25", " 3 ", "1e-2"); refuses bools, NaN, infinities, overlong strings and garbage."""
    if isinstance(raw, bool) or raw is None:
        return None
    if isinstance(raw, str):
        text = raw.strip()
        if not text or len(text) > 64:
            return None
        try:
            value = float(text)
        except ValueError:
            return None
    elif isinstance(raw, (int, float)) or hasattr(raw, "__float__"):
        try:
            value = float(raw)
        except (TypeError, ValueError, OverflowError):
            return None
    else:
        return None
    if not math.isfinite(value):
        return None
    if kind is int:
        return int(value) if value == int(value) else None
    return value


def _choice(raw: Any, by_text: dict) -> Any:
    """The choice whose text is ``raw`` (a string or an int), or None."""
    if isinstance(raw, bool) or not isinstance(raw, (str, int)):
        return None
    text = raw.strip() if isinstance(raw, str) else str(raw)
    return by_text.get(text) if len(text) <= MAX_PARAM_CHARS else None


def _choice_list(raw: Any, default: list, by_text: dict) -> list:
    """The known choices of a comma-separated string (or a list), in order, without repeats; a
    string with no known item gives ``default``, a list (a widget's own value) may stay empty."""
    if isinstance(raw, str):
        items = raw[: MAX_PARAM_CHARS * 4].split(",")
    elif isinstance(raw, (list, tuple)):
        items = list(raw)
    else:
        return default
    out = []
    for item in items:
        c = _choice(item, by_text)
        if c is not None and c not in out:
            out.append(c)
    return out if out or not isinstance(raw, str) else default


def coerce(
    raw: Any, default: Any, *, lo: float | None = None, hi: float | None = None, choices: Sequence | None = None
) -> Any:
    """``raw`` (a query-parameter string, a session-state value or a config value) as a value of
    the kind of ``default``:

    - ``choices`` with a scalar default: ``raw`` must be one of them (compared as text, so
      ``"2"`` picks ``2``); else ``default``.
    - ``choices`` with a list default: a comma-separated string (or a list) of choices; unknown
      items are dropped, duplicates removed. A string with no valid item gives ``default``;
      a list (a widget's own value) may stay empty.
    - an int or float default: a finite number, clamped to ``[lo, hi]``; else ``default``.
    - a bool default: "true"/"false"/"1"/"0".
    - a str default: printable text, cut to :data:`MAX_PARAM_CHARS`.
    """
    if choices is not None:
        by_text = {str(c): c for c in choices}
        if isinstance(default, (list, tuple)):
            return _choice_list(raw, list(default), by_text)
        c = _choice(raw, by_text)
        return default if c is None else c
    if isinstance(default, bool):
        if isinstance(raw, bool):
            return raw
        text = raw.strip().lower() if isinstance(raw, str) else ""
        return {"true": True, "1": True, "false": False, "0": False}.get(text, default)
    if isinstance(default, (int, float)):
        kind = int if isinstance(default, int) else float
        value = _number(raw, kind)
        if value is None:
            return default
        if lo is not None:
            value = max(value, kind(lo))
        if hi is not None:
            value = min(value, kind(hi))
        return kind(value)
    if isinstance(default, str):
        return clean_text(raw) if isinstance(raw, str) else default
    raise TypeError(f"no URL parsing rule for a default of type {type(default).__name__}")


def widget_value(
    key: str,
    first: Any,
    default: Any,
    *,
    lo: float | None = None,
    hi: float | None = None,
    choices: Sequence | None = None,
) -> Any:
    """Prepare the session state of the keyed widget ``key`` (create the widget with that key
    and no explicit value): the widget's own value once it has one, else ``first`` (a value
    from the URL or the session), both checked with :func:`coerce`. Returns the value."""
    import streamlit as st

    if key in st.session_state:
        current = st.session_state[key]
        value = coerce(current, default, lo=lo, hi=hi, choices=choices)
        if type(value) is type(current) and value == current:
            return value
    else:
        value = coerce(first, default, lo=lo, hi=hi, choices=choices)
    st.session_state[key] = value
    return value


def url_widget_value(
    key: str,
    param: str,
    default: Any,
    *,
    lo: float | None = None,
    hi: float | None = None,
    choices: Sequence | None = None,
) -> Any:
    """:func:`widget_value` whose first value is the query parameter ``param``."""
    import streamlit as st

    return widget_value(key, st.query_params.get(param), default, lo=lo, hi=hi, choices=choices)


def write_url(params: dict[str, Any]) -> None:
    """Make the query string ``run`` (kept when present) plus ``params`` (as text)."""
    import streamlit as st

    qp = st.query_params
    new = {"run": qp["run"]} if "run" in qp else {}
    new.update({k: str(v) for k, v in params.items()})
    if qp.to_dict() != new:
        qp.from_dict(new)
