"""The epoch loop of the natural tasks: a plain function, usable without the CLI.

    result = run_natural(resolve_natural_config({"task": "music", "dataset": "nottingham"}))

It reads top to bottom: resume or initialise → score the untrained model → for each epoch:
set lr and α (schedules) → one update per batch (truncated BPTT with the state carried for
PTB) → score the validation split → halve lr by the schedule's rule, track the best validation
score (early stopping) → checkpoint → until the epoch or update budget runs out, patience is
exhausted or the schedule converges.

Determinism: epoch e's batches depend only on (seed, e), the engine's results not on its thread
count, and the checkpoint holds the mid-epoch position and carried state, so a resumed run ends
with the same parameters, bit for bit, as one that never stopped.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from rnnstab_cli.engine import Trainer
from rnnstab_cli.errors import CheckpointError
from rnnstab_cli.resources import batches_bytes, bptt_bytes, model_bytes, require
from rnnstab_cli.training.checkpoint import read_metrics
from rnnstab_cli.training.model_settings import BASIC_CLIP_MODES
from rnnstab_cli.training.natural.checkpoint import (
    NaturalCheckpoint,
    check_continuable,
    continuable_params,
    load_natural_checkpoint,
    save_natural_checkpoint,
    scored_params,
)
from rnnstab_cli.training.natural.config import NATURAL_RESUMABLE_KEYS, NaturalConfig
from rnnstab_cli.training.natural.data import (
    NaturalData,
    epoch_batches,
    load_natural_data,
    score_split,
    updates_per_epoch,
)
from rnnstab_cli.training.natural.records import (
    EpochRecord,
    NaturalProgressSink,
    NaturalResult,
    in_table_units,
)
from rnnstab_cli.training.natural.schedule import LrStep, next_lr
from rnnstab_cli.training.natural.state import EpochTotals, NaturalState
from rnnstab_cli.training.run_session import (
    Params,
    TrainerSnapshot,
    TrainingDiverged,
    WallClock,
    engine_trainer,
    initial_params,
    interrupted,
    refuse_changes,
    refuse_overwrite,
    restore_clip_state,
    restore_optimizer,
    resume_dir,
)

__all__ = [
    "EpochCallback",
    "check_natural_resumable",
    "make_natural_trainer",
    "run_natural",
    "run_natural_scored",
]

EpochCallback = Callable[[EpochRecord], None]


def check_natural_resumable(config: NaturalConfig, saved: NaturalConfig) -> None:
    """Refuse to continue a checkpoint under settings that would change its trajectory."""
    new, old = config.to_dict(), saved.to_dict()
    refuse_changes(new, old, sorted((set(new) | set(old)) - set(NATURAL_RESUMABLE_KEYS)))


def make_natural_trainer(config: NaturalConfig, params: Params) -> Trainer:
    """The engine's trainer for ``config``: PTB carries its state across segments."""
    return engine_trainer(
        config,
        params,
        loss=config.loss,
        alpha=config.alpha_at(1),
        carry_state=config.task == "ptb-char",
    )


def _check_memory(config: NaturalConfig, data: NaturalData) -> None:
    """UsageError at once when the model and one batch cannot fit in memory."""
    item = np.dtype(config.dtype).itemsize
    h, i, o, t, b = config.hidden, data.n_in, data.n_out, config.seq_len, config.batch
    require(
        model_bytes(h, i, o, item)
        + bptt_bytes(t, b, h, i, o, item)
        + batches_bytes(t, b, i, o, item, 2),
        f"this run (seq_len {t}, batch {b}, hidden {h}, {config.dtype})",
        "lower --len, --batch or --hidden",
    )


class _Run:
    """The mutable pieces of one session: trainer, counters, best parameters, log."""

    def __init__(
        self,
        config: NaturalConfig,
        data: NaturalData,
        out: Path | None,
        resume: bool,
    ) -> None:
        _check_memory(config, data)
        self.config = config
        self.data = data
        self.out = out
        self.carry: np.ndarray | None = None  # (B, H) to start the next PTB segment from
        self.best: Params | None = None
        self.metrics: list[dict[str, object]] = []
        if resume:
            out = resume_dir(out)
            ckpt = load_natural_checkpoint(out)
            check_natural_resumable(config, ckpt.config)
            if ckpt.vocab != data.vocab:
                raise CheckpointError(
                    f"checkpoint {str(out)!r} was trained on other symbols than {data.source}"
                )
            self.trainer = make_natural_trainer(config, continuable_params(ckpt, out))
            restore_optimizer(self.trainer, ckpt.optimizer_state, out)
            restore_clip_state(self.trainer, ckpt.clip_state, out)
            self.state = ckpt.state
            self.carry, self.best = ckpt.carry, ckpt.best_params
            self.metrics = read_metrics(out, self.state.eval_index)
        else:
            refuse_overwrite(out)
            # The biases start at zero, so train_biases=False keeps them there.
            params = initial_params(config, data.n_in, data.n_out)
            self.trainer = make_natural_trainer(config, params)
            self.state = NaturalState(lr=config.lr)
        self.wall = WallClock(self.state.wall_time)

    def save(self) -> None:
        if self.out is None:
            return
        adaptive = self.config.clip_mode not in BASIC_CLIP_MODES
        ckpt = NaturalCheckpoint(
            self.config, self.trainer.params, self.trainer.optimizer_state(),
            replace(self.state, wall_time=self.wall()), self.data.vocab,
            self.carry if self.state.epoch.updates else None, self.best,
            clip_state=self.trainer.clip_state() if adaptive else None,
        )  # fmt: skip
        save_natural_checkpoint(self.out, ckpt, self.metrics)


