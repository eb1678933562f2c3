"""``rnnstab sweep``: run a grid of training runs from a TOML spec into a result store,
in parallel, resumably.

Exit codes: 0 every run of the grid is stored; 1 some runs failed (kept in the store with their
error; ``--retry-failed`` runs them again) or a worker died; 2 bad usage or a bad spec (nothing
has run); 4 the store is not usable; 130 interrupted (finished runs are stored; the same
command continues).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

# What the command does lives in cli/sweep_run.py, imported when it runs, so that defining the
# options (and `rnnstab --help`) needs neither numpy nor the engine.

SWEEP_HELP = "\n\n".join(
    [
        "Run a grid of training runs (a TOML spec) into an SQLite result store.",
        # Brackets escaped: the rich help formatter reads "[base]" as a style tag.
        "The spec names a preset, optional \\[base] settings and \\[axes], each a list or an "
        "integer range 'A..B' (both ends included); the grid is their full product. SPEC is a "
        "file, or the name of a spec shipped with rnnstab (listed by `rnnstab tasks`). Every "
        "run is validated like `rnnstab train` before any starts.",
        "Runs execute in parallel, one per core (--jobs), single-threaded unless the spec sets "
        "threads. Each finished run is stored at once; run the same command again after an "
        "interruption (Ctrl-C, kill) and only the missing runs start, each from its last "
        "checkpoint in --runs-dir.",
        "Example: rnnstab sweep fig7-small --store fig7.db --axis seed=0..9 "
        "--set max_updates=50000",
        "Then: rnnstab report fig7.db · rnnstab plot fig7.db -o fig7.png",
        "Exit codes: 0 all runs stored · 1 some runs failed · 2 bad usage or spec · "
        "4 store error · 130 interrupted.",
    ]
)

_GRID = "Grid"
_EXEC = "Execution"
_OUT = "Output"


def sweep_command(
    spec: Annotated[
        Path,
        typer.Argument(
            help="Sweep spec: a TOML file, or a shipped spec's name (e.g. fig7-small).",
            metavar="SPEC",
        ),
    ],
    store: Annotated[
        Path, typer.Option("--store", help="SQLite result store (created if missing).")
    ],
    axes: Annotated[
        list[str] | None,
        typer.Option(
            "--axis",
            help="KEY=V1,V2,… or KEY=A..B: add or replace an axis (repeatable).",
            rich_help_panel=_GRID,
        ),
    ] = None,
    settings: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            help="KEY=VALUE: add or replace a base setting, VALUE in TOML (repeatable).",
            rich_help_panel=_GRID,
        ),
    ] = None,
    jobs: Annotated[
        int | None,
        typer.Option(
            "--jobs",
            "-j",
            help="Runs at a time (default: one per core; a private Ray gets this many CPUs).",
            rich_help_panel=_EXEC,
        ),
    ] = None,
    backend: Annotated[
        str, typer.Option("--backend", help="local | ray.", rich_help_panel=_EXEC)
    ] = "local",
    address: Annotated[
        str | None,
        typer.Option(
            "--address",
            help="Ray cluster HOST:PORT or 'auto' (default: a private local Ray on 127.0.0.1).",
            rich_help_panel=_EXEC,
        ),
    ] = None,
    runs_dir: Annotated[
        Path | None,
        typer.Option(
            "--runs-dir",
            help=(
                "Keep each run's checkpoint and metrics here, so interrupted runs resume "
                "(default for local sweeps: STORE.runs/ beside the store)."
            ),
            rich_help_panel=_EXEC,
        ),
    ] = None,
    no_runs_dir: Annotated[
        bool,
        typer.Option(
            "--no-runs-dir",
            help="Keep no checkpoints (interrupted runs restart).",
            rich_help_panel=_EXEC,
        ),
    ] = False,
    retry_failed: Annotated[
        bool,
        typer.Option(
            "--retry-failed", help="Run the grid's failed runs again.", rich_help_panel=_EXEC
        ),
    ] = False,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="List the planned runs and what is stored; run nothing.",
            rich_help_panel=_OUT,
        ),
    ] = False,
    json_lines: Annotated[
        bool,
        typer.Option(
            "--json",
            help="One JSON line per finished run on stdout, then a summary line.",
            rich_help_panel=_OUT,
        ),
    ] = False,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="No progress on stderr.", rich_help_panel=_OUT)
    ] = False,
) -> None:
    """Run a grid of training runs into a result store (``--help``: SWEEP_HELP)."""
    from rnnstab_cli.cli.sweep_run import run_sweep_command

    run_sweep_command(
        spec=spec,
        store=store,
        axes=axes,
        settings=settings,
        jobs=jobs,
        backend=backend,
        address=address,
        runs_dir=runs_dir,
        no_runs_dir=no_runs_dir,
        retry_failed=retry_failed,
        dry_run=dry_run,
        json_lines=json_lines,
        quiet=quiet,
    )
