"""The sweep's live display on stderr: runs done / total, solved so far, elapsed and ETA, and a
line per finished run. Only on a terminal: a pipe, a log file or ``--json`` get nothing here
(stdout keeps the data; the final summary is printed by the command)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from rnnstab_cli.sweep.run import SweepProgress
from rnnstab_cli.sweep.spec import PlannedRun

__all__ = ["RichSweepProgress", "duration", "make_sweep_progress"]

_MARKS = {"solved": "[green]✓ solved  [/]", "unsolved": "[yellow]✗ unsolved[/]"}  # same width


def duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "–"
    if seconds < 60:
        return f"{seconds:.1f}s"
    m, s = divmod(round(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}h {m:02d}m {s:02d}s" if h else f"{m}m {s:02d}s"


class RichSweepProgress:
    """A Rich progress bar over the grid; ETA from this session's pace."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True, highlight=False)
        self._bar = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("runs · [green]{task.fields[solved]} solved[/]{task.fields[failed]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=self.console,
            refresh_per_second=2,
        )
        self._task: TaskID | None = None
        self._solved = 0
        self._failed = 0

    def start(self, name: str, total: int, stored: int, todo: int, jobs: int) -> None:
        already = f", {stored} already stored" if stored else ""
        self.console.print(
            f"[bold]rnnstab sweep[/] {name}: {total} runs{already}, {todo} to run on {jobs} "
            f"worker{'s' if jobs != 1 else ''}"
        )
        self._task = self._bar.add_task(name, total=total, completed=stored, solved=0, failed="")
        self._bar.start()

    def run_finished(self, run: PlannedRun, row: Mapping[str, Any]) -> None:
        outcome = row["outcome"]
        if outcome == "solved":
            self._solved += 1
        if outcome == "failed":
            self._failed += 1
            detail = f"[red]{row.get('error') or ''}[/]"
        else:
            err = row.get("test_error")
            shown = "–" if err is None else f"{100 * err:.2f}%"
            detail = (
                f"{row.get('updates') or 0:>7,} upd · error {shown:>6} · "
                f"{duration(row.get('wall_time') or math.nan)}"
            )
        mark = _MARKS.get(outcome, "[red]! failed  [/]")
        self.console.print(f"{mark} {run.describe()}  {detail}")
        if self._task is not None:
            failed = f" · [red]{self._failed} failed[/]" if self._failed else ""
            self._bar.update(self._task, advance=1, solved=self._solved, failed=failed)

    def finish(self) -> None:
        self._bar.stop()


def make_sweep_progress(quiet: bool = False) -> SweepProgress | None:
    """The live display when stderr is a terminal and not ``quiet``; otherwise nothing."""
    if quiet:
        return None
    console = Console(stderr=True, highlight=False)
    return RichSweepProgress(console) if console.is_terminal else None
