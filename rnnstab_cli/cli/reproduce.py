"""``rnnstab reproduce``: run (or continue) the paper's experiments section by section into a
campaign directory, and write the reproduction report from that directory.

Exit codes: 0 every run of the sections is stored (or the report is written); 1 some runs
failed; 2 bad usage (unknown section, a --dir that is a file or holds something else); 4 a
damaged store or campaign file; 130 interrupted (finished runs are stored; the same command
continues, each unfinished run from its checkpoint).
"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from rnnstab_cli.cli.common import EXIT_ERROR, EXIT_INTERRUPTED, emit_json, note, note_interrupt
from rnnstab_cli.errors import UsageError
from rnnstab_cli.reproduce.sections import PAPER_SECTIONS, SECTIONS

REPRODUCE_HELP = "\n\n".join(
    [
        "Reproduce the paper's results: train every run a section's claims rest on, with the "
        "paper's settings, into a campaign directory; or write the report from one.",
        "SECTION: fig7 (temporal order, SGD / SGD-C / SGD-CR at lengths 10–200, 8 seeds), "
        "generalisation (single models for lengths 50–200, scored up to 800), tasks (the "
        "appendix's other pathological problems), music (Table 1), ptb (Table 2), clipping "
        "(beyond the paper: the adaptive clipping rules against Algorithm 1 on temporal order "
        "and addition at lengths 50–200, and each rule's sensitivity to its parameter, §3.2; "
        "435 runs of at most 200,000 updates), all, or several separated by commas "
        "(generalisation,tasks: their runs in one queue, by priority); or report, which writes "
        "DIR/README.md and its figures from DIR alone.",
        "all is the paper's sections; clipping runs only when named (all,clipping for both).",
        "Runs go one per core (--jobs), or to a Ray cluster with --backend ray. Stop at any "
        "moment (Ctrl-C, kill, even kill -9) and run the same command again: stored runs are kept, "
        "unfinished ones continue from their checkpoints. Progress shows the runs stored, the "
        "core-hours spent and an upper bound on what is left.",
        "Example: rnnstab reproduce fig7 --dir repro && rnnstab reproduce report repro",
        "Exit codes: 0 done · 1 some runs failed · 2 bad usage · 4 damaged store · "
        "130 interrupted (run the same command to continue).",
    ]
)

_CHOICES = (*SECTIONS, "all", "report")


def _hours(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "?"
    return f"{seconds / 3600:.2f}"


def reproduce_command(
    section: Annotated[
        str,
        typer.Argument(
            help=f"One of: {', '.join(_CHOICES)}; or sections separated by commas.",
            show_default=False,
        ),
    ],
    report_dir: Annotated[
        Path | None,
        typer.Argument(help="With 'report': the campaign directory.", show_default=False),
    ] = None,
    directory: Annotated[
        Path | None, typer.Option("--dir", help="The campaign directory (created if missing).")
    ] = None,
    jobs: Annotated[
        int | None,
        typer.Option("--jobs", "-j", help="Runs at a time (default: one per core)."),
    ] = None,
    backend: Annotated[str, typer.Option("--backend", help="local | ray.")] = "local",
    address: Annotated[
        str | None,
        typer.Option("--address", help="Ray cluster HOST:PORT or 'auto' (with --backend ray)."),
    ] = None,
    data: Annotated[
        Path | None,
        typer.Option(
            "--data",
            help="music, ptb: the data folder (polyphonic/, ptb_char/; default $RNNSTAB_DATA).",
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Say what is stored and what would run; run nothing.")
    ] = False,
    json_lines: Annotated[
        bool, typer.Option("--json", help="One JSON line per stored run, then a summary.")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress on stderr.")] = False,
) -> None:
    """Reproduce the paper section by section (``--help``: REPRODUCE_HELP)."""
    names = section.split(",")
    for name in names:
        if name not in _CHOICES or (len(names) > 1 and name == "report"):
            raise UsageError(
                f"unknown section {name!r}; expected one of: {', '.join(_CHOICES)} (or several "
                "sections separated by commas, e.g. generalisation,tasks)"
            )
    if section == "report":
        root = report_dir or directory
        if root is None:
            raise UsageError(
                "reproduce report needs the campaign directory: rnnstab reproduce report DIR"
            )
        if report_dir is not None and directory is not None and report_dir != directory:
            raise UsageError("give the campaign directory once, as DIR or as --dir")
        _report(root, json_lines)
        return
    if report_dir is not None:
        raise UsageError(f"unexpected argument {str(report_dir)!r}; the directory goes in --dir")
    if directory is None:
        raise UsageError("--dir is required: the campaign directory (created if missing)")
    if backend not in ("local", "ray"):
        raise UsageError(f"--backend must be local or ray, got {backend!r}")
    if address is not None and backend != "ray":
        raise UsageError("--address needs --backend ray")
    if jobs is not None and jobs < 1:
        raise UsageError(f"--jobs must be ≥ 1, got {jobs}")
    # Several sections run as one campaign: the scheduler orders all their runs by priority.
    wanted = set(names) | (set(PAPER_SECTIONS) if "all" in names else set())
    sections = [s for s in SECTIONS if s in wanted]
    _run(directory, sections, data, jobs, backend, address, dry_run, json_lines, quiet)


def _report(root: Path, json_lines: bool) -> None:
    from rnnstab_cli.reproduce.campaign import check_campaign_dir
    from rnnstab_cli.reproduce.report import write_report

    check_campaign_dir(root, create=False)
    path = write_report(root)
    if json_lines:
        emit_json({"event": "report", "path": str(path)})
    else:
        print(f"Wrote {path}", flush=True)


def _print_dry_run(
    planned: list[Any], missing: list[Any], left: float | None, spent: float, json_lines: bool
) -> None:
    """What a campaign would run, study by study (``--json``: one line per run to go, then a
    summary), and the totals."""
    from rnnstab_cli.reproduce.campaign import CampaignRun

    todo: dict[str, list[str]] = {}
    for p in missing:
        if isinstance(p, CampaignRun):
            c = p.run.config
            study, what = p.study.name, f"{c.method} len {c.length} seed {c.seed}"
            if p.study.section == "clipping":  # a rule and its parameter tell its runs apart
                what = p.run.describe()
            fields = {"task": c.task, "method": c.method, "len": str(c.length), "seed": c.seed,
                      "max_updates": c.max_updates, "clip_mode": c.clip_mode}  # fmt: skip
        else:
            study, what = p.section, p.describe()
            fields = {"task": p.preset, "method": p.method}
        todo.setdefault(study, []).append(what)
        if json_lines:
            emit_json({"event": "planned", "study": study, "run_id": p.run_id, **fields})
    summary = {
        "event": "dry-run",
        "planned": len(planned),
        "stored": len(planned) - len(missing),
        "to_run": len(missing),
        "core_hours_left_at_most": None if left is None else round(left / 3600, 3),
        "core_hours_spent": round(spent / 3600, 3),
    }
    if json_lines:
        emit_json(summary)
        return
    for study, runs in todo.items():
        print(f"  {study}: {len(runs)} to run ({', '.join(runs[:3])}{', …' * (len(runs) > 3)})")
    print(
        f"{summary['stored']} of {len(planned)} planned runs stored; {len(missing)} to run, "
        f"at most {_hours(left)} core-hours; {_hours(spent)} core-hours spent.",
        flush=True,
    )


def _run(
    root: Path,
    sections: list[str],
    data: Path | None,
    jobs: int | None,
    backend: str,
    address: str | None,
    dry_run: bool,
    json_lines: bool,
    quiet: bool,
) -> None:
    from rnnstab_cli.reproduce.campaign import (
        CAMPAIGN_FILE,
        Campaign,
        check_campaign_dir,
        plan_campaign,
        run_campaign,
    )
    from rnnstab_cli.reproduce.natural import NATURAL_STUDIES, plan_natural

    if backend == "ray":
        from rnnstab_cli.sweep.ray_backend import _import_ray

        _import_ray(private=address is None)
    if dry_run and not (root / CAMPAIGN_FILE).exists():
        check_campaign_dir(root, create=False, missing_ok=True)  # refuses a file or a stranger
        natural = plan_natural([s for s in sections if s in NATURAL_STUDIES], None)
        n = len(plan_campaign(sections, lambda section: [])) + len(natural)
        if json_lines:
            emit_json({"event": "dry-run", "planned": n, "stored": 0, "to_run": n,
                       "core_hours_left_at_most": None, "core_hours_spent": 0.0})  # fmt: skip
            return
        later = " (Fig. 7's baselines follow SGD-CR's results)" if "fig7" in sections else ""
        print(f"no campaign in {root} yet: {n} runs to plan now{later}.", flush=True)
        return
    with Campaign(
        root, sections, readonly=dry_run, data=None if data is None else str(data)
    ) as campaign:
        if dry_run:
            planned = [*campaign.replan(), *campaign._natural]
            to_run = [*campaign.missing(), *campaign.missing_natural()]
            left = campaign.estimate_left()
            _print_dry_run(planned, to_run, left, campaign.core_seconds(), json_lines)
            return
        display = _Display(quiet or json_lines, json_lines)
        progress = run_campaign(
            campaign,
            backend=backend,
            jobs=jobs,
            address=address,
            on_start=display.start,
            on_run=display.run,
        )
        display.finish()
        missing = len(campaign.missing()) + len(campaign.missing_natural())
        spent = campaign.core_seconds()
        failed = progress.failed
        # Natural-task runs are neither solved nor unsolved: they train until their budget or
        # early stopping ends them.
        trained = progress.ran - progress.solved - progress.unsolved - failed
    for text in progress.notes[:-1]:
        note(f"note: {text}")
    summary: dict[str, Any] = {
        "event": "reproduce",
        "sections": sections,
        "dir": str(root),
        "stored_before": progress.stored_before,
        "ran": progress.ran,
        "solved": progress.solved,
        "unsolved": progress.unsolved,
        "trained": trained,
        "failed": failed,
        "missing": missing,
        "core_hours": round(spent / 3600, 3),
        "interrupted": progress.interrupted,
    }
    if json_lines:
        emit_json(summary)
    else:
        print(
            f"reproduce {', '.join(sections)}: {progress.ran} runs stored now "
            f"({progress.solved} solved, {progress.unsolved} unsolved, "
            + (f"{trained} trained to their budget or early stop, " if trained else "")
            + f"{failed} failed), "
            f"{missing} still to run; {_hours(spent)} core-hours in all. "
            f"Report: rnnstab reproduce report {root}",
            flush=True,
        )
    if progress.interrupted:
        note_interrupt(
            f"Interrupted: finished runs are stored in {root}, unfinished ones checkpointed; "
            "run the same command to continue."
        )
        raise typer.Exit(EXIT_INTERRUPTED)
    if failed:
        raise typer.Exit(EXIT_ERROR)


class _Display:
    """Progress on stderr: a live line on a terminal, a plain line per stored run elsewhere
    (a log file of a campaign in the background), nothing with --quiet or --json."""

    def __init__(self, quiet: bool, json_lines: bool) -> None:
        self.quiet = quiet
        self.json_lines = json_lines
        self.campaign: Any = None
        self.bar: Any = None
        self.task: Any = None

    def _status(self) -> tuple[int, int, float, float | None]:
        c = self.campaign
        planned = len(c._planned) + len(c._natural)
        done = planned - len(c.missing()) - len(c.missing_natural()) - len(c._in_flight)
        return done, planned, c.core_seconds(), c.estimate_left()

    def start(self, campaign: Any) -> None:
        self.campaign = campaign
        if self.quiet:
            return
        done, planned, spent, left = self._status()
        note(
            f"rnnstab reproduce {', '.join(campaign.all_sections)} in {campaign.root}: {done} of "
            f"{planned} planned runs stored, {_hours(spent)} core-hours spent, at most "
            f"{_hours(left)} core-hours left"
        )
        if sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

            self.bar = Progress(
                TextColumn("[bold]reproduce"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn(
                    "runs · {task.fields[hours]} core-h · ≤ {task.fields[left]} core-h left"
                ),
                console=Console(stderr=True, highlight=False),
                refresh_per_second=1,
            )
            self.task = self.bar.add_task(
                "", total=planned, completed=done, hours=_hours(spent), left=_hours(left)
            )
            self.bar.start()

    def run(self, p: Any, row: dict[str, Any]) -> None:
        from rnnstab_cli.reproduce.natural import NaturalPlanned

        natural = isinstance(p, NaturalPlanned)
        name = p.preset if natural else p.study.name
        what = p.method if natural else p.run.describe()
        if self.json_lines:
            emit_json(
                {
                    "event": "run",
                    "study": name,
                    "run_id": p.run_id,
                    "point": {"method": p.method} if natural else dict(p.run.point),
                    "outcome": row["outcome"],
                    "updates": row["updates"],
                    "wall_time": row["wall_time"],
                    "test_error": row.get("test_error"),
                    "test": row.get("test"),
                    "run_dir": row["run_dir"],
                }
            )
            return
        if self.quiet:
            return
        done, planned, spent, left = self._status()
        line = (
            f"{row['outcome']:>8} {name} {what}: "
            f"{row['updates'] or 0:,} updates, {(row['wall_time'] or 0):.0f} s · "
            f"{done}/{planned} runs, {_hours(spent)} core-h, ≤ {_hours(left)} core-h left"
        )
        if self.bar is not None:
            self.bar.console.print(line)
            self.bar.update(
                self.task, total=planned, completed=done, hours=_hours(spent), left=_hours(left)
            )
        else:
            note(line)

    def finish(self) -> None:
        if self.bar is not None:
            self.bar.stop()
