"""Where a natural-task run stands: the counters that, with the config and the tensors in the
checkpoint, fix everything that follows (so a resumed run continues bit for bit)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from rnnstab_cli.engine import StepStats
from rnnstab_cli.training.checkpoint import FieldError, fields_from_json
from rnnstab_cli.training.natural.config import NaturalConfig
from rnnstab_cli.training.natural.records import Outcome
from rnnstab_cli.training.natural.schedule import EarlyStopping


@dataclass(frozen=True)
class EpochTotals:
    """Sums over the updates done so far in the current epoch.

    ``nats / count`` is the epoch's running training error, measured before each update on
    that update's batch: with the summed cost (``time_reduction = "sum"``) ``nats`` is the total
    NLL and ``count`` the scored steps (exact per-step NLL); with the mean over the sequence
    (``"mean"``) the engine reports each sequence's per-step mean, so ``nats`` sums those and
    ``count`` counts sequences (a per-step NLL weighted by sequence, not by step).
    """

    updates: int = 0
    finite: int = 0
    nats: float = 0.0
    count: float = 0.0
    grad_norm_sum: float = 0.0
    grad_norm_max: float = 0.0
    omega_sum: float = 0.0
    clipped: int = 0
    skipped: int = 0
    seconds: float = 0.0  # training time of this epoch's updates, over all sessions
    # The clipping threshold in force, over the updates that had one (an adaptive rule's
    # moves with the norms; NaN from the engine when no threshold bounds the norm).
    threshold_sum: float = 0.0
    threshold_n: int = 0

    def add(
        self, st: StepStats, batch: int, steps: int, summed: bool, seconds: float
    ) -> EpochTotals:
        """Account for one update on ``batch`` sequences with ``steps`` scored steps."""
        ok = not st.skipped and math.isfinite(st.loss) and math.isfinite(st.grad_norm)
        bounded = math.isfinite(st.clip_threshold)
        out = replace(
            self,
            updates=self.updates + 1,
            clipped=self.clipped + int(st.clipped),
            skipped=self.skipped + int(st.skipped),
            seconds=self.seconds + seconds,
            threshold_sum=self.threshold_sum + (st.clip_threshold if bounded else 0.0),
            threshold_n=self.threshold_n + int(bounded),
        )
        if not ok:
            return out
        # The engine's E is (1/B)·Σ_b: B·E undoes the batch mean.
        return replace(
            out,
            finite=self.finite + 1,
            nats=self.nats + st.loss * batch,
            count=self.count + (steps if summed else batch),
            grad_norm_sum=self.grad_norm_sum + st.grad_norm,
            grad_norm_max=max(self.grad_norm_max, st.grad_norm),
            omega_sum=self.omega_sum + st.omega,
        )

    @property
    def train_nats_per_step(self) -> float:
        return self.nats / self.count if self.count else math.nan

    @property
    def grad_norm_mean(self) -> float:
        return self.grad_norm_sum / self.finite if self.finite else math.nan

    @property
    def omega_mean(self) -> float:
        return self.omega_sum / self.finite if self.finite else math.nan

    @property
    def clip_rate(self) -> float:
        return self.clipped / self.updates if self.updates else math.nan

    @property
    def clip_threshold_mean(self) -> float:
        return self.threshold_sum / self.threshold_n if self.threshold_n else math.nan


@dataclass(frozen=True)
class NaturalState:
    """Counters of a run. ``epochs_done`` complete epochs lie behind it; the epoch in
    progress is ``epochs_done + 1`` with ``epoch.updates`` of its updates done."""

    lr: float  # the learning rate of the epoch in progress (after any halving)
    updates: int = 0
    epochs_done: int = 0
    epoch: EpochTotals = field(default_factory=EpochTotals)
    prev_train: float | None = None  # the last complete epoch's running training error
    prev_valid: float | None = None  # the last complete epoch's validation score
    halving: bool = False  # valid-stall: the rate halves after every epoch from now on
    converged: bool = False  # valid-stall: an epoch stalled while the rate was halving
    stopping: EarlyStopping = field(default_factory=EarlyStopping)
    untrained_valid: float | None = None
    last_valid: float | None = None
    last_train: float | None = None
    eval_index: int = 0  # records in the metrics log (epoch 0 = the untrained model)
    wall_time: float = 0.0

    @property
    def current_epoch(self) -> int:
        return self.epochs_done + 1

    def outcome(self, config: NaturalConfig) -> Outcome | None:
        """How the run ended under ``config``'s patience and budgets, None while it has more to
        do. A checkpoint keeps no outcome of its own: saved with the config of its last
        session, its run is *finished* when this is not None for that config (a larger budget
        given on resume may still continue it)."""
        if self.converged:
            return "converged"
        if self.stopping.exhausted(config.patience):
            return "early_stopped"
        if self.epochs_done >= config.epochs:
            return "epochs_done"
        if config.max_updates and self.updates >= config.max_updates:
            return "max_updates"
        return None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: object) -> NaturalState:
        """Read back :meth:`to_json`'s output; FieldError names a field of the wrong type or
        range."""
        state = fields_from_json(
            cls,
            data,
            "run_state",
            nested={
                "epoch": lambda v, w: fields_from_json(EpochTotals, v, w),
                "stopping": lambda v, w: fields_from_json(EarlyStopping, v, w),
            },
        )
        if state.epoch.finite > state.epoch.updates:
            raise FieldError("run_state.epoch counts more finite updates than updates")
        if state.epoch.updates > state.updates:
            raise FieldError("run_state.epoch.updates is beyond run_state.updates")
        return state