def _train_epoch(run: _Run, progress: NaturalProgressSink | None) -> None:
    """Updates of the epoch in progress from where it stands, until it ends or the update
    budget does. On Ctrl-C the interrupted update is undone, so the parameters, the carried
    state and the counters always agree."""
    config, trainer = run.config, run.trainer
    start = run.state.epoch.updates
    summed = config.time_reduction == "sum"
    ptb = config.task == "ptb-char"
    if start == 0:
        trainer.reset_state()  # a new pass over the stream starts from x_0 = 0
        run.carry = None
    x0 = run.carry  # after a resume, the engine has no carried state of its own yet
    for i, batch in enumerate(epoch_batches(config, run.data, run.state.current_epoch)):
        if i < start:
            continue  # resumed mid-epoch: these updates are done
        if config.max_updates and run.state.updates >= config.max_updates:
            break
        done = run.state.updates
        before, carry_before = TrainerSnapshot.of(trainer), run.carry
        t0 = time.perf_counter()
        try:
            st = trainer.step(batch.inputs, batch.targets, batch.mask, x0)
            totals = run.state.epoch.add(
                st, batch.inputs.shape[1], batch.steps, summed, time.perf_counter() - t0
            )
            carry = trainer.final_state() if ptb else None
            # Counters and carried state change together, after the update is complete.
            run.state, run.carry = replace(run.state, updates=done + 1, epoch=totals), carry
        except KeyboardInterrupt:
            if run.state.updates == done:  # the update ran but is not accounted: undo it
                before.restore(trainer)
                run.carry = carry_before
            raise
        except FloatingPointError as e:  # nonfinite = "error"
            raise TrainingDiverged.after(done, e) from None
        x0 = None  # from now on the engine carries the state itself
        if progress is not None:
            progress.update(run.state.epoch.updates, st.loss, st.grad_norm, st.clipped)


def _evaluate(
    run: _Run, n_updates: int, alpha: float, progress: NaturalProgressSink | None
) -> EpochRecord:
    """Score the validation split, apply the end-of-epoch schedules, log and checkpoint."""
    config, state = run.config, run.state
    totals = state.epoch
    complete = totals.updates == n_updates
    if progress is not None:
        progress.evaluating("validation")
    t0 = time.perf_counter()
    params = run.trainer.params
    valid = score_split(config, params, run.data, "valid", config.threads).value
    eval_time = time.perf_counter() - t0
    epoch = state.epochs_done + (1 if totals.updates else 0)
    train_nats = totals.train_nats_per_step
    train = in_table_units(config.metric, train_nats) if totals.finite else None
    lr = state.lr
    stopping = state.stopping
    if epoch > 0:
        stopping, improved = stopping.update(valid, epoch, complete=complete)
        if improved:
            run.best = params
    step = LrStep(lr, state.halving)
    if complete and epoch > 0:
        step = next_lr(
            lr,
            config.lr_rule,
            previous_error=state.prev_train,
            error=train_nats,
            previous_valid=state.prev_valid,
            valid=valid,
            halving=state.halving,
        )
    record = EpochRecord(
        eval_index=state.eval_index,
        epoch=epoch,
        complete=complete or epoch == 0,
        updates=state.updates,
        epoch_updates=totals.updates,
        metric=config.metric,
        train=train,
        valid=valid,
        lr=lr,
        next_lr=step.lr,
        alpha=alpha if epoch > 0 else config.alpha_at(1),
        grad_norm_mean=totals.grad_norm_mean if totals.updates else None,
        grad_norm_max=totals.grad_norm_max if totals.finite else None,
        clip_rate=totals.clip_rate if totals.updates else None,
        omega_mean=totals.omega_mean if totals.updates else None,
        skipped=totals.skipped,
        epoch_time=totals.seconds,
        eval_time=eval_time,
        wall_time=run.wall(),
        best_valid=stopping.best,
        best_epoch=stopping.best_epoch,
        clip_threshold=totals.clip_threshold_mean if totals.threshold_n else None,
    )
    new = replace(
        state,
        stopping=stopping,
        last_valid=valid,
        eval_index=state.eval_index + 1,
        untrained_valid=valid if epoch == 0 else state.untrained_valid,
        last_train=train if train is not None else state.last_train,
    )
    if complete and epoch > 0:
        new = replace(
            new,
            epochs_done=epoch,
            epoch=EpochTotals(),
            lr=step.lr,
            prev_train=train_nats,
            prev_valid=valid,
            halving=step.halving,
            converged=step.converged,
        )
    run.state = new
    run.metrics.append(record.to_json())
    run.save()
    return record


