"""The per-epoch schedules of the paper's natural tasks (appendix, "Natural Tasks").

- Learning rate (:func:`next_lr`): the paper's rule, "halved every time the error over an
  epoch increased instead of decreasing" (``train-rise``); or the rule of Mikolov et al. (2012),
  whose PTB set-up the appendix follows and whose rnnlm toolkit applies it (``valid-stall``):
  once an epoch lowers the validation score by less than a factor 1.003, halve the rate after every
  epoch, and stop at the next such epoch.
- Ω's weight: constant, or α_t = α₀/t with t the epoch counted from 1 (:func:`alpha_at`; the
  appendix writes Piano-midi.de's α₀ = 0.5 as α_t = 1/(2t)).
- Early stopping on the validation score after ``patience`` epochs without improvement
  (:class:`EarlyStopping`; ours, the paper does not say when its runs stopped).

Pure functions of numbers, so the loop and the tests share them and a resumed run recomputes
exactly what an uninterrupted one would.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Final

#: What halves the learning rate (when ``lr_halving`` is on).
LR_HALVING_RULES: Final[tuple[str, ...]] = ("train-rise", "valid-stall")
#: ``valid-stall``: an epoch stalls when its validation score times (1 + this) is above the
#: previous epoch's: rnnlm's ``min_improvement`` of 1.003 on the validation log-likelihood.
VALID_STALL_GAIN: Final[float] = 0.003


@dataclass(frozen=True)
class LrStep:
    """The end-of-epoch decision of the learning-rate schedule."""

    lr: float  # the rate of the next epoch
    halving: bool = False  # valid-stall: the rate now halves after every epoch
    converged: bool = False  # valid-stall: a stall while halving ends the run


def next_lr(
    lr: float,
    rule: str | None,
    *,
    previous_error: float | None,
    error: float,
    previous_valid: float | None = None,
    valid: float | None = None,
    halving: bool = False,
) -> LrStep:
    """The schedule's step after a complete epoch with training ``error`` and validation score
    ``valid`` (lower is better), the previous complete epoch's being ``previous_*``.

    ``rule`` None keeps ``lr``. ``train-rise`` halves it when ``error`` is above
    ``previous_error``. ``valid-stall`` halves it after every epoch from the first one whose
    ``valid * (1 + VALID_STALL_GAIN)`` is above ``previous_valid`` on (``halving`` says
    whether that happened before), and converges at the next such epoch.
    """
    if rule is None:
        return LrStep(lr)
    if rule == "train-rise":
        rose = previous_error is not None and error > previous_error
        return LrStep(lr / 2.0 if rose else lr)
    if rule == "valid-stall":
        stalled = (
            previous_valid is not None
            and valid is not None
            and valid * (1.0 + VALID_STALL_GAIN) > previous_valid
        )
        if stalled and halving:
            return LrStep(lr, halving=True, converged=True)
        halving = halving or stalled
        return LrStep(lr / 2.0 if halving else lr, halving=halving)
    raise ValueError(f"unknown learning-rate rule {rule!r}")


def alpha_at(alpha0: float, schedule: str, epoch: int) -> float:
    """α during ``epoch`` (1-based): ``alpha0`` (``constant``) or ``alpha0 / epoch`` (``1/t``)."""
    if epoch < 1:
        raise ValueError(f"epochs count from 1, got {epoch}")
    if schedule == "1/t":
        return alpha0 / epoch
    if schedule == "constant":
        return alpha0
    raise ValueError(f"unknown alpha schedule {schedule!r}")


@dataclass(frozen=True)
class EarlyStopping:
    """Best validation score so far and the complete epochs since it improved (lower is
    better: NLL and bits per character both are)."""

    best: float | None = None
    best_epoch: int | None = None
    bad_epochs: int = 0

    def update(self, score: float, epoch: int, *, complete: bool) -> tuple[EarlyStopping, bool]:
        """Record a validation ``score`` after ``epoch``; return the new state and whether it
        is a new best. Only complete epochs count towards the patience."""
        improved = self.best is None or score < self.best
        if improved:
            return EarlyStopping(score, epoch, 0), True
        if not complete:
            return self, False
        return replace(self, bad_epochs=self.bad_epochs + 1), False

    def exhausted(self, patience: int) -> bool:
        """Whether ``patience`` (> 0) complete epochs passed without improvement."""
        return patience > 0 and self.bad_epochs >= patience
