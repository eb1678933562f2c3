"""One sweep run, executed wherever the backend puts it (a local worker process, a thread, a
Ray task): :func:`execute_run` takes a picklable :class:`RunTask` and returns a picklable
result dict; the driver alone writes the store.

With a run directory the run keeps a checkpoint there (``run_training(out_dir=...)``), so a run
killed half-way continues from its last evaluation instead of from scratch, and a run whose
process died after finishing but before the driver stored it is read back at once. A lock file
(``flock``, released by the kernel when its holder dies, even by ``kill -9``) keeps two
processes from ever writing the same checkpoint, e.g. an orphaned worker of a killed sweep and
the sweep resumed after it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import threading
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any, Final, Protocol

from rnnstab_cli import __version__
from rnnstab_cli.errors import CheckpointError, RnnstabError
from rnnstab_cli.sweep.store import utc_now
from rnnstab_cli.training.checkpoint import has_checkpoint, load_checkpoint
from rnnstab_cli.training.config import TrainConfig
from rnnstab_cli.training.synthetic.loop import run_training

try:  # POSIX only; elsewhere runs are not locked (one sweep per store is then on the user)
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]  # the module or None: callers check

__all__ = [
    "INTERRUPTED",
    "LOCK_FILE",
    "RunTask",
    "execute_run",
    "install_worker_signals",
    "watch_parent",
]

#: Outcome of a run stopped by Ctrl-C (or its sweep's death): not stored, run again next time.
INTERRUPTED: Final[str] = "interrupted"
LOCK_FILE: Final[str] = ".sweep.lock"


class StopFlag(Protocol):
    """A multiprocessing or threading Event."""

    def is_set(self) -> bool: ...


#: What a task trains: a synthetic task until solved (``TrainConfig``), or a natural task
#: epoch by epoch, then scored on its splits (``NaturalConfig``).
KINDS: Final[tuple[str, ...]] = ("synthetic", "natural")


@dataclass(frozen=True)
class RunTask:
    """What a worker needs: the run id, its resolved config (``TrainConfig.to_dict``, or
    ``NaturalConfig.to_dict`` for a natural run), where to keep its checkpoint (or None), the
    backend's name for the store and the kind of run."""

    run_id: str
    config: dict[str, Any]
    run_dir: str | None
    backend: str
    kind: str = "synthetic"


# --------------------------------------------------------------------------------------------
# Signals in local worker processes
# --------------------------------------------------------------------------------------------

_run_active = threading.Event()
_run_done = threading.Event()


def _interrupt_once(signum: int, frame: FrameType | None) -> None:
    """SIGINT during a run: one KeyboardInterrupt (run_training then saves its checkpoint),
    and every further SIGINT ignored, so the terminal's Ctrl-C and the driver's forwarded one
    together cannot interrupt the checkpoint write itself."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise KeyboardInterrupt


def install_worker_signals() -> None:
    """For pool processes: ignore SIGINT between runs (an idle worker has nothing to save and
    should not die with a traceback); :func:`execute_run` arms it during a run."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def watch_parent(parent_pid: int, poll: float = 0.1, grace: float = 120.0) -> None:
    """Start a daemon thread that stops this worker when its sweep's process dies (e.g.
    ``kill -9``): a run in progress is interrupted (and so checkpointed), then the process
    exits. Without it an orphan would keep training a run the resumed sweep also starts."""

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(poll)
        if _run_active.is_set():
            os.kill(os.getpid(), signal.SIGINT)
            _run_done.wait(grace)
        os._exit(0)

    threading.Thread(target=watch, name="rnnstab-parent-watch", daemon=True).start()


@contextlib.contextmanager
def _armed(handle_sigint: bool) -> Iterator[None]:
    _run_done.clear()
    _run_active.set()
    previous = signal.signal(signal.SIGINT, _interrupt_once) if handle_sigint else None
    try:
        yield
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
        _run_active.clear()
        _run_done.set()