def run_natural(
    config: NaturalConfig,
    *,
    out_dir: str | os.PathLike[str] | None = None,
    resume: bool = False,
    on_epoch: EpochCallback | None = None,
    progress: NaturalProgressSink | None = None,
) -> NaturalResult:
    """Train ``config`` epoch by epoch until ``epochs``, ``max_updates`` or ``patience`` ends
    it; return how it ended.

    ``out_dir``: keep a checkpoint there (saved after every evaluation, i.e. every epoch, at
    the end of a budget and on Ctrl-C). ``resume``: continue the checkpoint in ``out_dir``;
    only the budgets, patience, threads and data path may change. ``on_epoch`` gets each
    record after it is checkpointed.

    Raises UsageError/DataError/CheckpointError for bad settings, data or checkpoints,
    TrainingDiverged under ``nonfinite = "error"``, and TrainingInterrupted on Ctrl-C (after
    saving the checkpoint).
    """
    out = Path(out_dir) if out_dir is not None else None
    if resume:
        check_continuable(resume_dir(out))  # before the data, which may take a while to load
    data = load_natural_data(config)
    run = _Run(config, data, out, resume)
    n_updates = updates_per_epoch(config, data)
    records: list[EpochRecord] = []

    def emit(record: EpochRecord) -> None:
        records.append(record)
        if progress is not None:
            progress.epoch_end(record)
        if on_epoch is not None:
            on_epoch(record)

    if progress is not None:
        progress.start(config, n_updates, run.state.updates)
    try:
        if run.state.eval_index == 0:  # the untrained model, the baseline of every table
            emit(_evaluate(run, n_updates, config.alpha_at(1), progress))
        while (outcome := run.state.outcome(config)) is None:
            epoch = run.state.current_epoch
            alpha = config.alpha_at(epoch)
            run.trainer.lr = run.state.lr
            run.trainer.alpha = alpha
            if progress is not None:
                progress.epoch_start(epoch, run.state.epoch.updates, run.state.lr, alpha)
            _train_epoch(run, progress)
            emit(_evaluate(run, n_updates, alpha, progress))
        run.state = replace(run.state, wall_time=run.wall())
        run.save()
    except KeyboardInterrupt:
        run.state = replace(run.state, wall_time=run.wall())
        raise interrupted(run.save, run.state.updates, out) from None
    finally:
        if progress is not None:
            progress.finish()
    s = run.state
    return NaturalResult(
        config=config,
        outcome=outcome,
        epochs_done=s.epochs_done,
        updates=s.updates,
        wall_time=s.wall_time,
        untrained_valid=s.untrained_valid,
        valid=s.last_valid,
        train=s.last_train,
        best_valid=s.stopping.best,
        best_epoch=s.stopping.best_epoch,
        records=records,
        out_dir=out,
    )


def run_natural_scored(config: Mapping[str, Any], run_dir: Path, resume: bool) -> dict[str, Any]:
    """Train (or continue) one natural run in ``run_dir``, then score the best validation
    parameters on the train and test splits. Raises KeyboardInterrupt after checkpointing."""
    cfg = NaturalConfig.from_dict(config, source="natural run")
    result = run_natural(cfg, out_dir=run_dir, resume=resume)
    params, _ = scored_params(load_natural_checkpoint(run_dir), run_dir)
    data = load_natural_data(cfg)
    scores = {
        split: score_split(cfg, params, data, split, cfg.threads).value
        for split in ("train", "test")
    }
    return {
        "outcome": result.outcome,
        "epochs": result.epochs_done,
        "updates": result.updates,
        "best_epoch": result.best_epoch,
        "wall_time": result.wall_time,
        "train": scores["train"],
        "valid": result.best_valid,
        "test": scores["test"],
    }
