"""The result store: one SQLite file per study, one row per finished run.

Tables::

    sweeps      one row per distinct sweep (spec after command-line overrides), created once
    runs        one row per finished run, keyed by its stable run id (see spec.run_id)
    sweep_runs  which runs a sweep planned, with the axis values that made each one

Durability: the file is in WAL mode with ``synchronous = FULL`` and every finished run is
written in its own transaction by the one process that drives the sweep, so a sweep killed at
any moment (Ctrl-C, ``kill -9``, power loss) leaves every row it reported complete and none
half-written. Rows are only ever inserted, never updated (``ON CONFLICT DO NOTHING``): a
finished run is never overwritten, not even by a second sweep racing on the same file, except
by ``--retry-failed``, which deletes a failed row first.

Readers (``rnnstab report``, ``rnnstab plot``) open the file read-only, so they can watch a
running sweep and a mistyped path is an error rather than a new, empty store.
"""

from __future__ import annotations

import functools
import json
import sqlite3
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Literal, ParamSpec, TypeVar

from rnnstab_cli.errors import CheckpointError, UsageError
from rnnstab_cli.training.checkpoint import FieldError, check_count, check_number

__all__ = [
    "OUTCOMES",
    "SCHEMA_VERSION",
    "Outcome",
    "ResultStore",
    "RunRow",
    "SweepRow",
    "utc_now",
]

Outcome = Literal["solved", "unsolved", "failed"]
#: solved: ≤ 1% test error on the full test sample; unsolved: update budget exhausted;
#: failed: the run raised (e.g. diverged with ``nonfinite = "error"``), message in ``error``.
OUTCOMES: Final[tuple[str, ...]] = ("solved", "unsolved", "failed")

SCHEMA_VERSION: Final[int] = 1
_APPLICATION_ID: Final[int] = 0x524E5353  # "RNSS": marks the file as an rnnstab store
_BUSY_TIMEOUT_MS: Final[int] = 30_000

_SCHEMA: Final[str] = """
CREATE TABLE IF NOT EXISTS sweeps (
    sweep_id   TEXT PRIMARY KEY,      -- hash of the spec (after overrides)
    name       TEXT NOT NULL,
    spec       TEXT NOT NULL,         -- JSON: name, source, preset, base, axes
    n_runs     INTEGER NOT NULL,
    created    TEXT NOT NULL          -- UTC, ISO 8601
);
CREATE TABLE IF NOT EXISTS runs (
    run_id         TEXT PRIMARY KEY,  -- hash of the resolved config
    config         TEXT NOT NULL,     -- JSON: the resolved config (TrainConfig.to_dict)
    task           TEXT NOT NULL,
    method         TEXT NOT NULL,
    len            TEXT NOT NULL,
    seed           INTEGER NOT NULL,
    outcome        TEXT NOT NULL CHECK (outcome IN ('solved', 'unsolved', 'failed')),
    updates        INTEGER,           -- updates trained (NULL if it failed before any)
    wall_time      REAL,              -- seconds of training, summed over resumed sessions
    test_error     REAL,              -- final test error on test_sequences fresh sequences
    test_sequences INTEGER,
    error          TEXT,              -- why a failed run failed
    run_dir        TEXT,              -- checkpoint directory, if kept
    metrics_path   TEXT,              -- its metrics.jsonl (one line per evaluation)
    backend        TEXT NOT NULL,     -- local-process | local-thread | ray
    host           TEXT,
    library_version TEXT,
    started        TEXT,              -- UTC, ISO 8601 (this session of the run)
    finished       TEXT NOT NULL      -- UTC, ISO 8601, when the row was written
);
CREATE TABLE IF NOT EXISTS sweep_runs (
    sweep_id TEXT NOT NULL REFERENCES sweeps(sweep_id),
    run_id   TEXT NOT NULL,
    position INTEGER NOT NULL,        -- index in grid order
    point    TEXT NOT NULL,           -- JSON: the axis values of this grid point
    PRIMARY KEY (sweep_id, run_id)
);
CREATE INDEX IF NOT EXISTS runs_by_outcome ON runs(outcome);
"""


P = ParamSpec("P")
R = TypeVar("R")


def _reading(method: Callable[P, R]) -> Callable[P, R]:
    """A read whose SQLite error (a damaged file) or bad field becomes a one-line
    CheckpointError naming the store."""

    @functools.wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(*args, **kwargs)
        except (sqlite3.Error, FieldError, json.JSONDecodeError, RecursionError, UnicodeError) as e:
            store = args[0]
            path = getattr(store, "path", "?")
            raise CheckpointError(f"result store {str(path)!r} is damaged: {_brief(e)}") from None

    return wrapper


