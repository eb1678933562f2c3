"""Checks of single config values, each raising UsageError that names the value and says what
it must be. Both kinds of run (:mod:`.config`, :mod:`.natural.config`) validate with these, so a
bad value reads the same whichever task it was given to."""

from __future__ import annotations

import math

from rnnstab_cli.errors import UsageError


def choice(key: str, value: object, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise UsageError(f"unknown {key} {value!r}; expected one of: {', '.join(choices)}")


def int_at_least(name: str, value: object, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise UsageError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise UsageError(f"{name} must be ≥ {minimum}, got {value}")


def positive_int(name: str, value: object) -> None:
    int_at_least(name, value, 1)


def finite_at_least(name: str, value: object, minimum: float, *, strict: bool = False) -> None:
    """``value`` a finite number ≥ ``minimum`` (> with ``strict``); bools are not numbers."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise UsageError(f"{name} must be a finite number, got {value!r}")
    if value < minimum or (strict and value == minimum):
        raise UsageError(f"{name} must be {'>' if strict else '≥'} {minimum:g}, got {value:g}")
