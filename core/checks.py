"""Small validation rules for frozen config dataclasses (standard library only).

A rule is a callable ``rule(value, key) -> value`` that returns the value, normalised (a list
becomes a tuple, ``30.0`` for an integer becomes ``30``), or raises :class:`ConfigError` whose
message starts with ``key``::

    Int(1, 10)(11, "epochs")        -> ConfigError("epochs: must be an integer in [1, 10], got 11")
    Number(0, 1, lo_open=True)      -> a finite float in (0, 1]; NaN, inf, bools and strings refused
    OneOf(("a", "b")), Text(), Flag(), Seq(rule), Mapping(), Instance(cls), Optional(rule)

A dataclass that derives from :class:`Validated` and attaches rules with :func:`checked` runs
them in ``__post_init__``, then its own cross-field ``_check`` (``_resolve`` may fill a mapping's
fields before a section is built from it); :meth:`ConfigError.under` puts the key path of an
enclosing section in front of a message.
"""

from __future__ import annotations

import dataclasses
import math
import reprlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

__all__ = [
    "ConfigError",
    "ConfigTypeError",
    "Validated",
    "checked",
    "show",
    "join_key",
    "duplicates",
    "Int",
    "Number",
    "OneOf",
    "Text",
    "Flag",
    "Seq",
    "Mapping",
    "Instance",
    "Optional",
]

Rule = Callable[[Any, str], Any]

_REPR = reprlib.Repr()
_REPR.maxstring = 80
_REPR.maxother = 80
_REPR.maxlevel = 2
_REPR.maxlist = _REPR.maxtuple = _REPR.maxdict = _REPR.maxset = 4
MAX_SHOWN = 120  # characters of a value shown in a message


class ConfigError(ValueError):
    """A refused config value; the message starts with its key path."""

    def under(self, path: str) -> ConfigError:
        """The same error with ``path`` (the enclosing section) in front of its key."""
        return type(self)(join_key(path, str(self)))


class ConfigTypeError(ConfigError, TypeError):
    """A config value of the wrong type (also a ``ValueError``: callers may catch either)."""


def join_key(path: str, rest: str) -> str:
    """``join_key("a.b", "c: x")`` -> ``"a.b.c: x"``; an index ``[0]...`` attaches without a dot."""
    if not path:
        return rest
    return path + rest if rest.startswith("[") else f"{path}.{rest}"


def show(value: Any) -> str:
    """A short, bounded repr for messages (never expands huge or deeply nested values)."""
    text = _REPR.repr(value)
    return text if len(text) <= MAX_SHOWN else text[: MAX_SHOWN - 3] + "..."


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@dataclass(frozen=True)
class Int:
    """An integer in [lo, hi]; an integral float in range (``30.0``) is accepted as ``30``."""

    lo: int
    hi: int

    def __call__(self, value: Any, key: str) -> int:
        text = f"{key}: must be an integer in [{self.lo}, {self.hi}], got {show(value)}"
        if isinstance(value, float) and value.is_integer() and self.lo <= value <= self.hi:
            return int(value)
        if not _is_int(value):
            raise (ConfigError if isinstance(value, float) else ConfigTypeError)(text)
        if not self.lo <= value <= self.hi:
            raise ConfigError(text)
        return value


@dataclass(frozen=True)
class Number:
    """A finite number in [lo, hi] (ends open with ``lo_open``/``hi_open``), returned as float."""

    lo: float
    hi: float
    lo_open: bool = False
    hi_open: bool = False

    def describe(self) -> str:
        """``"> 0 and <= 10"``: the range in words."""
        return f"{'>' if self.lo_open else '>='} {self.lo:g} and {'<' if self.hi_open else '<='} {self.hi:g}"

    def __call__(self, value: Any, key: str) -> float:
        if not _is_number(value):
            raise ConfigTypeError(f"{key}: must be a number {self.describe()}, got {show(value)}")
        try:
            v = float(value)
        except OverflowError:  # an int beyond float range
            v = math.inf
        above = v > self.lo if self.lo_open else v >= self.lo
        below = v < self.hi if self.hi_open else v <= self.hi
        if not (math.isfinite(v) and above and below):
            raise ConfigError(f"{key}: must be {self.describe()}, got {show(value)}")
        return v


