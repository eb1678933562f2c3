"""Running a sweep on a Ray cluster: each run one Ray task (``num_cpus=1``), results stored by
the driver (this process) as they arrive, into the same store as a local sweep.

``address=None`` starts a private single-node Ray instance bound to 127.0.0.1 with ``jobs``
CPUs and no dashboard (and stops it at the end); ``"auto"`` or ``HOST:PORT`` joins a running
cluster (``ray start --head``) and leaves it running.

Workers import ``rnnstab_cli`` themselves, so every node needs rnnstab installed (the same
version: run ids are computed by the driver, results by the workers). Checkpoint directories
(``--runs-dir``) must be on storage every node sees at the same path; without one a run
interrupted on a cluster restarts from scratch.

If the driver is interrupted, its pending tasks are cancelled (running ones get
KeyboardInterrupt and checkpoint); if it is killed, Ray ends the job's tasks when it notices
the driver is gone.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from typing import Any, Final

from rnnstab_cli.errors import UsageError
from rnnstab_cli.sweep.local import TaskSource, next_task_of
from rnnstab_cli.sweep.worker import RunTask, execute_run

__all__ = ["INSTALL_HINT", "ray_available", "run_ray"]

INSTALL_HINT: Final[str] = "pip install 'rnnstab[ray]'"
#: Seconds ray.wait blocks before checking again (keeps Ctrl-C responsive in the driver).
_WAIT_POLL: Final[float] = 1.0
#: Retries of a task whose worker process died (node lost, OOM kill); a run that raises is
#: not retried: execute_run never raises for a failing run, it reports it.
_MAX_RETRIES: Final[int] = 2


def ray_available() -> bool:
    try:
        import ray  # noqa: F401
    except ImportError:
        return False
    return True


#: Environment for a private single-node Ray, set before Ray is imported (its constants are
#: read at import) and inherited by the processes it starts:
#: - RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 makes Ray treat the node as a non-cluster and use the
#:   loopback address for it, so the GCS, raylet, agents and workers listen on 127.0.0.1 only
#:   (with only ``_node_ip_address`` they still listen on every interface);
#: - RAY_USAGE_STATS_ENABLED=0: a private instance reports nothing over the network.
LOOPBACK_ENV: Final[dict[str, str]] = {
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
    "RAY_USAGE_STATS_ENABLED": "0",
}


def _import_ray(private: bool = False) -> Any:
    """Import Ray (UsageError with the install hint if missing). ``private``: prepare the
    environment for a private loopback instance first (see :data:`LOOPBACK_ENV`)."""
    if private:
        for key, value in LOOPBACK_ENV.items():
            os.environ.setdefault(key, value)
    try:
        import ray
    except ImportError:
        raise UsageError(f"--backend ray needs Ray: {INSTALL_HINT}") from None
    if private:
        # Ray may have been imported earlier in this process (a notebook, a test session),
        # before the variable was set; its constant is then corrected in place.
        constants = getattr(getattr(ray, "_private", None), "ray_constants", None)
        if constants is not None and getattr(constants, "ENABLE_RAY_CLUSTER", False):
            constants.ENABLE_RAY_CLUSTER = False
    return ray


@contextlib.contextmanager
def ray_session(address: str | None, jobs: int) -> Iterator[Any]:
    """Connect to (``address``) or start (``None``) Ray; disconnect / stop it afterwards."""
    ray = _import_ray(private=address is None)
    if ray.is_initialized():  # e.g. a test or notebook that set it up already
        yield ray
        return
    kwargs: dict[str, Any] = {
        "include_dashboard": False,
        "log_to_driver": False,  # worker output is not the sweep's data; keep stdout clean
        "configure_logging": False,
    }
    if address is None:
        kwargs |= {"num_cpus": jobs, "_node_ip_address": "127.0.0.1"}
    else:
        kwargs["address"] = address
    try:
        ray.init(**kwargs)
    except ConnectionError as e:
        raise UsageError(f"cannot connect to the Ray cluster at {address!r}: {e}") from None
    try:
        yield ray
    finally:
        ray.shutdown()


def run_ray(
    tasks: TaskSource,
    on_result: Callable[[dict[str, Any]], None],
    *,
    address: str | None,
    jobs: int,
) -> None:
    """Run ``tasks`` as Ray tasks; ``on_result`` gets each result in this thread as it ends.
    A fixed list is submitted at once (the cluster schedules it); a function source is asked
    for one run per free slot of ``jobs`` (on a cluster: its CPUs), again after each result.
    Raises KeyboardInterrupt after Ctrl-C, once pending tasks are cancelled."""
    if not callable(tasks) and not tasks:
        return
    limit = jobs if callable(tasks) else len(tasks)
    next_task = next_task_of(tasks)
    with ray_session(address, jobs) as ray:
        remote = ray.remote(num_cpus=1, max_retries=_MAX_RETRIES)(execute_run)
        pending: dict[Any, RunTask] = {}

        def fill() -> None:
            while len(pending) < limit:
                task = next_task()
                if task is None:
                    return
                pending[remote.remote(task)] = task

        try:
            fill()
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1, timeout=_WAIT_POLL)
                for ref in done:
                    task = pending.pop(ref)
                    on_result(_get(ray, ref, task))
                fill()
        except KeyboardInterrupt:
            for ref in pending:
                ray.cancel(ref)
            raise


def _get(ray: Any, ref: Any, task: RunTask) -> dict[str, Any]:
    """A task's result; a task that Ray itself could not complete (worker lost beyond the
    retries) becomes a failed run so the sweep can go on and ``--retry-failed`` can redo it."""
    try:
        result: dict[str, Any] = ray.get(ref)
        return result
    except ray.exceptions.RayError as e:
        from rnnstab_cli.sweep.store import utc_now

        return {
            "run_id": task.run_id,
            "backend": task.backend,
            "outcome": "failed",
            "error": f"{type(e).__name__}: {' '.join(str(e).split())[:500]}",
            "run_dir": task.run_dir,
            "started": utc_now(),
        }
