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
from rnnstab_cli.training.settings import Settings, declared, keys_with_role, rule_params, setting

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
    rho: float = setting(
        default=0.9,
        at_least=0.0,
        below=1.0,
        engine=True,
        help="rmsprop: weight of the past in the moving average of squared gradients",
    )
    eps: float = setting(
        default=1e-8,
        above=0.0,
        engine=True,
        help="rmsprop, adagrad: added to the root of the squared-gradient average or sum",
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
    # The clipping rules' parameters, beyond ``clip`` (the threshold of ``norm`` and ``value``).
    # The definitions are the engine's (rust/engine/src/clip_rules.rs, and the README):
    # - auto (§3.2's heuristic): threshold = clip_factor × the mean of the last clip_window
    #   pre-clipping norms; no clipping until clip_window norms have been seen;
    # - percentile (AutoClip, Seetharaman et al. 2020): the clip_percentile-th percentile of
    #   every earlier norm;
    # - zscore (ZClip-like): rescale to μ + clip_z·σ of the norm's moving statistics (weight
    #   clip_beta on the past) once clip_warmup norms have been seen;
    # - skip: leave out an update whose norm exceeds clip_factor × the moving mean (weight
    #   clip_beta) of earlier norms, after clip_warmup norms;
    # - agc (Brock et al. 2021): unit-wise, ‖G_i‖ ≤ clip_lambda·max(‖W_i‖, 10⁻³).
    clip_window: int = setting(
        default=100,
        at_least=1,
        at_most=1_000_000,  # the engine's MAX_WINDOW
        role="rule",
        rules=("auto",),
        engine=True,
        help="auto: pre-clipping norms averaged (default 100)",
    )
    clip_factor: float = setting(
        default=2.0,
        above=0.0,
        role="rule",
        rules=("auto", "skip"),
        engine=True,
        help="auto: threshold = factor × mean norm; skip: skip above factor × moving mean "
        "(default 2)",
    )
    clip_percentile: float = setting(
        default=10.0,
        above=0.0,
        at_most=100.0,
        role="rule",
        rules=("percentile",),
        engine=True,
        help="percentile: p of the percentile of earlier norms (default 10)",
    )
    clip_z: float = setting(
        default=2.5,
        above=0.0,
        role="rule",
        rules=("zscore",),
        engine=True,
        help="zscore: clip at μ + z·σ of the norm (default 2.5)",
    )
    clip_beta: float = setting(
        default=0.97,
        above=0.0,
        below=1.0,
        role="rule",
        rules=("zscore", "skip"),
        engine=True,
        help="zscore, skip: weight of the past in the moving statistics (default 0.97)",
    )
    clip_warmup: int = setting(
        default=25,
        at_least=1,
        role="rule",
        rules=("zscore", "skip"),
        engine=True,
        help="zscore, skip: norms seen before the rule acts (default 25)",
    )
    clip_lambda: float = setting(
        default=0.01,
        above=0.0,
        role="rule",
        rules=("agc",),
        engine=True,
        help="agc: bound λ on ‖G_i‖ / max(‖W_i‖, 1e-3) per unit (default 0.01)",
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.method != "sgd-cr" and self.alpha != 0.0:
            raise UsageError(
                f"alpha {self.alpha} needs --method sgd-cr (Ω is off with {self.method})"
            )

    def to_dict(self) -> dict[str, Any]:
        """The resolved settings under the config-file keys (TOML-able), leaving out what is
        unset (None: ``threads`` when automatic) and the parameters of the clipping rules
        other than the config's; ``from_dict`` reads it back. A run's id hashes it, so a
        setting that matters only under some rule changes no other run's id."""
        out: dict[str, Any] = {}
        unused = clip_keys_unused(self.clip_mode)
        for d in declared(type(self)):
            value = getattr(self, d.name)
            if d.key in unused or value is None:
                continue
            out[d.key] = value.to_toml() if hasattr(value, "to_toml") else value
        return out

    def replace(self, **changes: Any) -> Self:
        """A copy with ``changes``, validated like any new config."""
        return dataclasses.replace(self, **changes)


#: The clipping rules' parameters: they shape the trajectory too, but only under their rule: a
#: config carries them (to_dict) only then, so they are checked on resume and enter a run id
#: only when they matter, and no older id changes.
CLIP_RULE_KEYS: Final[tuple[str, ...]] = keys_with_role(ModelSettings, "rule")
#: Each clipping mode's parameters beyond ``clip``.
CLIP_RULE_PARAMS: Final[dict[str, tuple[str, ...]]] = {
    mode: rule_params(ModelSettings).get(mode, ()) for mode in CLIP_MODES
}


def clip_keys_unused(clip_mode: str) -> frozenset[str]:
    """The rule parameters ``clip_mode`` does not look at."""
    return frozenset(CLIP_RULE_KEYS) - set(CLIP_RULE_PARAMS.get(clip_mode, ()))
