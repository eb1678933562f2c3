"""The SQLite result store: insert-only rows, one per run id, read-only readers, clear errors
for missing or foreign files (rnnstab_cli/sweep/store.py)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from rnnstab_cli.errors import CheckpointError, UsageError
from rnnstab_cli.sweep.store import ResultStore, utc_now


def row(run_id: str, outcome: str = "solved", **over: Any) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "config": {"task": "temporal-order", "len": 10, "method": "sgd", "seed": 0},
        "task": "temporal-order",
        "method": "sgd",
        "len": "10",
        "seed": 0,
        "outcome": outcome,
        "updates": 100,
        "wall_time": 1.5,
        "test_error": 0.0,
        "test_sequences": 10_000,
        "backend": "local-process",
        "finished": utc_now(),
    } | over


def test_rows_are_inserted_once_and_never_overwritten(tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    with ResultStore.open(db) as st:
        st.register_sweep(
            "s1", "demo", {"axes": {}}, [("a", 0, {"seed": 0}), ("b", 1, {"seed": 1})]
        )
        assert st.record_run(row("a", finished="first"))
        assert not st.record_run(row("a", outcome="unsolved", finished="second"))
        assert st.stored_outcomes() == {"a": "solved"}
        # Registering the same sweep again (a resume) keeps its creation time.
        created = st.sweeps()[0].created
        st.register_sweep("s1", "demo", {"axes": {}}, [("a", 0, {"seed": 0})])
        assert [s.created for s in st.sweeps()] == [created]
    with ResultStore.open_readonly(db) as st:
        (r,) = st.runs()
        assert (r.run_id, r.outcome, r.finished) == ("a", "solved", "first")
        assert st.planned_run_ids("s1") == ["a", "b"]
        assert st.find_sweep("demo").sweep_id == "s1"
        with pytest.raises(UsageError, match="no sweep 'other'"):
            st.find_sweep("other")
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


def test_retry_failed_deletes_only_failed_rows(tmp_path: Path) -> None:
    with ResultStore.open(tmp_path / "r.db") as st:
        st.record_run(row("a", "failed", error="boom"))
        st.record_run(row("b", "unsolved"))
        assert st.delete_failed(["a", "b"]) == 1
        assert st.stored_outcomes() == {"b": "unsolved"}


def test_readers_refuse_missing_and_foreign_files(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="no result store"):
        ResultStore.open_readonly(tmp_path / "missing.db")
    assert not (tmp_path / "missing.db").exists()
    text = tmp_path / "notes.db"
    text.write_text("not a database at all, just text " * 100)
    with pytest.raises(CheckpointError):
        ResultStore.open_readonly(text)
    with pytest.raises(CheckpointError):
        ResultStore.open(text)
    other = tmp_path / "other.db"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE t (x)")
    conn.commit()
    conn.close()
    with pytest.raises(CheckpointError, match="not an rnnstab result store"):
        ResultStore.open(other)
    with pytest.raises(UsageError, match="directory"):
        ResultStore.open(tmp_path)
