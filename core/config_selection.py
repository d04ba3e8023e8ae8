"""The selection section of a run config: which selection methods a run builds, with their parameters.

:class:`MethodSpec` is one method (``{name: threshold, params: {t: 0.2}, label: ...}``): names,
parameters and their ranges are those of the registry ``core.selection.METHODS``, whose own checker
validates each parameter; :attr:`MethodSpec.key` is the folder name of the method's results.
:class:`SelectionConfig` is the list of methods, their keys unique. Both are imported from
:mod:`core.config` with the other sections.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.checks import (
    ConfigError,
    ConfigTypeError,
    Instance,
    Mapping,
    OneOf,
    Optional,
    Seq,
    Text,
    Validated,
    checked,
    duplicates,
    show,
)
from core.selection import METHODS

__all__ = ["MethodSpec", "SelectionConfig", "MAX_KEY_LEN"]

MAX_KEY_LEN = 100  # a selection method's folder name


@dataclass(frozen=True)
class MethodSpec(Validated):
    """One selection method with its parameters, e.g. {name: threshold, params: {t: 0.2}}.

    Names, parameters and their ranges are those of ``core.selection.METHODS``.
    """

    name: str = checked("mcfp", OneOf(tuple(METHODS)))
    params: dict = checked(rule=Mapping(max_len=10), factory=dict)
    label: str | None = checked(None, Optional(Text(max_len=MAX_KEY_LEN)))  # folder name; default from name+params

    @property
    def key(self) -> str:
        """Folder name of this method's results: the label, else name and parameters."""
        if self.label:
            return self.label
        if not self.params:
            return self.name
        return self.name + "_" + "_".join(f"{k}{v}" for k, v in sorted(self.params.items()))

    def _check(self) -> None:
        spec = METHODS[self.name]
        allowed = [spec.param] if spec.param else []
        extra = sorted(set(self.params) - set(allowed))
        if extra:
            raise ConfigError(f"params.{extra[0]}: method {self.name!r} takes {allowed or 'no parameters'}")
        if spec.param is not None:
            if spec.param not in self.params:
                raise ConfigError(f"params.{spec.param}: required by method {self.name!r}")
            self.params[spec.param] = _method_param(spec, self.params[spec.param])
        if self.label is not None:
            from core.runs import validate_run_id

            try:
                validate_run_id(self.label)
            except ValueError:
                raise ConfigError(f"label: must be a plain folder name, got {show(self.label)}") from None
        from core.runs import CURATED

        if self.key == CURATED:
            raise ConfigError(f"label: {CURATED!r} is reserved for the curated taxonomy; choose another label")
        if len(self.key) > MAX_KEY_LEN:
            raise ConfigError(
                f"label: folder name {show(self.key)} is longer than {MAX_KEY_LEN} characters; set a shorter label"
            )


def _method_param(spec: Any, value: Any) -> Any:
    """Check one selection parameter with its method's own checker; key path ``params.<name>``."""
    if isinstance(spec.default, int) and isinstance(value, float) and value.is_integer():
        value = int(value)  # 4.0 from a slider -> 4
    try:
        checked_value = spec.check(value)
    except (TypeError, ValueError) as exc:
        cls = ConfigTypeError if isinstance(exc, TypeError) else ConfigError
        raise cls(f"params.{spec.param}: {str(exc).removeprefix(spec.param + ' ')}") from None
    return checked_value if isinstance(checked_value, int) else value  # keep 0.2 as written


@dataclass(frozen=True)
class SelectionConfig(Validated):
    """The selection methods whose taxonomies (and universal models) a run builds."""

    methods: tuple[MethodSpec, ...] = checked(
        (MethodSpec("mcfp"), MethodSpec("threshold", {"t": 0.2})), Seq(Instance(MethodSpec), 1, 100)
    )

    def _check(self) -> None:
        dupes = duplicates(m.key for m in self.methods)
        if dupes:
            raise ConfigError(f"methods: two methods share the label {dupes[0]!r}; set 'label'")
