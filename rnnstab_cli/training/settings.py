"""One declaration per setting, and everything derived from it.

A setting is a field of a settings class (:class:`~.model_settings.ModelSettings`, shared by
every run; :class:`~.config.TrainConfig`, the synthetic tasks; :class:`~.natural.config.
NaturalConfig`, the natural ones) declared with :func:`setting`::

    lr: float = setting(
        default=0.001, natural=1.0, above=0.0, engine=True, help="learning rate"
    )

That one line holds the setting's name (the same in TOML, in ``--set``, in a saved config and
at the engine's binding), its type (the annotation), its range, its help text, its default
for each kind of run, whether the engine's trainer takes it, and its role, which says what a
change of it means for a run already under way:

- ``trajectory``: it shapes what is learnt; a resumed run must agree on it, and it names the
  run (its id holds it; one declared after a kind of id was defined only where it is not at
  its default, :func:`identity`, so stored runs keep their ids);
- ``rule``: a clipping rule's parameter (``rules`` names the rules that read it): a
  trajectory setting, but only under those rules; under any other it is left out of the
  saved config, so a run's id and resume check do not depend on a parameter it never read;
- ``verdict``: it decides when a run counts as solved; a resumed run must agree on it;
- ``resumable``: a budget or an execution detail; a resumed run may change it;
- ``label``: a name for people (the preset); it changes nothing.

From the declarations come the key list with its help (:func:`config_keys`), the TOML/``--set``
value checks (:func:`coerce`), the validation of a built config (:meth:`Settings.
__post_init__`), the key sets per role (:func:`keys_with_role`), the arguments of the engine's
trainer (:func:`engine_arguments`) and the clipping rules' parameters (:func:`rule_params`).
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Final, Literal, dataclass_transform

from rnnstab_cli.errors import UsageError
from rnnstab_cli.training.value_checks import choice, finite_at_least, int_at_least

Role = Literal["trajectory", "rule", "verdict", "resumable", "label"]
Kind = Literal["synthetic", "natural"]

#: The metadata key a setting's :class:`Spec` is kept under in its dataclass field.
_SPEC: Final[str] = "rnnstab_setting"


class _Same:
    """The natural runs' default when it is the synthetic runs' one."""

    def __repr__(self) -> str:
        return "<same>"


SAME: Final = _Same()


@dataclass(frozen=True)
class Spec:
    """What :func:`setting` declares beyond the field's name, type and default."""

    help: str
    role: Role
    choices: tuple[str, ...] | None
    at_least: float | None
    above: float | None
    at_most: float | None
    below: float | None
    natural: Any
    key: str | None
    engine: bool
    rules: tuple[str, ...]


def setting(
    *,
    help: str,
    default: Any = dataclasses.MISSING,
    default_factory: Any = dataclasses.MISSING,
    natural: Any = SAME,
    role: Role = "trajectory",
    choices: tuple[str, ...] | None = None,
    at_least: float | None = None,
    above: float | None = None,
    at_most: float | None = None,
    below: float | None = None,
    key: str | None = None,
    engine: bool = False,
    rules: tuple[str, ...] = (),
) -> Any:
    """Declare a setting (see the module's docstring). ``natural``: the default of the natural
    runs where it differs; ``key``: the config key where it is not the field's name (``len``
    for ``length``); ``engine``: the engine's trainer takes it, under the same name."""
    spec = Spec(help, role, choices, at_least, above, at_most, below, natural, key, engine, rules)
    return dataclasses.field(
        default=default, default_factory=default_factory, metadata={_SPEC: spec}
    )


