"""``rnnstab report``: success rates from a result store (rows = method, columns = length by
default; cells solved/total and the rate), as a table, JSON lines or CSV.

Exit codes: 0 reported; 2 bad usage; 4 the store is missing or not a result store.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

# What the command does lives in cli/report_run.py, imported when it runs, so that defining the
# options (and `rnnstab --help`) needs neither numpy nor the engine.

REPORT_HELP = "\n\n".join(
    [
        "Success rates of the runs in a result store: solved/total per cell and the rate.",
        "Default: rows = method, columns = len, pooled over seeds, as in the paper's Fig. 7. "
        "Group by any train option (--rows lr --cols len,hidden) and filter with "
        "--where KEY=VALUE. Failed runs are shown apart and not counted in the rate.",
        "Example: rnnstab report fig7.db --csv > fig7.csv",
        "Exit codes: 0 reported · 2 bad usage · 4 store missing or not a result store.",
    ]
)


def report_command(
    store: Annotated[Path, typer.Argument(help="Result store written by `rnnstab sweep`.")],
    rows: Annotated[
        str | None, typer.Option("--rows", help="Row key(s), comma-separated (default: method).")
    ] = None,
    cols: Annotated[
        str | None, typer.Option("--cols", help="Column key(s), comma-separated (default: len).")
    ] = None,
    sweep: Annotated[
        str | None,
        typer.Option("--sweep", help="Only this sweep's runs (name or id; default: all runs)."),
    ] = None,
    where: Annotated[
        list[str] | None,
        typer.Option("--where", help="KEY=VALUE: only runs with this setting (repeatable)."),
    ] = None,
    runs: Annotated[
        bool, typer.Option("--runs", help="List the individual runs instead of rates.")
    ] = False,
    json_lines: Annotated[
        bool, typer.Option("--json", help="JSON lines on stdout: one per cell (or run).")
    ] = False,
    csv_out: Annotated[
        bool, typer.Option("--csv", help="CSV on stdout: one row per cell (or run).")
    ] = False,
) -> None:
    """Success-rate table of a result store (``--help``: REPORT_HELP)."""
    from rnnstab_cli.cli.report_run import run_report

    run_report(
        store=store,
        rows=rows,
        cols=cols,
        sweep=sweep,
        where=where,
        runs=runs,
        json_lines=json_lines,
        csv_out=csv_out,
    )