def _brief(error: BaseException, limit: int = 160) -> str:
    """An error's text on one printable line of at most ``limit`` characters: SQLite quotes
    the undecodable bytes of a damaged row in its message."""
    text = " ".join(str(error).split())
    text = "".join(c if c.isprintable() else "?" for c in text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _text(name: str, value: object, *, nullable: bool = False) -> Any:
    if value is None and nullable:
        return None
    if not isinstance(value, str):
        raise FieldError(f"{name} must be text, got {value!r}")
    return value


def _json_object(name: str, value: object) -> dict[str, Any]:
    try:
        data = json.loads(_text(name, value))
    except json.JSONDecodeError as e:
        raise FieldError(f"{name} is not JSON ({e})") from None
    if not isinstance(data, dict):
        raise FieldError(f"{name} must be a JSON object, got {type(data).__name__}")
    return data


def _optional(check: Callable[[str, Any], Any], name: str, value: object) -> Any:
    return None if value is None else check(name, value)


def _run_row(r: Sequence[Any]) -> RunRow:
    """A ``runs`` row with every field checked: SQLite's column types are only affinities, so
    a damaged or hand-edited file can hold text where a number belongs."""
    run_id = _text("run_id", r[0])
    where = f"run {run_id}"
    outcome = _text(f"{where}: outcome", r[2])
    if outcome not in OUTCOMES:
        raise FieldError(f"{where}: outcome {outcome!r} is not one of {', '.join(OUTCOMES)}")
    test_error = _optional(check_number, f"{where}: test_error", r[5])
    if test_error is not None and test_error > 1:
        raise FieldError(f"{where}: test_error must be in [0, 1], got {test_error}")
    return RunRow(
        run_id,
        _json_object(f"{where}: config", r[1]),
        outcome,
        _optional(check_count, f"{where}: updates", r[3]),
        _optional(check_number, f"{where}: wall_time", r[4]),
        test_error,
        _optional(check_count, f"{where}: test_sequences", r[6]),
        _text(f"{where}: error", r[7], nullable=True),
        _text(f"{where}: run_dir", r[8], nullable=True),
        _text(f"{where}: metrics_path", r[9], nullable=True),
        _text(f"{where}: backend", r[10]),
        _text(f"{where}: host", r[11], nullable=True),
        _text(f"{where}: started", r[12], nullable=True),
        _text(f"{where}: finished", r[13]),
    )


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


@dataclass(frozen=True)
class RunRow:
    """A stored run (``runs`` row with its config parsed)."""

    run_id: str
    config: dict[str, Any]
    outcome: str
    updates: int | None
    wall_time: float | None
    test_error: float | None
    test_sequences: int | None
    error: str | None
    run_dir: str | None
    metrics_path: str | None
    backend: str
    host: str | None
    started: str | None
    finished: str

    @property
    def solved(self) -> bool:
        return self.outcome == "solved"

    def to_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "outcome": self.outcome,
            "solved": self.solved,
            "updates": self.updates,
            "wall_time": self.wall_time,
            "test_error": self.test_error,
            "test_sequences": self.test_sequences,
            "error": self.error,
            "run_dir": self.run_dir,
            "metrics_path": self.metrics_path,
            "backend": self.backend,
            "host": self.host,
            "started": self.started,
            "finished": self.finished,
            "config": self.config,
        }


@dataclass(frozen=True)
class SweepRow:
    sweep_id: str
    name: str
    spec: dict[str, Any]
    n_runs: int
    created: str


