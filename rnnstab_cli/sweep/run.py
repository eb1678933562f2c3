"""Driving a sweep: plan the grid, skip what the store already holds, run the rest on a
backend, store each run the moment it finishes.

    plan = plan_sweep("fig7-small", settings=["max_updates=2000"])  # or a spec file
    summary = run_sweep(plan, "results.db", jobs=2)

Resuming is the same call: the planned run ids are compared with the stored ones and only the
missing runs start, each continuing from its checkpoint in the runs directory when it has one.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal, Protocol

from rnnstab_cli.errors import UsageError
from rnnstab_cli.sweep.local import default_jobs, run_local
from rnnstab_cli.sweep.spec import (
    PlannedRun,
    SweepSpec,
    apply_overrides,
    canonical_json,
    expand,
    load_spec,
)
from rnnstab_cli.sweep.store import ResultStore, utc_now
from rnnstab_cli.sweep.worker import INTERRUPTED, RunTask

__all__ = [
    "BACKENDS",
    "Backend",
    "SweepPlan",
    "SweepProgress",
    "SweepSummary",
    "default_runs_dir",
    "plan_sweep",
    "run_sweep",
]

Backend = Literal["local", "ray"]
BACKENDS: Final[tuple[str, ...]] = ("local", "ray")


@dataclass(frozen=True)
class SweepPlan:
    spec: SweepSpec
    runs: list[PlannedRun]

    @property
    def sweep_id(self) -> str:
        """Hash of what defines the grid (not the file's path or description), so the same
        spec resumed from elsewhere is the same sweep."""
        d = self.spec.to_json()
        key = {k: d[k] for k in ("name", "preset", "base", "axes")}
        return hashlib.sha256(canonical_json(key).encode()).hexdigest()[:16]


def plan_sweep(
    spec_path: str | Path, *, axes: Sequence[str] = (), settings: Sequence[str] = ()
) -> SweepPlan:
    """Read, override and expand a spec; every run is resolved and validated here."""
    spec = apply_overrides(load_spec(spec_path), axes=axes, settings=settings)
    return SweepPlan(spec, expand(spec))


def default_runs_dir(store: str | Path) -> Path:
    """``results.db`` → ``results.runs/`` beside it."""
    p = Path(store)
    return p.with_name(p.stem + ".runs")


class SweepProgress(Protocol):
    def start(self, name: str, total: int, stored: int, todo: int, jobs: int) -> None: ...

    def run_finished(self, run: PlannedRun, row: Mapping[str, Any]) -> None: ...

    def finish(self) -> None: ...


@dataclass
class SweepSummary:
    """How a sweep invocation ended."""

    name: str
    sweep_id: str
    store: str
    total: int  # runs in the grid
    stored_before: int  # already in the store when this invocation began
    ran: int = 0  # stored by this invocation
    stored_meanwhile: int = 0  # finished here but stored first by a concurrent sweep
    solved: int = 0  # of ``ran``
    unsolved: int = 0
    failed: int = 0
    failed_total: int = 0  # failed rows of this grid now in the store
    missing: int = 0  # grid runs not in the store at the end
    interrupted: bool = False
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "event": "sweep",
            "name": self.name,
            "sweep_id": self.sweep_id,
            "store": self.store,
            "total": self.total,
            "stored_before": self.stored_before,
            "ran": self.ran,
            "stored_meanwhile": self.stored_meanwhile,
            "solved": self.solved,
            "unsolved": self.unsolved,
            "failed": self.failed,
            "failed_total": self.failed_total,
            "missing": self.missing,
            "interrupted": self.interrupted,
            "seconds": round(self.seconds, 3),
        }


def _cost(run: PlannedRun) -> float:
    """Rough relative cost of a run: updates × steps × hidden² (the recurrent product)."""
    c = run.config
    return c.max_updates * (c.length.lo + c.length.hi) / 2 * c.hidden * (c.hidden + 1)


#: What a worker reports that goes into the store row as is.
_WORKER_FIELDS: Final[tuple[str, ...]] = (
    "outcome", "updates", "wall_time", "test_error", "test_sequences", "error", "run_dir",
    "metrics_path", "backend", "host", "library_version", "started",
)  # fmt: skip


def run_row(run: PlannedRun, result: Mapping[str, Any]) -> dict[str, Any]:
    """The store row of a finished run: its planned config plus what the worker reported."""
    c = run.config
    return {
        **{k: result.get(k) for k in _WORKER_FIELDS},
        "run_id": run.run_id,
        "config": c.to_dict(),
        "task": c.label,
        "method": c.method,
        "len": str(c.length),
        "seed": c.seed,
        "finished": utc_now(),
    }


def run_json(run: PlannedRun, row: Mapping[str, Any], done: int, total: int) -> dict[str, Any]:
    """The ``--json`` line of a finished run."""
    return {
        "event": "run",
        "run_id": run.run_id,
        "point": dict(run.point),
        "outcome": row["outcome"],
        "solved": row["outcome"] == "solved",
        "updates": row["updates"],
        "wall_time": None if row["wall_time"] is None else round(row["wall_time"], 3),
        "test_error": row["test_error"],
        "test_sequences": row["test_sequences"],
        "error": row["error"],
        "run_dir": row["run_dir"],
        "done": done,
        "total": total,
    }


def run_sweep(
    plan: SweepPlan,
    store_path: str | Path,
    *,
    backend: Backend = "local",
    jobs: int | None = None,
    address: str | None = None,
    runs_dir: str | Path | None = None,
    retry_failed: bool = False,
    on_run: Callable[[dict[str, Any]], None] | None = None,
    progress: SweepProgress | None = None,
) -> SweepSummary:
    """Run every grid run of ``plan`` that ``store_path`` does not hold yet.

    ``runs_dir``: keep each run's checkpoint in ``runs_dir/<run id>`` (resumed if present).
    ``on_run`` gets each stored run's ``--json`` record. KeyboardInterrupt is not propagated:
    the summary says ``interrupted`` and how many runs are still missing.
    """
    if backend not in BACKENDS:
        raise UsageError(f"unknown backend {backend!r}; expected one of: {', '.join(BACKENDS)}")
    jobs = jobs if jobs is not None else default_jobs()
    if jobs < 1:
        raise UsageError(f"--jobs must be ≥ 1, got {jobs}")
    if backend == "ray":
        from rnnstab_cli.sweep.ray_backend import _import_ray

        _import_ray(private=address is None)  # fail before touching the store if missing
    t0 = time.perf_counter()
    runs_by_id = {r.run_id: r for r in plan.runs}
    with ResultStore.open(store_path) as store:
        store.register_sweep(
            plan.sweep_id,
            plan.spec.name,
            plan.spec.to_json(),
            [(r.run_id, r.index, r.point) for r in plan.runs],
        )
        if retry_failed:
            failed = [
                r for r, o in store.stored_outcomes(list(runs_by_id)).items() if o == "failed"
            ]
            store.delete_failed(failed)
        stored = store.stored_outcomes(list(runs_by_id))
        todo = sorted(
            (r for r in plan.runs if r.run_id not in stored),
            key=lambda r: (-_cost(r), r.index),  # longest first: fewer idle cores at the end
        )
        summary = SweepSummary(
            name=plan.spec.name,
            sweep_id=plan.sweep_id,
            store=str(store_path),
            total=len(plan.runs),
            stored_before=len(stored),
        )
        backend_name = "ray" if backend == "ray" else "local-process"
        rdir = Path(runs_dir) if runs_dir is not None else None
        tasks = [
            RunTask(
                r.run_id,
                r.config.to_dict(),
                str((rdir / r.run_id).resolve()) if rdir is not None else None,
                backend_name,
            )
            for r in todo
        ]

        def on_result(result: dict[str, Any]) -> None:
            if result["outcome"] == INTERRUPTED:
                return  # not finished: it stays missing and resumes next time
            run = runs_by_id[result["run_id"]]
            row = run_row(run, result)
            if not store.record_run(row):
                summary.stored_meanwhile += 1  # a concurrent sweep on the same store was first
                return
            summary.ran += 1
            setattr(summary, row["outcome"], getattr(summary, row["outcome"]) + 1)
            if result.get("note"):
                summary.notes.append(f"run {run.run_id} ({run.describe()}): {result['note']}")
            if progress is not None:
                progress.run_finished(run, row)
            if on_run is not None:
                on_run(run_json(run, row, summary.stored_before + summary.ran, summary.total))

        if progress is not None:
            progress.start(plan.spec.name, len(plan.runs), len(stored), len(tasks), jobs)
        try:
            if backend == "ray":
                from rnnstab_cli.sweep.ray_backend import run_ray

                run_ray(tasks, on_result, address=address, jobs=jobs)
            else:
                run_local(tasks, on_result, jobs=jobs)
        except KeyboardInterrupt:
            summary.interrupted = True
        finally:
            if progress is not None:
                progress.finish()
        final = store.stored_outcomes(list(runs_by_id))
    summary.missing = len(plan.runs) - len(final)
    summary.failed_total = sum(1 for o in final.values() if o == "failed")
    summary.seconds = time.perf_counter() - t0
    return summary
