"""Showing a run's progress on stderr: a live Rich display on a terminal, an occasional plain
line otherwise (a log file, a pipe, CI), nothing with ``--quiet``.

stdout is never touched here: it belongs to the data (``--json`` lines, the final summary).
"""

from __future__ import annotations

import math
import sys
import time
from typing import TextIO

from rich.console import Console, Group
from rich.live import Live
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text

from rnnstab_cli.training.config import TrainConfig
from rnnstab_cli.training.model_settings import CLIP_RULE_PARAMS
from rnnstab_cli.training.records import ChunkReport, EvalRecord, ProgressSink

#: Seconds between plain log lines when stderr is not a terminal.
LOG_INTERVAL = 30.0


def updates_bar(console: Console) -> Progress:
    """The live bar of a run's updates: its name, the bar, done/total and elapsed time."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("updates"),
        TimeElapsedColumn(),
        console=console,
    )


def num(x: float | None, fmt: str) -> str:
    """``x`` in ``fmt``, or a dash when there is no finite value to show."""
    return "–" if x is None or not math.isfinite(x) else format(x, fmt)


def _pct(x: float | None) -> str:
    return "–" if x is None or not math.isfinite(x) else f"{100 * x:.2f}%"


def describe_test(record: EvalRecord) -> str:
    """``12.30% of 1,000 (screen)`` / ``0.41% of 10,000``."""
    kind = "" if record.test_full else " (screen)"
    return f"{_pct(record.test_error)} of {record.test_sequences:,}{kind}"


def run_title(config: TrainConfig) -> str:
    return (
        f"{config.label} len {config.length} · {config.method} · lr {config.lr:g} · "
        f"α {config.alpha:g} · clip {_clip_rule(config)}"
        + f" · {config.hidden} {config.activation} units"
    )


def _clip_rule(config: TrainConfig) -> str:
    """``norm 6``, ``none``, ``auto window=100 factor=2``: the rule and what it is given."""
    if config.clip_mode in ("norm", "value"):
        return f"{config.clip_mode} {config.clip:g}"
    params = CLIP_RULE_PARAMS.get(config.clip_mode, ())
    shown = " ".join(f"{k.removeprefix('clip_')}={getattr(config, k):g}" for k in params)
    return f"{config.clip_mode} {shown}".rstrip()


class _Rate:
    """Updates per second, smoothed over recent engine calls."""

    def __init__(self) -> None:
        self.value = math.nan

    def add(self, n: int, seconds: float) -> float:
        if seconds > 0:
            r = n / seconds
            self.value = r if math.isnan(self.value) else 0.8 * self.value + 0.2 * r
        return self.value


class RichProgress:
    """Live bar plus a statistics line, redrawn after every engine call."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self._bar = updates_bar(self.console)
        self._task: TaskID | None = None
        self._live = Live(self._bar, console=self.console, refresh_per_second=4)
        self._report: ChunkReport | None = None
        self._rate = _Rate()
        self._last: EvalRecord | None = None
        self._skip_rule = False

    def start(self, config: TrainConfig, updates: int, wall_time: float) -> None:
        self._skip_rule = config.clip_mode == "skip"
        self.console.print(f"[bold]rnnstab train[/] {run_title(config)}", highlight=False)
        if not config.length.fixed:
            self.console.print(
                f"  test lengths are drawn from the training range {config.length}",
                highlight=False,
            )
        if updates:
            self.console.print(f"  resuming at {updates:,} updates", highlight=False)
        self._task = self._bar.add_task(config.label, total=config.max_updates, completed=updates)
        self._live.start()

    def chunk(self, report: ChunkReport) -> None:
        self._rate.add(report.n, report.seconds)
        self._report = report
        if self._task is not None:
            self._bar.update(self._task, completed=report.updates)
        self._render()

    def evaluation(self, record: EvalRecord) -> None:
        self._last = record
        mark = "[green]✓ solved[/]" if record.solved else ""
        self.console.print(
            f"  eval {record.eval_index + 1:>4} @ {record.updates:>10,} updates: "
            f"test error {describe_test(record)}  ρ {num(record.spectral_radius, '.3f')}  "
            f"‖g‖ {num(record.grad_norm, '.3g')}  Ω {num(record.omega, '.4f')} {mark}",
            highlight=False,
        )
        self._render()

    def _render(self) -> None:
        r, last = self._report, self._last
        train = [
            f"{num(self._rate.value, ',.0f')} upd/s",
            f"loss {num(r.loss if r else None, '.4f')}",
            f"‖g‖ pre-clip {num(r.grad_norm if r else None, '.3g')}",
            f"clipped {_pct(r.clip_rate if r else None)}",
            f"Ω {num(r.omega if r else None, '.4f')}",
        ]
        if r is not None and r.skipped:
            # Under the skip rule most skipped updates are spikes, not non-finite gradients.
            what = "skipped" if self._skip_rule else "non-finite"
            train.append(f"[red]{r.skipped} {what}[/]")
        test = [
            f"test error {describe_test(last) if last else '–'}",
            f"ρ(W_rec) {num(last.spectral_radius if last else None, '.3f')}",
        ]
        stats = Text.from_markup("  " + " · ".join(train) + "\n  " + " · ".join(test))
        self._live.update(Group(self._bar, stats))

    def finish(self) -> None:
        self._live.stop()


class LogProgress:
    """A plain line to ``stream`` at the start, then at most one per ``interval`` seconds at an
    evaluation, and always for the evaluation that solves the task."""

    def __init__(self, stream: TextIO | None = None, interval: float = LOG_INTERVAL) -> None:
        self.stream = stream
        self.interval = interval
        self._last_line = -math.inf

    def _print(self, line: str) -> None:
        print(f"rnnstab: {line}", file=self.stream or sys.stderr, flush=True)

    def start(self, config: TrainConfig, updates: int, wall_time: float) -> None:
        where = f", resuming at {updates} updates" if updates else ""
        tested = "" if config.length.fixed else f", tested on lengths {config.length}"
        self._print(f"training {run_title(config)}{tested}{where}")
        self._last_line = time.monotonic()

    def chunk(self, report: ChunkReport) -> None:
        pass

    def evaluation(self, record: EvalRecord) -> None:
        now = time.monotonic()
        if record.solved or now - self._last_line >= self.interval:
            self._last_line = now
            rate = record.updates / record.wall_time if record.wall_time > 0 else math.nan
            self._print(
                f"{record.updates} updates ({num(rate, '.0f')}/s overall), "
                f"loss {num(record.loss, '.4f')}, test error {describe_test(record)}"
            )

    def finish(self) -> None:
        pass


def make_progress(quiet: bool = False, plain: bool = False) -> ProgressSink | None:
    """The right display for this process's stderr: none when ``quiet``; plain lines when
    ``plain`` (machine-readable runs such as ``--json`` get no decoration) or when stderr is
    not a terminal; the live Rich display otherwise."""
    if quiet:
        return None
    console = Console(stderr=True)
    return RichProgress(console) if console.is_terminal and not plain else LogProgress()
