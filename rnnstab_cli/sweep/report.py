"""Success rates from a result store: runs grouped by any config keys (rows × columns), each
cell ``solved / total``. The paper's Fig. 7 is rows = method, columns = len, pooled over seeds.

Failed runs (a run that raised, see :mod:`.store`) are counted apart and left out of the rate:
a crash says nothing about the method. Runs that differ in a setting that is neither grouped
nor the seed would be pooled into one rate; :func:`pooled_settings` names those so the
commands can warn.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from rnnstab_cli.errors import UsageError
from rnnstab_cli.sweep.spec import parse_set_option
from rnnstab_cli.sweep.store import ResultStore, RunRow
from rnnstab_cli.training.config import METHODS, all_config_keys, normalise_layer, parse_length

__all__ = [
    "Cell",
    "Grid",
    "Selection",
    "grid_csv",
    "grid_json",
    "group",
    "parse_keys",
    "pooled_settings",
    "select_runs",
    "sort_key",
    "value_of",
]

#: Settings pooled without a warning: the seed (the repeats behind a rate), threads (results
#: are bit-identical on any thread count) and chunk (derived from eval_every and the length,
#: which are warned about themselves).
_POOLED_BY_DESIGN: Final[frozenset[str]] = frozenset({"seed", "threads", "chunk"})
#: Keys one can group or filter by besides the config keys.
_EXTRA_KEYS: Final[tuple[str, ...]] = ("preset", "outcome")


@dataclass(frozen=True)
class Selection:
    """The runs a report covers, and how many the covered sweeps planned."""

    runs: list[RunRow]
    planned: int  # grid runs of the selected sweep(s); ≥ len(runs) unless extra runs exist
    sweep_names: list[str]

    @property
    def missing(self) -> int:
        return max(0, self.planned - len(self.runs))


@dataclass
class Cell:
    solved: int = 0
    unsolved: int = 0
    failed: int = 0

    @property
    def total(self) -> int:
        """Runs that count towards the rate (failed ones do not)."""
        return self.solved + self.unsolved

    @property
    def rate(self) -> float | None:
        return self.solved / self.total if self.total else None

    def add(self, outcome: str) -> None:
        setattr(self, outcome, getattr(self, outcome) + 1)


@dataclass
class Grid:
    rows: list[str]  # the grouping keys
    cols: list[str]
    row_values: list[tuple[Any, ...]] = field(default_factory=list)
    col_values: list[tuple[Any, ...]] = field(default_factory=list)
    cells: dict[tuple[tuple[Any, ...], tuple[Any, ...]], Cell] = field(default_factory=dict)

    def cell(self, r: tuple[Any, ...], c: tuple[Any, ...]) -> Cell | None:
        return self.cells.get((r, c))


def value_of(run: RunRow, key: str) -> Any:
    if key == "outcome":
        return run.outcome
    value = run.config.get(key)
    if isinstance(value, dict):  # task_options: hashable and readable
        return ", ".join(f"{k}={v}" for k, v in sorted(value.items())) or "{}"
    return value


def sort_key(key: str, value: Any) -> tuple[Any, ...]:
    """Numbers numerically, lengths by range, methods in the paper's order, else by text."""
    if value is None:
        return (3,)
    if key == "method" and value in METHODS:
        return (0, METHODS.index(value))
    if key == "len":
        r = parse_length(value)
        return (0, r.lo, r.hi)
    if isinstance(value, bool):
        return (1, str(value))
    if isinstance(value, int | float):
        return (0, value)
    return (2, str(value))


def parse_keys(text: str | None, option: str, default: Sequence[str]) -> list[str]:
    """``"method,lr"`` → ``["method", "lr"]``, each a config key (UsageError naming it)."""
    if text is None:
        return list(default)
    keys = [k.strip().replace("-", "_") for k in text.split(",") if k.strip()]
    if not keys:
        raise UsageError(f"{option} needs at least one key, e.g. {option} method")
    for k in keys:
        if k not in all_config_keys() and k not in _EXTRA_KEYS:
            raise UsageError(f"{option}: unknown key {k!r}; group by a train option, e.g. method")
    return keys


def _where(items: Sequence[str]) -> list[tuple[str, Any]]:
    out = []
    for item in items:
        key, value = parse_set_option(item, option="--where")
        if key in _EXTRA_KEYS:
            out.append((key, value))
            continue
        layer = normalise_layer({key: value}, source="--where")
        v = layer[key]
        out.append((key, v.to_toml() if hasattr(v, "to_toml") else v))
    return out


def select_runs(
    store: ResultStore, *, sweep: str | None = None, where: Sequence[str] = ()
) -> Selection:
    """Stored runs of one sweep (by name or id) or of all, filtered by ``KEY=VALUE`` items."""
    if sweep is not None:
        s = store.find_sweep(sweep)
        runs, planned, names = store.runs(s.sweep_id), s.n_runs, [s.name]
    else:
        sweeps = store.sweeps()
        runs = store.runs()
        planned_ids = {rid for s in sweeps for rid in store.planned_run_ids(s.sweep_id)}
        planned = len(planned_ids | {r.run_id for r in runs})
        names = [s.name for s in sweeps]
    for key, value in _where(where):
        runs = [r for r in runs if value_of(r, key) == value]
    if where:
        planned = len(runs)  # a filter cannot tell which missing runs it would have matched
    return Selection(runs, planned, names)


