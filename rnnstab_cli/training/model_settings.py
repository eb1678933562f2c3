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

#: The parameters of each clipping rule, beyond ``clip`` (the threshold of ``norm`` and
#: ``value``). The definitions are the engine's (``rust/engine/src/clip_rules.rs``):
#:
#: - ``auto`` (§3.2's heuristic): threshold = clip_factor × the mean of the last clip_window
#:   pre-clipping norms; no clipping until clip_window norms have been seen;
#: - ``percentile`` (AutoClip, Seetharaman et al. 2020): the clip_percentile-th percentile of
#:   every earlier norm;
#: - ``zscore`` (ZClip-like): rescale to μ + clip_z·σ of the norm's moving statistics (weight
#:   clip_beta on the past) once clip_warmup norms have been seen;
#: - ``skip``: leave out an update whose norm exceeds clip_factor × the moving mean (weight
#:   clip_beta) of earlier norms, after clip_warmup norms;
#: - ``agc`` (Brock et al. 2021): unit-wise, ‖G_i‖ ≤ clip_lambda·max(‖W_i‖, 10⁻³).
#:
#: A key enters a config (its saved form, the run's identity, the resume check) only when its
#: rule is the config's ``clip_mode``: a run without an adaptive rule keeps the settings, and so
#: the id, it had before these rules existed.
CLIP_RULE_PARAMS: Final[dict[str, tuple[str, ...]]] = {
    "none": (),
    "norm": (),
    "value": (),
    "auto": ("clip_window", "clip_factor"),
    "percentile": ("clip_percentile",),
    "zscore": ("clip_z", "clip_beta", "clip_warmup"),
    "skip": ("clip_factor", "clip_beta", "clip_warmup"),
    "agc": ("clip_lambda",),
}
#: Every rule parameter, in the order of the config's fields.
CLIP_RULE_KEYS: Final[tuple[str, ...]] = (
    "clip_window", "clip_factor", "clip_percentile", "clip_z", "clip_beta", "clip_warmup",
    "clip_lambda",
)  # fmt: skip
#: The clipping modes every kind of run has (the natural tasks stop here).
BASIC_CLIP_MODES: Final[tuple[str, ...]] = ("none", "norm", "value")
#: Bound on clip_window (the engine's MAX_WINDOW).
MAX_CLIP_WINDOW: Final[int] = 1_000_000


def clip_keys_unused(clip_mode: str) -> frozenset[str]:
    """The rule parameters ``clip_mode`` does not look at."""
    return frozenset(CLIP_RULE_KEYS) - set(CLIP_RULE_PARAMS.get(clip_mode, ()))


def check_clip_rule(settings: Any) -> None:
    """The rule parameters of ``settings`` (an object with the CLIP_RULE_KEYS attributes), each
    in the domain the engine accepts, so a sweep's bad value is named before any run starts."""
    window = settings.clip_window
    int_at_least("clip_window", window, 1)
    if window > MAX_CLIP_WINDOW:
        raise UsageError(f"clip_window must be at most {MAX_CLIP_WINDOW:,}, got {window}")
    int_at_least("clip_warmup", settings.clip_warmup, 1)
    for name in ("clip_factor", "clip_z", "clip_lambda"):
        finite_at_least(name, getattr(settings, name), 0.0, strict=True)
    p = settings.clip_percentile
    finite_at_least("clip_percentile", p, 0.0, strict=True)
    if p > 100:
        raise UsageError(f"clip_percentile must be in (0, 100], got {p:g}")
    beta = settings.clip_beta
    finite_at_least("clip_beta", beta, 0.0, strict=True)
    if beta >= 1:
        raise UsageError(f"clip_beta must be in (0, 1), got {beta:g}")


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
