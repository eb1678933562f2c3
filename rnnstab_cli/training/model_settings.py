"""The settings every run has, synthetic or natural: the model, its initialisation, the
optimiser, clipping and Ω, with their validation.

:class:`ModelSettings` is a mixin, not a dataclass: :class:`~.config.TrainConfig` and
:class:`~.natural.config.NaturalConfig` declare the fields themselves, because their defaults
differ (the paper's synthetic and natural set-ups) and the field order is the order of the
keys in every saved config.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Final, Self

from rnnstab_cli.engine import (
    ACTIVATIONS,
    CLIP_MODES,
    INITS,
    NONFINITE_POLICIES,
    OPTIMIZERS,
    check_threads,
)
from rnnstab_cli.errors import UsageError
from rnnstab_cli.training.value_checks import choice, finite_at_least, int_at_least, positive_int

METHODS: Final[tuple[str, ...]] = ("sgd", "sgd-c", "sgd-cr")
OMEGA_FORMS: Final[tuple[str, ...]] = ("norm", "squared")
TIME_REDUCTIONS: Final[tuple[str, ...]] = ("sum", "mean")
DTYPES: Final[tuple[str, ...]] = ("float32", "float64")


class ModelSettings:
    """Validation and copying shared by the frozen config dataclasses that mix it in."""

    method: str
    hidden: int
    activation: str
    init: str
    init_scale: float
    lr: float
    optimizer: str
    momentum: float
    clip_mode: str
    clip: float
    alpha: float
    omega_form: str
    time_reduction: str
    nonfinite: str
    batch: int
    seed: int
    threads: int | None
    dtype: str

    def _check_choices(self) -> None:
        """The named settings, each one of the names the paper or the engine knows."""
        choice("method", self.method, METHODS)
        choice("activation", self.activation, ACTIVATIONS)
        choice("init", self.init, INITS)
        choice("optimizer", self.optimizer, OPTIMIZERS)
        choice("clip mode", self.clip_mode, CLIP_MODES)
        choice("omega form", self.omega_form, OMEGA_FORMS)
        choice("time reduction", self.time_reduction, TIME_REDUCTIONS)
        choice("non-finite policy", self.nonfinite, NONFINITE_POLICIES)

    def _check_numbers(self) -> None:
        """The numeric settings, and α's agreement with the method."""
        for name in ("hidden", "batch"):
            positive_int(name, getattr(self, name))
        int_at_least("seed", self.seed, 0)
        check_threads(self.threads)
        finite_at_least("lr", self.lr, 0.0, strict=True)
        finite_at_least("init_scale", self.init_scale, 0.0)
        finite_at_least("alpha", self.alpha, 0.0)
        finite_at_least("clip", self.clip, 0.0, strict=True)
        if not (isinstance(self.momentum, int | float) and 0.0 <= self.momentum < 1.0):
            raise UsageError(f"momentum must be in [0, 1), got {self.momentum!r}")
        if self.method != "sgd-cr" and self.alpha != 0.0:
            raise UsageError(
                f"alpha {self.alpha} needs --method sgd-cr (Ω is off with {self.method})"
            )

    def replace(self, **changes: Any) -> Self:
        """A copy with ``changes``, validated like any new config."""
        # mypy cannot see that a mixin's Self is a dataclass; every subclass is one.
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]
