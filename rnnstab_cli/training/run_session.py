"""What every training session does around its loop, synthetic (:mod:`.synthetic.loop`) or natural
(:mod:`.natural.loop`): build the engine's trainer from the config, start fresh or pick up a
checkpoint, keep the wall clock across sessions, undo an update that Ctrl-C cut short, and
save on the way out.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rnnstab_cli.engine import Trainer, init_params
from rnnstab_cli.errors import CheckpointError, RnnstabError, UsageError
from rnnstab_cli.training.checkpoint import has_checkpoint
from rnnstab_cli.training.model_settings import ModelSettings
from rnnstab_cli.training.records import TrainingInterrupted
from rnnstab_cli.training.settings import Settings, engine_arguments

Params = dict[str, np.ndarray]


class TrainingDiverged(RnnstabError):
    """The gradient became NaN/inf and the config's ``nonfinite`` policy is ``error``."""

    exit_code = 1

    @classmethod
    def after(cls, updates: int, error: FloatingPointError) -> TrainingDiverged:
        return cls(f"training diverged after {updates} updates: {error}")


def engine_trainer(config: Settings, params: Params, *, loss: str, **options: Any) -> Trainer:
    """The engine's trainer for a run's settings: each setting declared for the engine
    (:func:`~.settings.engine_arguments`, the same names at the binding), then ``options``,
    which add what only the loop knows (the loss, a carried state) or override a setting's
    value (α on a schedule). The engine names a bad argument; that becomes a UsageError."""
    try:
        return Trainer(params, loss=loss, **(engine_arguments(config) | options))
    except (ValueError, TypeError) as e:
        raise UsageError(f"the engine refused these settings: {e}") from None


def initial_params(config: ModelSettings, n_in: int, n_out: int) -> Params:
    """The parameters a run starts from: a function of its config alone, so they can be
    re-created later (e.g. to compare a trained W_rec with the one it started as). The biases
    start at zero."""
    return init_params(
        n_in,
        config.hidden,
        n_out,
        init=config.init,
        scale=config.init_scale,
        seed=config.seed,
        dtype=config.dtype,
    )


def refuse_changes(new: Mapping[str, Any], old: Mapping[str, Any], keys: Iterable[str]) -> None:
    """Refuse to continue a checkpoint trained with ``old`` settings under ``new`` ones that
    differ in any of ``keys``."""
    diff = [k for k in keys if new.get(k) != old.get(k)]
    if diff:
        shown = ", ".join(f"{k}={old.get(k)!r} (now {new.get(k)!r})" for k in diff)
        raise CheckpointError(f"cannot resume: the checkpoint was trained with {shown}")


def resume_dir(out: Path | None) -> Path:
    """The checkpoint directory a resumed run needs."""
    if out is None:
        raise UsageError("resuming needs the checkpoint directory (out_dir)")
    return out


def refuse_overwrite(out: Path | None) -> None:
    """A fresh run never replaces a checkpoint it was not told to continue."""
    if out is not None and has_checkpoint(out):
        raise UsageError(
            f"{str(out)!r} already holds a checkpoint: continue it with --resume "
            f"{str(out)!r} or choose another --out"
        )


def restore_clip_state(trainer: Trainer, clip_state: np.ndarray | None, out: Path) -> None:
    """Give a resumed trainer its checkpointed clipping-rule state (none in a checkpoint of a
    rule that keeps none, or written before the adaptive rules existed)."""
    if clip_state is None:
        return
    try:
        trainer.set_clip_state(clip_state)
    except ValueError as e:
        raise CheckpointError(f"checkpoint {str(out)!r}: {e}") from None


def restore_optimizer(trainer: Trainer, optimizer_state: Params | None, out: Path) -> None:
    """Give a resumed trainer its checkpointed optimiser state (none for plain SGD)."""
    if optimizer_state is None:
        return
    try:
        trainer.set_optimizer_state(optimizer_state)
    except ValueError as e:
        raise CheckpointError(f"checkpoint {str(out)!r}: {e}") from None


@dataclass(frozen=True)
class TrainerSnapshot:
    """A trainer's parameters, optimiser state and clipping-rule state, to put back an update
    that Ctrl-C interrupted before the run's counters took it in."""

    params: Params
    optimizer_state: Params | None
    clip_state: np.ndarray

    @classmethod
    def of(cls, trainer: Trainer) -> TrainerSnapshot:
        return cls(trainer.params, trainer.optimizer_state(), trainer.clip_state())

    def restore(self, trainer: Trainer) -> None:
        trainer.params = self.params
        if self.optimizer_state is not None:
            trainer.set_optimizer_state(self.optimizer_state)
        trainer.set_clip_state(self.clip_state)


class WallClock:
    """Seconds spent training, summed over sessions: ``base`` from earlier ones (a resumed
    checkpoint's), plus this one's so far."""

    def __init__(self, base: float) -> None:
        self._base = base
        self._start = time.perf_counter()

    def __call__(self) -> float:
        return self._base + time.perf_counter() - self._start


def interrupted(save: Callable[[], None], updates: int, out: Path | None) -> TrainingInterrupted:
    """Ctrl-C: save the checkpoint and say where the run stands. When the save fails the
    previous checkpoint, if any, is still intact, but it is not where the run stands."""
    try:
        save()
    except CheckpointError:
        out = None
    return TrainingInterrupted(updates, out)
