"""Running a sweep's runs in parallel on this machine: one worker process per job.

Threads or processes? Both give the same throughput for the paper's runs (a run spends ~90% of
its time inside the engine's update calls, which release the GIL; measured in
``docs/decisions/sweep-workers-processes.md``).

With throughput a tie, processes win on what a long sweep needs: Ctrl-C interrupts (and
checkpoints) a run only in a process's main thread — a run in a worker thread cannot be
stopped, so a Ctrl-C'd thread sweep would wait for every running run to finish — and a run
that crashes in native code or runs out of memory takes down its own worker, not the sweep.

The pool uses the ``spawn`` start method: the driver process holds a SQLite connection, Rich's
live display and, with the engine loaded, Rayon's thread pool, none of which survives a fork
safely. Workers start once per sweep, in parallel, so spawn's start-up cost (about a second) is
paid once.

Interruption: Ctrl-C (SIGINT to the whole process group from a terminal, or to the driver
alone) stops queued runs, forwards SIGINT to the workers so that every running run saves its
checkpoint, stores whatever finished meanwhile and re-raises KeyboardInterrupt. If the driver
is killed outright, each worker notices its parent is gone, checkpoints and exits
(:func:`~rnnstab_cli.sweep.worker.watch_parent`).
"""

from __future__ import annotations

import functools
import multiprocessing
import os
import signal
from collections.abc import Callable, Sequence
from concurrent.futures import (
    FIRST_COMPLETED,
    Executor,
    Future,
    ProcessPoolExecutor,
    ThreadPoolExecutor,
    wait,
)
from concurrent.futures.process import BrokenProcessPool
from multiprocessing.synchronize import Event as EventType
from typing import Any, Final, Literal

from rnnstab_cli.errors import RnnstabError
from rnnstab_cli.sweep.worker import RunTask, execute_run, install_worker_signals, watch_parent

__all__ = [
    "INTERRUPT_GRACE",
    "ExecutorKind",
    "TaskSource",
    "WorkerDied",
    "default_jobs",
    "next_task_of",
    "run_local",
]

ExecutorKind = Literal["process", "thread"]

#: Where a backend takes its runs from: a fixed list, or a function asked for the next run
#: each time a worker is free, which returns None when nothing is ready *now* (a campaign whose
#: later runs depend on results still to come). The backend stops once nothing runs and the
#: source has nothing.
TaskSource = Sequence[RunTask] | Callable[[], RunTask | None]

#: Seconds to wait, after Ctrl-C, for running runs to save their checkpoints.
INTERRUPT_GRACE: Final[float] = 60.0

OnResult = Callable[[dict[str, Any]], None]

_CONTEXT: Final = multiprocessing.get_context("spawn")


class WorkerDied(RnnstabError):
    """A worker process ended abruptly (killed, out of memory, crashed in native code)."""

    exit_code = 1