@dataclass_transform(kw_only_default=True, frozen_default=True, field_specifiers=(setting,))
class Settings:
    """Base of the settings classes: each subclass is made a frozen, keyword-only dataclass;
    ``kind="natural"`` gives the inherited settings their natural defaults. ``__post_init__``
    checks every declared type, choice and range; subclasses add the checks that join
    several settings and call it first."""

    KIND: ClassVar[Kind] = "synthetic"

    def __init_subclass__(cls, *, kind: Kind | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if kind is not None:
            cls.KIND = kind
        if cls.KIND == "natural":
            _natural_defaults(cls)
        dataclasses.dataclass(frozen=True, kw_only=True)(cls)
        _DECLARED.clear()  # a new class: recompute the key lists on next use

    def to_dict(self) -> dict[str, Any]:
        """The settings under their config keys (a settings class may leave some out)."""
        return {d.key: getattr(self, d.name) for d in declared(type(self))}

    def __post_init__(self) -> None:
        for d in declared(type(self)):
            _check(d.key, getattr(self, d.name), d.value_type, d.spec)


def _natural_defaults(cls: type) -> None:
    """Redeclare each inherited setting whose natural default differs, with that default."""
    own = inspect.get_annotations(cls)
    cls.__annotations__ = own
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        spec = f.metadata.get(_SPEC)
        if spec is None or spec.natural is SAME or f.name in own:
            continue
        own[f.name] = hints[f.name]
        setattr(cls, f.name, dataclasses.field(default=spec.natural, metadata=f.metadata))


# --------------------------------------------------------------------------------------------
# Types and checks
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ValueType:
    """A setting's type as a config file holds it: ``base`` is one of int, float, str, bool,
    "table" (a TOML table) or "custom" (checked by its class: the length range)."""

    base: type | str
    optional: bool


def _value_type(cls: type, f: dataclasses.Field[Any]) -> ValueType:
    hints = _hints(cls)
    tp = hints[f.name]
    optional = False
    args = typing.get_args(tp)
    if type(None) in args:
        optional = True
        (tp,) = [a for a in args if a is not type(None)]
    if tp in (int, float, str, bool):
        return ValueType(tp, optional)
    if typing.get_origin(tp) is Mapping or tp is Mapping:
        return ValueType("table", optional)
    return ValueType("custom", optional)


_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls)
    return _HINTS[cls]


def _check(key: str, value: Any, vt: ValueType, spec: Spec) -> None:
    """``value`` of the declared type, choice and range; UsageError names ``key``."""
    if value is None and vt.optional:
        return
    if vt.base is bool:
        if not isinstance(value, bool):
            raise UsageError(f"{key} must be true or false, got {value!r}")
    elif vt.base is int:
        if spec.at_least is not None:
            int_at_least(key, value, int(spec.at_least))
        elif isinstance(value, bool) or not isinstance(value, int):
            raise UsageError(f"{key} must be an integer, got {value!r}")
        _check_upper(key, value, spec)
    elif vt.base is float:
        if spec.above is not None:
            finite_at_least(key, value, spec.above, strict=True)
        elif spec.at_least is not None:
            finite_at_least(key, value, spec.at_least)
        else:
            _finite(key, value)
        _check_upper(key, value, spec)
    elif vt.base is str:
        if spec.choices is not None:
            choice(key, value, spec.choices)
        elif not isinstance(value, str):
            raise UsageError(f"{key} must be a string, got {value!r}")