def group(runs: Iterable[RunRow], rows: Sequence[str], cols: Sequence[str]) -> Grid:
    grid = Grid(list(rows), list(cols))
    rset: set[tuple[Any, ...]] = set()
    cset: set[tuple[Any, ...]] = set()
    for run in runs:
        r = tuple(value_of(run, k) for k in rows)
        c = tuple(value_of(run, k) for k in cols)
        rset.add(r)
        cset.add(c)
        grid.cells.setdefault((r, c), Cell()).add(run.outcome)

    def order(keys: Sequence[str]) -> Any:
        return lambda t: tuple(sort_key(k, v) for k, v in zip(keys, t, strict=True))

    grid.row_values = sorted(rset, key=order(rows))
    grid.col_values = sorted(cset, key=order(cols))
    return grid


def pooled_settings(runs: Sequence[RunRow], grouped: Sequence[str]) -> dict[str, list[Any]]:
    """Settings that differ between runs of the same cell (same values of the ``grouped``
    keys), other than those pooled by design: their values are mixed into one rate. Settings
    that follow from the grouping (clip_mode and alpha from the method) vary only across
    cells and are not reported."""
    cells: dict[tuple[Any, ...], dict[str, set[str]]] = {}
    for run in runs:
        seen = cells.setdefault(tuple(str(value_of(run, k)) for k in grouped), {})
        for k in run.config:
            if k not in grouped and k not in _POOLED_BY_DESIGN:
                seen.setdefault(k, set()).add(str(value_of(run, k)))
    mixed: dict[str, set[str]] = {}
    for seen in cells.values():
        for k, vals in seen.items():
            if len(vals) > 1:
                mixed.setdefault(k, set()).update(vals)
    return {k: sorted(v) for k, v in sorted(mixed.items())}


def _label(value: Any) -> str:
    return "–" if value is None else str(value)


def grid_records(grid: Grid) -> list[dict[str, Any]]:
    """One flat record per non-empty cell."""
    out = []
    for r in grid.row_values:
        for c in grid.col_values:
            cell = grid.cell(r, c)
            if cell is None:
                continue
            rec: dict[str, Any] = dict(zip(grid.rows, r, strict=True))
            rec.update(zip(grid.cols, c, strict=True))
            rec.update(
                solved=cell.solved,
                unsolved=cell.unsolved,
                failed=cell.failed,
                total=cell.total,
                rate=None if cell.rate is None else round(cell.rate, 6),
            )
            out.append(rec)
    return out


def grid_json(grid: Grid) -> list[dict[str, Any]]:
    return [{"event": "cell", **rec} for rec in grid_records(grid)]


def grid_csv(grid: Grid) -> str:
    header = [*grid.rows, *grid.cols, "solved", "unsolved", "failed", "total", "rate"]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    for rec in grid_records(grid):
        w.writerow(["" if rec[h] is None else rec[h] for h in header])
    return buf.getvalue()


def cell_text(cell: Cell | None) -> str:
    """``2/3 67%`` (Rich markup), with failed runs noted apart."""
    if cell is None:
        return "[dim]–[/]"
    if cell.total == 0:
        text = "[dim]0/0[/]"
    else:
        colour = "green" if cell.solved == cell.total else ("red" if cell.solved == 0 else "yellow")
        text = f"[{colour}]{cell.solved}/{cell.total}[/] {100 * (cell.rate or 0):4.0f}%"
    if cell.failed:
        text += f" [red]+{cell.failed} failed[/]"
    return text


def header_label(keys: Sequence[str], values: tuple[Any, ...]) -> str:
    if len(keys) == 1:
        return _label(values[0])
    return " ".join(f"{k}={_label(v)}" for k, v in zip(keys, values, strict=True))


def run_records(runs: Sequence[RunRow]) -> list[dict[str, Any]]:
    """Per-run rows (for ``--runs``): task, method, len and seed, then any other setting that
    varies between the runs."""
    first = ["task", "method", "len", "seed"]
    values: dict[str, set[str]] = {}
    for run in runs:
        for k in run.config:
            if k not in first and k not in ("threads", "preset"):
                values.setdefault(k, set()).add(str(value_of(run, k)))
    keys = first + sorted(k for k, v in values.items() if len(v) > 1)
    out = []
    for r in sorted(runs, key=lambda r: tuple(sort_key(k, value_of(r, k)) for k in keys)):
        rec: dict[str, Any] = {"run_id": r.run_id}
        rec.update({k: value_of(r, k) for k in keys})
        rec.update(
            outcome=r.outcome,
            updates=r.updates,
            test_error=r.test_error,
            wall_time=None if r.wall_time is None else round(r.wall_time, 3),
            finished=r.finished,
            error=r.error,
            run_dir=r.run_dir,
        )
        out.append(rec)
    return out


def records_csv(records: Sequence[Mapping[str, Any]]) -> str:
    if not records:
        return ""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(records[0]), lineterminator="\n")
    w.writeheader()
    for rec in records:
        w.writerow({k: "" if v is None else v for k, v in rec.items()})
    return buf.getvalue()
