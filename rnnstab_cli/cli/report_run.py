"""What ``rnnstab report`` does once its options are parsed (cli/report.py defines them): select
runs from a result store and print their success rates as a table, JSON lines or CSV.
"""

from __future__ import annotations

import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from rnnstab_cli.cli.common import emit_json, note
from rnnstab_cli.errors import UsageError
from rnnstab_cli.sweep.progress import duration
from rnnstab_cli.sweep.report import (
    Selection,
    cell_text,
    grid_csv,
    grid_json,
    group,
    header_label,
    parse_keys,
    pooled_settings,
    records_csv,
    run_records,
    select_runs,
)
from rnnstab_cli.sweep.store import ResultStore


def _warn_pooled(sel: Selection, grouped: list[str]) -> None:
    mixed = pooled_settings(sel.runs, grouped)
    if mixed:
        what = "; ".join(
            f"{k} ∈ {{{', '.join(v[:4])}{', …' if len(v) > 4 else ''}}}" for k, v in mixed.items()
        )
        note(
            f"note: cells pool runs that differ in {what}; split them with --rows/--cols or "
            "--where KEY=VALUE"
        )


def _console() -> Console:
    console = Console(highlight=False)
    return console if console.is_terminal else Console(highlight=False, width=160)


def _print_runs(records: list[dict[str, object]], sel: Selection, store: Path) -> None:
    console = _console()
    if not records:
        console.print(f"No finished runs in {store}.")
        return
    shown = [k for k in records[0] if k not in ("error", "run_dir", "finished")]
    table = Table(title=f"{len(records)} runs in {store}", title_justify="left")
    for k in shown:
        table.add_column(
            k.replace("_", " "), justify="left" if k in ("run_id", "method", "outcome") else "right"
        )
    for rec in records:
        cells = []
        for k in shown:
            v = rec[k]
            if k == "test_error" and isinstance(v, float):
                cells.append(f"{100 * v:.2f}%")
            elif k == "wall_time" and isinstance(v, float):
                cells.append(duration(v))
            elif k == "updates" and isinstance(v, int):
                cells.append(f"{v:,}")
            else:
                cells.append("–" if v is None else str(v))
        table.add_row(*cells)
    console.print(table)
    for rec in records:
        if rec.get("error"):
            console.print(f"  {rec['run_id']}: {rec['error']}")


def run_report(
    *,
    store: Path,
    rows: str | None,
    cols: str | None,
    sweep: str | None,
    where: list[str] | None,
    runs: bool,
    json_lines: bool,
    csv_out: bool,
) -> None:
    """What `rnnstab report` does with its parsed options."""
    if json_lines and csv_out:
        raise UsageError("choose one of --json and --csv")
    row_keys = parse_keys(rows, "--rows", ["method"])
    col_keys = parse_keys(cols, "--cols", ["len"])
    both = [k for k in row_keys if k in col_keys]
    if both:
        raise UsageError(f"{both[0]} cannot be both a row and a column key")
    with ResultStore.open_readonly(store) as st:
        sel = select_runs(st, sweep=sweep, where=where or [])

    if runs:
        records = run_records(sel.runs)
        if json_lines:
            for rec in records:
                emit_json({"event": "run", **rec})
        elif csv_out:
            sys.stdout.write(records_csv(records))
        else:
            _print_runs(records, sel, store)
        return

    grid = group(sel.runs, row_keys, col_keys)
    _warn_pooled(sel, row_keys + col_keys)  # stderr: harmless next to --json/--csv
    if json_lines:
        for rec in grid_json(grid):
            emit_json(rec)
        return
    if csv_out:
        sys.stdout.write(grid_csv(grid))
        return
    console = _console()
    if not sel.runs:
        console.print(f"No finished runs in {store}" + (" match." if where else " yet."))
        return
    solved = sum(1 for r in sel.runs if r.outcome == "solved")
    counted = sum(1 for r in sel.runs if r.outcome != "failed")
    title = f"{', '.join(sel.sweep_names) or store.name}: rate of success"
    table = Table(title=title, title_justify="left")
    table.add_column(" ".join(row_keys) + " \\ " + " ".join(col_keys), style="bold")
    for c in grid.col_values:
        table.add_column(header_label(col_keys, c), justify="right")
    for r in grid.row_values:
        table.add_row(
            header_label(row_keys, r), *(cell_text(grid.cell(r, c)) for c in grid.col_values)
        )
    console.print(table)
    budgets = sorted({int(r.config.get("max_updates") or 0) for r in sel.runs})
    seeds = {r.config.get("seed") for r in sel.runs}
    console.print(
        f"  {solved} of {counted} runs solved (≤ 1% error on the test sequences within "
        f"{', '.join(f'{b:,}' for b in budgets)} updates); {len(seeds)} seed"
        f"{'s' if len(seeds) != 1 else ''} pooled per cell."
    )
    if sel.missing:
        console.print(
            f"  [yellow]{sel.missing} planned run{'s are' if sel.missing != 1 else ' is'} "
            "not finished yet[/] (resume with the same `rnnstab sweep` command)."
        )
