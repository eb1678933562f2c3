"""The training loop: a plain function, usable without the CLI (a sweep calls it in-process).

    result = run_training(resolve_config({"task": "temporal-order", "len": "50"}))
    result.solved, result.updates, result.test_error

It reads top to bottom: resume or initialise → (evaluate + checkpoint when due) → K updates in
one engine call on a prefetched chunk → repeat until solved or out of budget. Python is only
between chunks; the engine releases the GIL, so the next chunk is sampled meanwhile.

Determinism: the data of update ``u`` depends only on (seed, u) (see :mod:`.batches`), the
test set of an evaluation after ``u`` updates only on (seed, u) (see :mod:`.evaluate`), and
the engine's results do not depend on its thread count. A run resumed from a checkpoint
therefore ends with the same parameters, bit for bit, as one that was never interrupted.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np

from rnnstab_cli.engine import Trainer, spectral_radius
from rnnstab_cli.taskgen import Task
from rnnstab_cli.training.checkpoint import (
    Checkpoint,
    PeriodTotals,
    RunState,
    load_checkpoint,
    read_metrics,
    save_checkpoint,
)
from rnnstab_cli.training.config import TrainConfig
from rnnstab_cli.training.model_settings import BASIC_CLIP_MODES
from rnnstab_cli.training.records import ChunkReport, EvalRecord, ProgressSink, RunResult
from rnnstab_cli.training.run_session import (
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
from rnnstab_cli.training.settings import keys_with_role
from rnnstab_cli.training.synthetic.batches import ChunkSource
from rnnstab_cli.training.synthetic.diagnostics import gradient_flow
from rnnstab_cli.training.synthetic.evaluate import judge

__all__ = ["EvalCallback", "TrainingDiverged", "check_resumable", "run_training"]

EvalCallback = Callable[[EvalRecord], None]


def check_resumable(config: TrainConfig, saved: TrainConfig) -> None:
    """Refuse to continue a checkpoint under settings that would change its trajectory."""
    refuse_changes(
        config.to_dict(),
        saved.to_dict(),
        keys_with_role(TrainConfig, "trajectory", "verdict", "rule"),
    )


def _make_trainer(config: TrainConfig, task: Task, params: dict[str, np.ndarray]) -> Trainer:
    return engine_trainer(config, params, loss=task.loss)


def _eval_due(state: RunState, config: TrainConfig) -> bool:
    u = state.updates
    if u == 0:
        return False
    at_end = u >= config.max_updates
    if u != state.last_eval_updates and (u % config.eval_every == 0 or at_end):
        return True
    # A run that ends must end on the full test sample, never on a screen.
    return at_end and not state.last_test_full


def _evaluate(
    trainer: Trainer, task: Task, config: TrainConfig, state: RunState, wall_time: float
) -> tuple[RunState, EvalRecord]:
    params = trainer.params
    j = judge(
        params,
        task,
        length=config.eval_length,
        min_length=config.length.lo,
        seed=config.seed,
        at_update=state.updates,
        full_sequences=config.eval_sequences,
        screen_sequences=config.screen_sequences,
        activation=config.activation,
        threads=config.threads,
        force_full=state.updates >= config.max_updates,
        solve_error=config.solve_error,
    )
    rho = spectral_radius(params["W_rec"])
    p = state.period
    m = j.measurement
    record = EvalRecord(
        eval_index=state.eval_index,
        updates=state.updates,
        wall_time=wall_time,
        loss=p.mean("loss"),
        grad_norm=p.mean("grad_norm"),
        clip_rate=p.rate("clipped"),
        clip_threshold=p.mean_clip_threshold(),
        omega=p.mean("omega"),
        skipped_rate=p.rate("skipped"),
        test_error=m.error_rate,
        test_sequences=m.sequences,
        test_full=j.full,
        test_length=m.length,
        spectral_radius=rho,
        lr=config.lr,
        alpha=config.alpha,
        solved=j.solved,
        diagnostics=gradient_flow(trainer, config, p.mean("omega_pairs"))
        if config.diagnostics
        else None,
    )
    new_state = replace(
        state,
        eval_index=state.eval_index + 1,
        wall_time=wall_time,
        # Only a scheduled evaluation starts a new averaging period: the extra one at the end of
        # a budget must not change what the next scheduled one reports after a resume.
        period=PeriodTotals() if state.updates % config.eval_every == 0 else state.period,
        solved=j.solved,
        last_eval_updates=state.updates,
        last_test_error=m.error_rate,
        last_test_sequences=m.sequences,
        last_test_full=j.full,
        last_spectral_radius=rho,
    )
    return new_state, record


def _train_segment(
    trainer: Trainer,
    inputs: np.ndarray,
    targets: np.ndarray,
    mask: np.ndarray,
    state: RunState,
    wall: Callable[[], float],
) -> tuple[RunState, ChunkReport]:
    """``len(inputs)`` updates in one engine call. On Ctrl-C (which the engine honours between
    updates) the trainer is put back as it was, so parameters always match the counters."""
    before = TrainerSnapshot.of(trainer)
    t0 = time.perf_counter()
    try:
        st = trainer.steps(inputs, targets, mask)
        seconds = time.perf_counter() - t0
        n = len(st.loss)
        period = state.period.add(
            st.loss,
            st.grad_norm,
            st.omega,
            st.clipped,
            st.skipped,
            st.omega_pairs,
            st.clip_threshold,
        )
        new_state = replace(state, updates=state.updates + n, wall_time=wall(), period=period)
    except KeyboardInterrupt:
        before.restore(trainer)
        raise
    except FloatingPointError as e:  # nonfinite = "error"
        raise TrainingDiverged.after(state.updates, e) from None
    ok = ~st.skipped
    report = ChunkReport(
        updates=new_state.updates,
        n=n,
        seconds=seconds,
        wall_time=new_state.wall_time,
        loss=float(st.loss[ok].mean()) if ok.any() else float("nan"),
        grad_norm=float(st.grad_norm[ok].mean()) if ok.any() else float("nan"),
        omega=float(st.omega[ok].mean()) if ok.any() else float("nan"),
        clip_rate=float(st.clipped.mean()),
        skipped=int(st.skipped.sum()),
    )
    return new_state, report


def run_training(
    config: TrainConfig,
    *,
    out_dir: str | os.PathLike[str] | None = None,
    resume: bool = False,
    on_eval: EvalCallback | None = None,
    progress: ProgressSink | None = None,
) -> RunResult:
    """Train ``config`` until solved or ``config.max_updates``; return how it ended.

    ``out_dir``: keep a checkpoint there (saved at every evaluation, at the end and on Ctrl-C).
    ``resume``: continue the checkpoint in ``out_dir``; ``config`` must agree with it on every
    setting that shapes the trajectory
    (:data:`~rnnstab_cli.training.config.TRAJECTORY_KEYS`), and may change the budget, the
    evaluation schedule and the thread count. ``on_eval`` is called with each evaluation's
    record after it is checkpointed; ``progress`` receives every event.

    Raises UsageError/CheckpointError for bad settings or checkpoints, TrainingDiverged when
    the ``nonfinite = "error"`` policy fires, and :class:`TrainingInterrupted` (a
    KeyboardInterrupt) on Ctrl-C, after saving the checkpoint.
    """
    task = config.make_task()
    config.check_memory()
    out = Path(out_dir) if out_dir is not None else None
    metrics: list[dict[str, object]] = []
    if resume:
        out = resume_dir(out)
        ckpt = load_checkpoint(out)
        ckpt.check_continuable(out)
        check_resumable(config, ckpt.config)
        state = ckpt.state
        metrics = read_metrics(out, state.eval_index)
        trainer = _make_trainer(config, task, ckpt.params)
        restore_optimizer(trainer, ckpt.optimizer_state, out)
        restore_clip_state(trainer, ckpt.clip_state, out)
    else:
        refuse_overwrite(out)
        trainer = _make_trainer(config, task, initial_params(config, task.n_in, task.n_out))
        state = RunState()

    wall = WallClock(state.wall_time)

    def save() -> None:
        if out is not None:
            clip_state = trainer.clip_state() if config.clip_mode not in BASIC_CLIP_MODES else None
            ckpt = Checkpoint(
                config,
                trainer.params,
                trainer.optimizer_state(),
                state,
                clip_state=clip_state,
            )
            save_checkpoint(out, ckpt, metrics[: state.eval_index])

    evals: list[EvalRecord] = []
    source = ChunkSource(
        task,
        seed=config.seed,
        size=config.chunk,
        batch=config.batch,
        length=config.length,
        dtype=np.dtype(config.dtype),
    )
    if progress is not None:
        progress.start(config, state.updates, state.wall_time)
    try:
        while True:
            if _eval_due(state, config):
                new_state, record = _evaluate(trainer, task, config, state, wall())
                metrics.append(record.to_json())
                state = new_state
                save()
                evals.append(record)
                if on_eval is not None:
                    on_eval(record)
                if progress is not None:
                    progress.evaluation(record)
            if state.solved or state.updates >= config.max_updates:
                break
            u = state.updates
            index, offset = divmod(u, config.chunk)
            next_eval = (u // config.eval_every + 1) * config.eval_every
            n = min(config.chunk - offset, next_eval - u, config.max_updates - u)
            chunk = source.get(index)
            state, report = _train_segment(trainer, *chunk.slice(offset, offset + n), state, wall)
            if progress is not None:
                progress.chunk(report)
        state = replace(state, wall_time=wall())
        save()
    except KeyboardInterrupt:
        state = replace(state, wall_time=wall())
        raise interrupted(save, state.updates, out) from None
    finally:
        source.close()
        if progress is not None:
            progress.finish()

    return RunResult(
        config=config,
        outcome="solved" if state.solved else "budget_exhausted",
        updates=state.updates,
        wall_time=state.wall_time,
        test_error=state.last_test_error,
        test_sequences=state.last_test_sequences,
        test_full=state.last_test_full,
        params=trainer.params,
        evals=evals,
        out_dir=out,
    )
