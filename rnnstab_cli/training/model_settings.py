"""The settings every run has, synthetic or natural: the model, its initialisation, the
optimiser, clipping and Ω — each declared once (:func:`~.settings.setting`), with its default
for the synthetic runs and, where it differs, for the natural ones (the paper's two set-ups).

:class:`~.config.TrainConfig` (the synthetic tasks) and :class:`~.natural.config.NaturalConfig`
(the natural ones) add their own settings to these.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Final, Self

from rnnstab_cli.engine_names import (
    ACTIVATIONS,
    CLIP_MODES,
    INITS,
    MAX_THREADS,
    NONFINITE_POLICIES,
    OPTIMIZERS,
)
from rnnstab_cli.errors import UsageError
from rnnstab_cli.training.settings import Settings, setting

METHODS: Final[tuple[str, ...]] = ("sgd", "sgd-c", "sgd-cr")
OMEGA_FORMS: Final[tuple[str, ...]] = ("norm", "squared")
TIME_REDUCTIONS: Final[tuple[str, ...]] = ("sum", "mean")
DTYPES: Final[tuple[str, ...]] = ("float32", "float64")

#: The clipping modes every kind of run has (the natural tasks stop here).
BASIC_CLIP_MODES: Final[tuple[str, ...]] = ("none", "norm", "value")


class ModelSettings(Settings):
    """The settings every run has. The defaults are the synthetic tasks' (the appendix's
    temporal-order set-up); ``natural=`` gives the natural tasks' neutral ones, the paper's
    numbers being in the presets."""

    task: str = setting(help="task or preset name (see `rnnstab tasks`)")
    preset: str | None = setting(default=None, role="label", help="the preset the run came from")
    method: str = setting(
        default="sgd-cr", choices=METHODS, help="sgd | sgd-c | sgd-cr (the paper's names)"
    )
    hidden: int = setting(default=50, natural=300, at_least=1, help="number of hidden units")
    activation: str = setting(
        default="tanh",
        natural="sigmoid",
        choices=ACTIVATIONS,
        engine=True,
        help=" | ".join(ACTIVATIONS),
    )
    init: str = setting(default="normal", choices=INITS, help=" | ".join(INITS))
    init_scale: float = setting(
        default=0.1, at_least=0.0, help="standard deviation of the normal initialisation"
    )
    lr: float = setting(default=0.001, natural=1.0, above=0.0, engine=True, help="learning rate")
    optimizer: str = setting(
        default="sgd", choices=OPTIMIZERS, engine=True, help=" | ".join(OPTIMIZERS)
    )
    momentum: float = setting(
        default=0.9,
        at_least=0.0,
        below=1.0,
        engine=True,
        help="momentum coefficient (momentum and nesterov optimisers)",
    )
    clip_mode: str = setting(
        default="norm",
        choices=CLIP_MODES,
        engine=True,
        help=" | ".join(CLIP_MODES) + " (overrides the method's clipping; the adaptive rules "
        "are defined in the README)",
    )
    clip: float = setting(
        default=6.0,
        natural=8.0,
        above=0.0,
        engine=True,
        help="clipping threshold (norm and value)",
    )
    alpha: float = setting(
        default=2.0,
        natural=0.0,
        at_least=0.0,
        engine=True,
        help="weight α of the Ω regulariser (used by sgd-cr)",
    )
    omega_form: str = setting(
        default="norm",
        choices=OMEGA_FORMS,
        engine=True,
        help="norm (eq. 9) | squared (the authors' code)",
    )
    time_reduction: str = setting(
        default="sum",
        natural="mean",
        choices=TIME_REDUCTIONS,
        engine=True,
        help="sum | mean of the cost over time steps",
    )
    nonfinite: str = setting(
        default="skip",
        choices=NONFINITE_POLICIES,
        engine=True,
        help="skip | shrink | error: what a NaN/inf gradient (or an update that would "
        "overflow the weights) does; shrink scales W_rec by 1 − 0.02·lr, bounded to [0.5, 1]",
    )
    batch: int = setting(default=20, natural=1, at_least=1, help="sequences per update")
    seed: int = setting(
        default=0, at_least=0, help="random seed (initialisation, training data, test data)"
    )
    threads: int | None = setting(
        default=None,
        at_least=1,
        at_most=MAX_THREADS,
        role="resumable",
        engine=True,
        help="engine threads (0 or absent: one per core)",
    )
    dtype: str = setting(default="float32", choices=DTYPES, help="float32 | float64")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.method != "sgd-cr" and self.alpha != 0.0:
            raise UsageError(
                f"alpha {self.alpha} needs --method sgd-cr (Ω is off with {self.method})"
            )

    def replace(self, **changes: Any) -> Self:
        """A copy with ``changes``, validated like any new config."""
        return dataclasses.replace(self, **changes)
