"""What ``rnnstab sweep`` does once its options are parsed (cli/sweep.py defines them): plan
the grid, run what the store lacks on the local pool or Ray, and summarise.
"""

from __future__ import annotations

import os
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from rnnstab_cli.cli.common import (
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_OK,
    emit_json,
    note,
    note_interrupt,
)
from rnnstab_cli.engine import MAX_THREADS
from rnnstab_cli.errors import UsageError
from rnnstab_cli.sweep.progress import duration, make_sweep_progress
from rnnstab_cli.sweep.run import (
    BACKENDS,
    SweepPlan,
    SweepSummary,
    default_runs_dir,
    plan_sweep,
    run_sweep,
)
from rnnstab_cli.sweep.store import ResultStore


def _summary_text(s: SweepSummary) -> str:
    lines = []
    head = f"{s.name}: {s.total} runs"
    now = f"{s.ran} finished now ({s.solved} solved, {s.unsolved} unsolved, {s.failed} failed)"
    before = f", {s.stored_before} stored before" if s.stored_before else ""
    meanwhile = (
        f", {s.stored_meanwhile} stored meanwhile by another sweep on the same store (its "
        "results were kept)"
        if s.stored_meanwhile
        else ""
    )
    lines.append(f"{head}; {now}{before}{meanwhile}; {duration(s.seconds)}.")
    if s.ran == 0 and not s.stored_meanwhile and not s.interrupted and not s.missing:
        lines.append(f"Nothing to run: all {s.total} runs were already in the store.")
    if s.failed_total:
        lines.append(
            f"{s.failed_total} run{'s' if s.failed_total != 1 else ''} failed; see "
            f"`rnnstab report {s.store} --runs --where outcome=failed`, rerun with --retry-failed."
        )
    if not s.missing:
        lines.append(
            f"Store: {s.store} (rnnstab report {s.store} · rnnstab plot {s.store} -o F.png)"
        )
    return "\n".join(lines)


def _dry_run(plan: SweepPlan, store: Path, json_lines: bool) -> None:
    stored: dict[str, str] = {}
    if store.is_file():
        with ResultStore.open_readonly(store) as st:
            stored = st.stored_outcomes([r.run_id for r in plan.runs])
    if json_lines:
        for r in plan.runs:
            emit_json(
                {
                    "event": "planned",
                    "run_id": r.run_id,
                    "point": dict(r.point),
                    "stored": stored.get(r.run_id),
                    "config": r.config.to_dict(),
                }
            )
        return
    table = Table(
        title=f"{plan.spec.name}: {len(plan.runs)} runs, {len(stored)} already in {store}",
        title_justify="left",
    )
    table.add_column("run id")
    for k in plan.spec.axes:
        table.add_column(k, justify="right")
    table.add_column("stored")
    for r in plan.runs:
        table.add_row(r.run_id, *(str(v) for v in r.point.values()), stored.get(r.run_id, ""))
    console = Console(highlight=False)
    if not console.is_terminal:
        console = Console(highlight=False, width=120)
    console.print(table)


def run_sweep_command(
    *,
    spec: Path,
    store: Path,
    axes: list[str] | None,
    settings: list[str] | None,
    jobs: int | None,
    backend: str,
    address: str | None,
    runs_dir: Path | None,
    no_runs_dir: bool,
    retry_failed: bool,
    dry_run: bool,
    json_lines: bool,
    quiet: bool,
) -> None:
    """What `rnnstab sweep` does with its parsed options."""
    if backend not in BACKENDS:
        raise UsageError(f"--backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if address is not None and backend != "ray":
        raise UsageError("--address needs --backend ray")
    if jobs is not None and jobs < 1:
        raise UsageError(f"--jobs must be ≥ 1, got {jobs}")
    if runs_dir is not None and no_runs_dir:
        raise UsageError("--runs-dir and --no-runs-dir contradict each other")
    if backend == "ray":
        from rnnstab_cli.sweep.ray_backend import _import_ray

        _import_ray(private=address is None)  # the install hint before any work
    # The whole grid is resolved (and every run validated) here, before anything starts.
    plan = plan_sweep(spec, axes=axes or [], settings=settings or [])
    if dry_run:
        _dry_run(plan, store, json_lines)
        return
    if no_runs_dir:
        rdir = None
    elif runs_dir is not None:
        rdir = runs_dir
    else:
        # A cluster's workers may not share this disk; checkpoints there need an explicit,
        # shared --runs-dir.
        rdir = default_runs_dir(store) if backend == "local" else None
    if rdir is not None and backend == "local":
        # Said once here, not as a failure of every run.
        try:
            Path(rdir).mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise UsageError(f"cannot create --runs-dir {str(rdir)!r}: {e.strerror or e}") from None
    if backend == "local" and jobs is not None and jobs > MAX_THREADS:
        # Each job is a process with its own engine; thousands would exhaust the machine.
        raise UsageError(f"--jobs must be at most {MAX_THREADS} on the local backend, got {jobs}")
    if backend == "local" and jobs is not None and jobs > (os.cpu_count() or 1):
        note(
            f"note: --jobs {jobs} is more than the {os.cpu_count() or 1} cores here; runs will "
            "share cores and each will be slower"
        )

    summary = run_sweep(
        plan,
        store,
        backend=backend,  # type: ignore[arg-type]  # checked against the Literal above
        jobs=jobs,
        address=address,
        runs_dir=rdir,
        retry_failed=retry_failed,
        on_run=emit_json if json_lines else None,
        progress=make_sweep_progress(quiet or json_lines),
    )
    for n in summary.notes:
        note(f"note: {n}")
    if json_lines:
        emit_json(summary.to_json())
    else:
        print(_summary_text(summary), flush=True)
    if summary.interrupted:
        note_interrupt(
            f"Interrupted: {summary.total - summary.missing} of {summary.total} runs stored, "
            f"{summary.missing} to go; run the same command to continue."
        )
        raise typer.Exit(EXIT_INTERRUPTED)
    raise typer.Exit(EXIT_ERROR if summary.failed_total else EXIT_OK)
