"""The per-epoch schedules of the paper's natural tasks (appendix, "Natural Tasks").

- Learning rate: "halved every time the error over an epoch increased instead of decreasing"
  (:func:`next_lr`).
- Ω's weight: constant, or α_t = α₀/t with t the epoch counted from 1 (:func:`alpha_at`; the
  appendix writes Piano-midi.de's α₀ = 0.5 as α_t = 1/(2t)).
- Early stopping on the validation score after ``patience`` epochs without improvement
  (:class:`EarlyStopping`; ours, the paper does not say when its runs stopped).

Pure functions of numbers, so the loop and the tests share them and a resumed run recomputes
exactly what an uninterrupted one would.
"""

from __future__ import annotations

from dataclasses import dataclass, replace


def next_lr(lr: float, previous_error: float | None, error: float, halving: bool) -> float:
    """The learning rate for the next epoch: half of ``lr`` when ``halving`` is on and this
    epoch's training ``error`` is above the previous epoch's, else ``lr``."""
    if halving and previous_error is not None and error > previous_error:
        return lr / 2.0
    return lr


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