# --------------------------------------------------------------------------------------------
# Run directories
# --------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _locked(run_dir: Path) -> Iterator[None]:
    run_dir.mkdir(parents=True, exist_ok=True)
    if fcntl is None:  # pragma: no cover - Windows
        yield
        return
    with open(run_dir / LOCK_FILE, "a") as f:
        # Blocks while another process (an orphan of a killed sweep, finishing its checkpoint)
        # holds the run; the kernel drops the lock the moment that process ends.
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def _prepare(run_dir: Path, kind: str = "synthetic") -> tuple[bool, str | None]:
    """Whether to resume the checkpoint in ``run_dir``; a damaged one is cleared (with a
    note) so that the run starts afresh rather than failing or leaving it behind."""
    for tmp in run_dir.glob(".*.tmp"):  # a write torn by kill -9; never referenced
        tmp.unlink(missing_ok=True)
    if not has_checkpoint(run_dir):
        return False, None
    try:
        if kind == "natural":
            from rnnstab_cli.training.natural.checkpoint import (
                continuable_params,
                load_natural_checkpoint,
            )

            continuable_params(load_natural_checkpoint(run_dir), run_dir)
        else:
            load_checkpoint(run_dir).check_continuable(run_dir)
    except CheckpointError as e:
        # Damaged, or a finished run's record that dropped what continuing needs (a raised
        # budget asks for more of it): a run is deterministic, so training it again from the
        # start follows the same trajectory.
        _clear(run_dir)
        return False, f"checkpoint cannot be continued, restarted: {e}"
    return True, None


def _clear(run_dir: Path) -> None:
    """Remove everything in ``run_dir`` but the run's lock."""
    for entry in run_dir.iterdir():
        if entry.name == LOCK_FILE:
            continue
        if entry.is_dir():
            shutil.rmtree(entry)
        else:
            entry.unlink(missing_ok=True)


# --------------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------------


def execute_run(
    task: RunTask, handle_sigint: bool = False, stop: StopFlag | None = None
) -> dict[str, Any]:
    """Train ``task`` to the end and describe how it ended (``outcome``: solved, unsolved,
    failed, or :data:`INTERRUPTED`). Never raises for a failing run: the sweep goes on.

    ``handle_sigint``: make SIGINT interrupt (and checkpoint) the run, for pool processes that
    otherwise ignore it. ``stop``: when set, return :data:`INTERRUPTED` without training."""
    started = utc_now()
    out: dict[str, Any] = {
        "run_id": task.run_id,
        "backend": task.backend,
        "host": socket.gethostname(),
        "library_version": __version__,
        "started": started,
        "run_dir": task.run_dir,
        "metrics_path": None,
        "updates": None,
        "wall_time": None,
        "test_error": None,
        "test_sequences": None,
        "error": None,
        "note": None,
    }
    try:
        if task.kind not in KINDS:
            raise RnnstabError(f"unknown kind of run {task.kind!r}")
        config = (
            TrainConfig.from_dict(task.config, source=f"run {task.run_id}")
            if task.kind == "synthetic"
            else None
        )
        with contextlib.ExitStack() as stack:
            resume = False
            run_dir = Path(task.run_dir) if task.run_dir is not None else None
            if run_dir is not None:
                stack.enter_context(_locked(run_dir))
                resume, out["note"] = _prepare(run_dir, task.kind)
                out["metrics_path"] = str(run_dir / "metrics.jsonl")
            stack.enter_context(_armed(handle_sigint))
            # Checked once SIGINT is armed: a stop requested before this point is seen here,
            # one requested after it arrives as SIGINT.
            if stop is not None and stop.is_set():
                raise KeyboardInterrupt
            if config is None:
                if run_dir is None:
                    raise RnnstabError("a natural run needs a run directory")
                from rnnstab_cli.training.natural.loop import run_natural_scored

                out.update(run_natural_scored(task.config, run_dir, resume))
                return out
            result = run_training(config, out_dir=run_dir, resume=resume)
    except KeyboardInterrupt:  # includes TrainingInterrupted: the checkpoint is saved
        out["outcome"] = INTERRUPTED
        return out
    except RnnstabError as e:  # diverged, refused settings, unwritable checkpoint…
        out["outcome"] = "failed"
        out["error"] = f"{type(e).__name__}: {e}"
        return out
    except Exception as e:  # noqa: BLE001 - a bug in one run must not end a 100-run sweep;
        # the row keeps the traceback's last lines so the bug can still be found and fixed.
        out["outcome"] = "failed"
        tail = "".join(traceback.format_exception(e)[-3:]).strip()
        out["error"] = f"{type(e).__name__}: {e} | {tail}"
        return out
    out.update(
        outcome="solved" if result.solved else "unsolved",
        updates=result.updates,
        wall_time=result.wall_time,
        test_error=result.test_error,
        test_sequences=result.test_sequences,
    )
    return out