def default_jobs() -> int:
    """The cores this process may use (its CPU affinity where the OS has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - macOS, Windows
        return max(1, os.cpu_count() or 1)


#: In a worker process: set by the driver on Ctrl-C, so that a task the pool had already
#: queued to this worker returns at once instead of starting a whole run.
_stop_event: EventType | None = None


def _init_process(parent_pid: int, stop: EventType) -> None:
    global _stop_event
    _stop_event = stop
    install_worker_signals()
    watch_parent(parent_pid)


def _execute_in_process(task: RunTask) -> dict[str, Any]:
    return execute_run(task, handle_sigint=True, stop=_stop_event)


def _make_executor(kind: ExecutorKind, jobs: int, stop: EventType) -> Executor:
    if kind == "thread":
        return ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="rnnstab-run")
    return ProcessPoolExecutor(
        max_workers=jobs,
        mp_context=_CONTEXT,
        initializer=_init_process,
        initargs=(os.getpid(), stop),
    )


def next_task_of(tasks: TaskSource) -> Callable[[], RunTask | None]:
    """The source as a function: a list is handed out in order, then None."""
    if callable(tasks):
        return tasks
    it = iter(tasks)
    return lambda: next(it, None)


def run_local(
    tasks: TaskSource,
    on_result: OnResult,
    *,
    jobs: int,
    executor: ExecutorKind = "process",
) -> None:
    """Run ``tasks`` on ``jobs`` workers, calling ``on_result`` (in this thread) with each
    finished run's result dict as soon as it ends. Tasks start in the order the source gives
    them; a function source is asked again after every result.

    Raises KeyboardInterrupt after a Ctrl-C (once the running runs have checkpointed and the
    finished ones were passed to ``on_result``) and :class:`WorkerDied` if a worker process
    died; results delivered before either remain delivered.
    """
    if not callable(tasks):
        if not tasks:
            return
        jobs = min(jobs, len(tasks))
    jobs = max(1, jobs)
    next_task = next_task_of(tasks)
    first = next_task()
    if first is None:
        return
    stop = _CONTEXT.Event()
    pool = _make_executor(executor, jobs, stop)
    call = (
        _execute_in_process
        if executor == "process"
        # Threads: SIGINT reaches only the main thread, so a run already started in a worker
        # thread cannot be interrupted; the stop flag only keeps queued ones from starting.
        else functools.partial(execute_run, stop=stop)
    )
    # Futures whose result has not been handed to on_result yet, including a finished one
    # whose on_result a Ctrl-C cut short (its store transaction rolled back; stored again
    # below, or found already stored and skipped).
    outstanding: set[Future[dict[str, Any]]] = set()
    pending: RunTask | None = first

    def fill() -> None:
        # At most ``jobs`` runs handed to the pool: a function source decides each next run
        # with the results known by then.
        nonlocal pending
        while len(outstanding) < jobs:
            task = pending if pending is not None else next_task()
            pending = None
            if task is None:
                return
            outstanding.add(pool.submit(call, task))

    try:
        fill()
        while outstanding:
            done, _ = wait(outstanding, return_when=FIRST_COMPLETED)
            for fut in done:
                on_result(_result_of(fut))
                outstanding.discard(fut)
            fill()
    except KeyboardInterrupt:
        stop.set()
        _stop(outstanding, on_result)
        # Whatever still runs after the grace period (or a second Ctrl-C) is ended; its last
        # checkpoint is intact (written atomically), so the next sweep resumes from there.
        for child in multiprocessing.active_children():
            child.terminate()
        raise
    finally:
        for fut in outstanding:
            fut.cancel()
        pool.shutdown(wait=True, cancel_futures=True)


def _result_of(fut: Future[dict[str, Any]]) -> dict[str, Any]:
    try:
        return fut.result()
    except BrokenProcessPool as e:
        raise WorkerDied(
            "a worker process died (killed, out of memory, or crashed); the finished runs are "
            "stored, run the same command again to continue"
        ) from e


def _stop(outstanding: set[Future[dict[str, Any]]], on_result: OnResult) -> None:
    """After Ctrl-C: cancel what has not started, interrupt what has, keep what finishes."""
    for fut in outstanding:
        fut.cancel()
    # The children of a terminal's process group already got SIGINT; a driver interrupted
    # alone (kill -INT, a job scheduler) must pass it on. Workers ignore a second one.
    for child in multiprocessing.active_children():
        try:
            os.kill(child.pid or 0, signal.SIGINT)
        except ProcessLookupError:
            pass
    running = {f for f in outstanding if not f.cancelled()}
    while running:
        try:
            done, running = wait(running, timeout=INTERRUPT_GRACE)
        except KeyboardInterrupt:  # a second Ctrl-C: stop waiting, checkpoints are atomic
            return
        if not done:
            return
        for fut in done:
            try:
                result = fut.result()
            except (BrokenProcessPool, KeyboardInterrupt):
                continue
            on_result(result)