class ResultStore:
    """An open store. Use :meth:`open` (creates, for writers) or :meth:`open_readonly`."""

    def __init__(self, path: Path, conn: sqlite3.Connection) -> None:
        self.path = path
        self._conn = conn

    # -- opening ------------------------------------------------------------------------------

    @classmethod
    def open(cls, path: str | Path) -> ResultStore:
        """Open ``path`` for a sweep, creating it (and its folder) if needed."""
        p = Path(path)
        if p.is_dir():
            raise UsageError(
                f"result store {str(p)!r} is a directory; name a file, e.g. results.db"
            )
        try:
            p.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(p, timeout=_BUSY_TIMEOUT_MS / 1000, isolation_level=None)
        except (OSError, sqlite3.Error) as e:
            raise CheckpointError(f"cannot open result store {str(p)!r}: {e}") from None
        store = cls(p, conn)
        try:
            store._check_identity(allow_new=True)
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = FULL")
            store._create_schema()
        except (sqlite3.Error, UnicodeError) as e:
            conn.close()
            raise CheckpointError(f"result store {str(p)!r} is not usable: {_brief(e)}") from None
        except BaseException:
            conn.close()
            raise
        return store

    @classmethod
    def empty(cls, path: str | Path) -> ResultStore:
        """An empty store in memory, named ``path``: what a reader sees of a store not written
        yet, without creating it (a dry run plans from it)."""
        store = cls(Path(path), sqlite3.connect(":memory:", isolation_level=None))
        store._create_schema()
        return store

    def _create_schema(self) -> None:
        # Statement by statement: executescript would commit outside our transaction.
        with self._transaction() as c:
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    c.execute(statement)
            c.execute(f"PRAGMA application_id = {_APPLICATION_ID}")
            c.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    @classmethod
    def open_readonly(cls, path: str | Path) -> ResultStore:
        """Open an existing store for reading; CheckpointError if it is missing or not one."""
        p = Path(path)
        if not p.is_file():
            raise CheckpointError(
                f"no result store at {str(p)!r} (create one with `rnnstab sweep SPEC --store {p}`)"
            )
        try:
            conn = sqlite3.connect(
                f"{p.resolve().as_uri()}?mode=ro",
                uri=True,
                timeout=_BUSY_TIMEOUT_MS / 1000,
                isolation_level=None,
            )
        except sqlite3.Error as e:
            raise CheckpointError(f"cannot open result store {str(p)!r}: {e}") from None
        store = cls(p, conn)
        try:
            store._check_identity(allow_new=False)
        except (sqlite3.Error, UnicodeError) as e:  # text a damaged file no longer decodes
            conn.close()
            raise CheckpointError(
                f"{str(p)!r} is not an rnnstab result store: {_brief(e)}"
            ) from None
        except BaseException:
            conn.close()
            raise
        return store

    def _check_identity(self, *, allow_new: bool) -> None:
        app = self._conn.execute("PRAGMA application_id").fetchone()[0]
        version = self._conn.execute("PRAGMA user_version").fetchone()[0]
        tables = self._conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        if app == 0 and version == 0 and tables == 0 and allow_new:
            return  # a new, empty file
        if app != _APPLICATION_ID:
            raise CheckpointError(f"{str(self.path)!r} is not an rnnstab result store")
        if version > SCHEMA_VERSION:
            raise CheckpointError(
                f"result store {str(self.path)!r} has schema version {version}, newer than this "
                f"rnnstab understands ({SCHEMA_VERSION}); upgrade rnnstab"
            )

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> ResultStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE … COMMIT, rolled back on any error (including KeyboardInterrupt)."""
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield self._conn
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    # -- writing ------------------------------------------------------------------------------

    def register_sweep(
        self,
        sweep_id: str,
        name: str,
        spec: Mapping[str, Any],
        runs: Sequence[tuple[str, int, Mapping[str, Any]]],
    ) -> None:
        """Record a sweep and the runs it plans (``(run_id, position, point)``), once: a resumed
        sweep keeps its original ``created`` time."""
        try:
            with self._transaction() as c:
                c.execute(
                    "INSERT INTO sweeps (sweep_id, name, spec, n_runs, created) "
                    "VALUES (?, ?, ?, ?, ?) ON CONFLICT(sweep_id) DO NOTHING",
                    (sweep_id, name, json.dumps(spec, sort_keys=True), len(runs), utc_now()),
                )
                c.executemany(
                    "INSERT INTO sweep_runs (sweep_id, run_id, position, point) "
                    "VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                    [(sweep_id, rid, pos, json.dumps(point)) for rid, pos, point in runs],
                )
        except sqlite3.Error as e:
            raise CheckpointError(f"cannot write to result store {str(self.path)!r}: {e}") from None

    def record_run(self, row: Mapping[str, Any]) -> bool:
        """Insert one finished run in its own transaction. Returns False (and changes nothing)
        if the run id is already stored."""
        cols = (
            "run_id", "config", "task", "method", "len", "seed", "outcome", "updates",
            "wall_time", "test_error", "test_sequences", "error", "run_dir", "metrics_path",
            "backend", "host", "library_version", "started", "finished",
        )  # fmt: skip
        values = [row.get(c) for c in cols]
        values[cols.index("config")] = json.dumps(row["config"], sort_keys=True)
        if row["outcome"] not in OUTCOMES:
            raise ValueError(f"bad outcome {row['outcome']!r}")
        sql = (
            f"INSERT INTO runs ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))}) "
            "ON CONFLICT(run_id) DO NOTHING"
        )
        for attempt in range(3):
            try:
                with self._transaction() as c:
                    return c.execute(sql, values).rowcount == 1
            except sqlite3.OperationalError as e:
                # "database is locked" after the busy timeout: another writer holds it; a run's
                # result is worth a few more tries before giving up.
                if attempt == 2 or "locked" not in str(e):
                    raise CheckpointError(
                        f"cannot write to result store {str(self.path)!r}: {e}"
                    ) from None
                time.sleep(1.0)
        raise AssertionError("unreachable")

    def set_metrics_path(self, run_id: str, path: str) -> None:
        """Point a stored run at its metrics log where it moved (an archived log)."""
        try:
            with self._transaction() as c:
                c.execute("UPDATE runs SET metrics_path = ? WHERE run_id = ?", (path, run_id))
        except sqlite3.Error as e:
            raise CheckpointError(f"cannot write to result store {str(self.path)!r}: {e}") from None

    def delete_failed(self, run_ids: Sequence[str]) -> int:
        """Remove failed rows among ``run_ids`` (for ``--retry-failed``); returns how many."""
        if not run_ids:
            return 0
        with self._transaction() as c:
            n = 0
            for rid in run_ids:
                n += c.execute(
                    "DELETE FROM runs WHERE run_id = ? AND outcome = 'failed'", (rid,)
                ).rowcount
            return n

    # -- reading ------------------------------------------------------------------------------

    @_reading
    def stored_outcomes(self, run_ids: Sequence[str] | None = None) -> dict[str, str]:
        """run id → outcome of the stored runs (all, or among ``run_ids``)."""
        rows = self._conn.execute("SELECT run_id, outcome FROM runs").fetchall()
        wanted = set(run_ids) if run_ids is not None else None
        return {
            _text("run_id", r): _text(f"run {r}: outcome", o)
            for r, o in rows
            if wanted is None or r in wanted
        }

    @_reading
    def sweeps(self) -> list[SweepRow]:
        rows = self._conn.execute(
            "SELECT sweep_id, name, spec, n_runs, created FROM sweeps ORDER BY created"
        ).fetchall()
        return [
            SweepRow(
                _text("sweep_id", s),
                _text(f"sweep {s}: name", n),
                _json_object(f"sweep {s}: spec", spec),
                check_count(f"sweep {s}: n_runs", k),
                _text(f"sweep {s}: created", c),
            )
            for s, n, spec, k, c in rows
        ]

    def find_sweep(self, key: str) -> SweepRow:
        """A sweep by name or (a prefix of) its id; the latest of that name if several."""
        matches = [s for s in self.sweeps() if s.name == key or s.sweep_id.startswith(key)]
        if not matches:
            names = sorted({s.name for s in self.sweeps()})
            raise UsageError(
                f"no sweep {key!r} in {str(self.path)!r}; it has: {', '.join(names) or 'none'}"
            )
        return matches[-1]

    @_reading
    def planned_run_ids(self, sweep_id: str) -> list[str]:
        rows = self._conn.execute(
            "SELECT run_id FROM sweep_runs WHERE sweep_id = ? ORDER BY position", (sweep_id,)
        ).fetchall()
        return [_text("sweep_runs.run_id", r) for (r,) in rows]

    @_reading
    def runs(self, sweep_id: str | None = None) -> list[RunRow]:
        """Stored runs, all or those of one sweep, oldest first."""
        base = (
            "SELECT r.run_id, r.config, r.outcome, r.updates, r.wall_time, r.test_error, "
            "r.test_sequences, r.error, r.run_dir, r.metrics_path, r.backend, r.host, "
            "r.started, r.finished FROM runs r"
        )
        if sweep_id is None:
            rows = self._conn.execute(base + " ORDER BY r.finished").fetchall()
        else:
            rows = self._conn.execute(
                base + " JOIN sweep_runs s ON s.run_id = r.run_id WHERE s.sweep_id = ? "
                "ORDER BY s.position",
                (sweep_id,),
            ).fetchall()
        return [_run_row(r) for r in rows]

    @_reading
    def count_runs(self) -> int:
        return int(self._conn.execute("SELECT count(*) FROM runs").fetchone()[0])