def _finite(key: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise UsageError(f"{key} must be a finite number, got {value!r}")


def _check_upper(key: str, value: float, spec: Spec) -> None:
    if spec.at_most is not None and value > spec.at_most:
        raise UsageError(f"{key} must be ≤ {_shown(spec.at_most)}, got {value:g}")
    if spec.below is not None and value >= spec.below:
        raise UsageError(f"{key} must be < {_shown(spec.below)}, got {value:g}")


def _shown(x: float) -> str:
    """An integer with thousands separators (a count), any other number as %g."""
    return f"{x:,}" if isinstance(x, int) else f"{x:g}"


def coerce(key: str, value: Any, vt: ValueType, source: str) -> Any:
    """A TOML (or ``--set``) value for setting ``key`` in its declared type: an int where an
    int is declared, any number as a float where a float is; UsageError otherwise. Ranges and
    choices are checked when the config is built."""

    def bad(expected: str) -> UsageError:
        return UsageError(f"{source}: {key} must be {expected}, got {value!r}")

    if value is None and vt.optional:
        return None
    if vt.base is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad("an integer")
        return value
    if vt.base is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise bad("a number")
        return float(value)
    if vt.base is str:
        if not isinstance(value, str):
            raise bad("a string")
        return value
    if vt.base is bool:
        if not isinstance(value, bool):
            raise bad("true or false")
        return value
    if vt.base == "table":
        if not isinstance(value, Mapping):
            raise bad("a table")
        return dict(value)
    return value  # "custom": its class parses it


# --------------------------------------------------------------------------------------------
# What the declarations give
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Declared:
    """A setting as declared in one settings class."""

    name: str  # the field
    key: str  # the config key (the field's name but for ``len``)
    spec: Spec
    value_type: ValueType
    default: Any  # dataclasses.MISSING when required


_DECLARED: dict[type, tuple[Declared, ...]] = {}


def declared(cls: type) -> tuple[Declared, ...]:
    """The settings of settings class ``cls``, in field order."""
    if cls not in _DECLARED:
        out = []
        for f in dataclasses.fields(cls):
            spec = f.metadata.get(_SPEC)
            if spec is None:
                continue
            default = (
                f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
            )
            out.append(Declared(f.name, spec.key or f.name, spec, _value_type(cls, f), default))
        _DECLARED[cls] = tuple(out)
    return _DECLARED[cls]


def keys_with_role(cls: type, *roles: Role) -> tuple[str, ...]:
    """The config keys of ``cls`` whose role is one of ``roles``, in field order."""
    return tuple(d.key for d in declared(cls) if d.spec.role in roles)


def defaults(cls: type) -> dict[str, Any]:
    """Each setting of ``cls`` that has a default, under its config key."""
    return {d.key: d.default for d in declared(cls) if d.default is not dataclasses.MISSING}


def identity(
    config: Settings, *, always: frozenset[str], excluded: frozenset[str]
) -> dict[str, Any]:
    """The settings a run's id is a hash of: the keys of ``always`` (those that named runs
    when its kind of id was defined), and any other setting only where it differs from its
    default. So a setting declared later, with a default that keeps the old behaviour, does
    not change the id of any stored run, and a stored campaign or sweep still finds its runs.
    ``excluded``: labels and execution details that cannot change a result."""
    default = defaults(type(config))
    return {
        k: v
        for k, v in config.to_dict().items()
        if k not in excluded and (k in always or k not in default or v != default[k])
    }


def engine_arguments(config: Settings) -> dict[str, Any]:
    """The keyword arguments of the engine's trainer that ``config`` holds: each setting
    declared with ``engine=True``, under its own name."""
    return {d.name: getattr(config, d.name) for d in declared(type(config)) if d.spec.engine}


def rule_params(cls: type) -> dict[str, tuple[str, ...]]:
    """Each clipping rule's parameters among the settings of ``cls`` (role ``rule``)."""
    out: dict[str, list[str]] = {}
    for d in declared(cls):
        for rule in d.spec.rules:
            out.setdefault(rule, []).append(d.key)
    return {rule: tuple(keys) for rule, keys in out.items()}


def config_keys(*classes: type) -> dict[str, str]:
    """Every config key of ``classes`` with its help text, the first class's order first."""
    out: dict[str, str] = {}
    for cls in classes:
        for d in declared(cls):
            out.setdefault(d.key, d.spec.help)
    return out


def value_types(*classes: type) -> dict[str, ValueType]:
    """The declared type of every config key of ``classes``."""
    out: dict[str, ValueType] = {}
    for cls in classes:
        for d in declared(cls):
            out.setdefault(d.key, d.value_type)
    return out