@dataclass(frozen=True)
class OneOf:
    """One of a fixed set of (hashable) choices."""

    choices: tuple

    def __call__(self, value: Any, key: str) -> Any:
        if isinstance(value, bool) or value not in self.choices:
            raise ConfigError(f"{key}: must be one of {list(self.choices)}, got {show(value)}")
        return value


@dataclass(frozen=True)
class Text:
    """A string of 1..max_len characters (``nonempty=False`` allows ""), without NUL."""

    max_len: int = 200
    nonempty: bool = True

    def __call__(self, value: Any, key: str) -> str:
        if not isinstance(value, str):
            raise ConfigTypeError(f"{key}: must be a string, got {show(value)}")
        if self.nonempty and not value.strip():
            raise ConfigError(f"{key}: must not be empty, got {show(value)}")
        if len(value) > self.max_len:
            raise ConfigError(f"{key}: must be at most {self.max_len} characters, got {len(value)}: {show(value)}")
        if "\x00" in value:
            raise ConfigError(f"{key}: must not contain a NUL character, got {show(value)}")
        return value


@dataclass(frozen=True)
class Flag:
    """``true`` or ``false`` (not 0/1, not "yes")."""

    def __call__(self, value: Any, key: str) -> bool:
        if not isinstance(value, bool):
            raise ConfigTypeError(f"{key}: must be true or false, got {show(value)}")
        return value


@dataclass(frozen=True)
class Seq:
    """A list of min_len..max_len items, each checked by ``each``; returned as a tuple."""

    each: Rule
    min_len: int = 0
    max_len: int = 1000

    def __call__(self, value: Any, key: str) -> tuple:
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
            raise ConfigTypeError(f"{key}: must be a list, got {show(value)}")
        if not self.min_len <= len(value) <= self.max_len:
            raise ConfigError(f"{key}: must have {self.min_len} to {self.max_len} entries, got {len(value)}")
        return tuple(self.each(v, f"{key}[{i}]") for i, v in enumerate(value))


@dataclass(frozen=True)
class Mapping:
    """A mapping with string keys, at most ``max_len`` of them; returned as a new dict."""

    max_len: int = 100

    def __call__(self, value: Any, key: str) -> dict:
        if not isinstance(value, dict):
            raise ConfigTypeError(f"{key}: must be a mapping, got {show(value)}")
        if len(value) > self.max_len:
            raise ConfigError(f"{key}: must have at most {self.max_len} entries, got {len(value)}")
        for k in value:
            if not isinstance(k, str):
                raise ConfigTypeError(f"{key}: keys must be strings, got {show(k)}")
        return dict(value)


@dataclass(frozen=True)
class Instance:
    """An instance of ``cls`` (a nested config section, already built)."""

    cls: type

    def __call__(self, value: Any, key: str) -> Any:
        if not isinstance(value, self.cls):
            raise ConfigTypeError(f"{key}: must be a {self.cls.__name__}, got {show(value)}")
        return value


@dataclass(frozen=True)
class Optional:
    """``None`` or a value accepted by ``rule``."""

    rule: Rule

    def __call__(self, value: Any, key: str) -> Any:
        return None if value is None else self.rule(value, key)


def checked(
    default: Any = dataclasses.MISSING,
    rule: Rule | None = None,
    *,
    factory: Callable[[], Any] | Any = dataclasses.MISSING,
) -> Any:
    """A dataclass field whose value :class:`Validated` checks with ``rule``."""
    return dataclasses.field(default=default, default_factory=factory, metadata={"rule": rule})


class Validated:
    """Mixin for frozen dataclasses: ``__post_init__`` applies every field's rule, then ``_check``."""

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            rule = f.metadata.get("rule")
            if rule is not None:
                object.__setattr__(self, f.name, rule(getattr(self, f.name), f.name))
        self._check()

    def _check(self) -> None:
        """Cross-field checks; override. Raise ConfigError naming the field first."""

    @classmethod
    def _resolve(cls, data: dict) -> dict:
        """The mapping a section is built from, before its fields are checked (``core.config_io``);
        override to fill fields from others, e.g. a preset."""
        return data


def duplicates(items: Iterable[Any]) -> list[Any]:
    """Items that occur more than once, sorted by first occurrence."""
    seen: set = set()
    dupes: list = []
    for x in items:
        if x in seen and x not in dupes:
            dupes.append(x)
        seen.add(x)
    return dupes
