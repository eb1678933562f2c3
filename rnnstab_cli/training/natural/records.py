"""What a natural-task run reports: one record per epoch (epoch 0 is the untrained model) and
a summary at the end; the CLI's ``--json`` streams their ``to_json``."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal, Protocol

from rnnstab_cli.training.natural.config import NaturalConfig
from rnnstab_cli.training.natural.metrics import LN2, UNITS
from rnnstab_cli.training.records import json_number

Outcome = Literal["epochs_done", "max_updates", "early_stopped", "converged"]
OUTCOMES: Final[tuple[str, ...]] = ("epochs_done", "max_updates", "early_stopped", "converged")


def in_table_units(metric: str, nats_per_step: float) -> float:
    """Nats per step as the table reports it: nats (Table 1) or bits (Table 2)."""
    return nats_per_step / LN2 if metric == "bpc" else nats_per_step


@dataclass(frozen=True)
class EpochRecord:
    """One evaluation, at the end of an epoch (``complete``) or where a budget cut it short.

    ``train`` is the epoch's running training error (see
    :class:`~rnnstab_cli.training.natural.state.EpochTotals`), ``valid`` the whole validation
    split's score, both in the table's unit; ``lr`` and ``alpha`` are what the epoch trained
    with and ``next_lr`` what the next one will (after the learning-rate schedule's step).
    """

    eval_index: int
    epoch: int
    complete: bool
    updates: int
    epoch_updates: int
    metric: str
    train: float | None
    valid: float
    lr: float
    next_lr: float
    alpha: float
    grad_norm_mean: float | None
    grad_norm_max: float | None
    clip_rate: float | None
    omega_mean: float | None
    skipped: int
    epoch_time: float
    eval_time: float
    wall_time: float
    best_valid: float | None
    best_epoch: int | None
    #: The mean clipping threshold in force over the epoch's updates that had one (None when
    #: none had: no clipping, element-wise clipping, or an adaptive rule still warming up).
    clip_threshold: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "event": "epoch",
            "eval_index": self.eval_index,
            "epoch": self.epoch,
            "complete": self.complete,
            "updates": self.updates,
            "epoch_updates": self.epoch_updates,
            "metric": self.metric,
            "unit": UNITS[self.metric],
            "train": json_number(self.train),
            "valid": json_number(self.valid),
            "lr": self.lr,
            "next_lr": self.next_lr,
            "lr_halved": self.next_lr < self.lr,
            "alpha": self.alpha,
            "grad_norm_mean": json_number(self.grad_norm_mean),
            "grad_norm_max": json_number(self.grad_norm_max),
            "clip_rate": json_number(self.clip_rate),
            "clip_threshold": json_number(self.clip_threshold),
            "omega_mean": json_number(self.omega_mean),
            "skipped": self.skipped,
            "epoch_time": round(self.epoch_time, 3),
            "eval_time": round(self.eval_time, 3),
            "wall_time": round(self.wall_time, 3),
            "best_valid": json_number(self.best_valid),
            "best_epoch": self.best_epoch,
        }


@dataclass(frozen=True)
class NaturalResult:
    """How a natural-task run ended; scores in the table's unit."""

    config: NaturalConfig
    outcome: Outcome
    epochs_done: int
    updates: int
    wall_time: float
    untrained_valid: float | None
    valid: float | None
    train: float | None
    best_valid: float | None
    best_epoch: int | None
    records: list[EpochRecord] = field(default_factory=list, repr=False)  # this session's
    out_dir: Path | None = None

    def to_json(self) -> dict[str, Any]:
        c = self.config
        return {
            "event": "summary",
            "outcome": self.outcome,
            "task": c.task,
            "dataset": c.dataset,
            "preset": c.preset,
            "method": c.method,
            "metric": c.metric,
            "unit": UNITS[c.metric],
            "epochs": self.epochs_done,
            "updates": self.updates,
            "wall_time": round(self.wall_time, 3),
            "untrained_valid": json_number(self.untrained_valid),
            "valid": json_number(self.valid),
            "train": json_number(self.train),
            "best_valid": json_number(self.best_valid),
            "best_epoch": self.best_epoch,
            "checkpoint": str(self.out_dir) if self.out_dir is not None else None,
        }


class NaturalProgressSink(Protocol):
    """Receives a natural run's events (see :mod:`.progress`)."""

    def start(self, config: NaturalConfig, updates_per_epoch: int, resumed_at: int) -> None: ...

    def epoch_start(self, epoch: int, done: int, lr: float, alpha: float) -> None: ...

    def update(self, done: int, loss: float, grad_norm: float, clipped: bool) -> None: ...

    def evaluating(self, split: str) -> None: ...

    def epoch_end(self, record: EpochRecord) -> None: ...

    def finish(self) -> None: ...
