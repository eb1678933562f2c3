"""Generalisation scores of trained models: the error rate of a checkpoint at lengths it was
not trained on, measured once and kept beside the runs in the section's store (table
``scores``), so the report is written from the directory alone.

The measurement is exactly ``rnnstab eval RUN_DIR --len N`` (10,000 sequences, test seed 0):
anyone can check a stored score with that command.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from rnnstab_cli.errors import CheckpointError
from rnnstab_cli.taskgen import TEST_SEQUENCES
from rnnstab_cli.training.checkpoint import load_checkpoint
from rnnstab_cli.training.synthetic.evaluate import eval_command_rng, measure_error

__all__ = ["Score", "ScoreStore", "score_run"]

#: The test seed ``rnnstab eval`` uses by default.
SCORE_SEED: Final[int] = 0

_SCHEMA: Final[str] = """
CREATE TABLE IF NOT EXISTS scores (
    run_id    TEXT NOT NULL,
    length    INTEGER NOT NULL,
    sequences INTEGER NOT NULL,
    errors    INTEGER NOT NULL,
    seed      INTEGER NOT NULL,      -- the test sequences' seed (rnnstab eval --seed)
    updates   INTEGER NOT NULL,      -- the model: the run's checkpoint after this many updates
    PRIMARY KEY (run_id, length)
)
"""


@dataclass(frozen=True)
class Score:
    length: int
    sequences: int
    errors: int
    seed: int
    updates: int

    @property
    def error_rate(self) -> float:
        return self.errors / self.sequences


def score_run(run_dir: Path, lengths: Sequence[int]) -> Iterator[Score]:
    """The checkpoint in ``run_dir`` scored at each of ``lengths``."""
    ckpt = load_checkpoint(run_dir)
    cfg = ckpt.config
    task = cfg.make_task()
    for length in lengths:
        m = measure_error(
            ckpt.params,
            task,
            length=length,
            sequences=TEST_SEQUENCES,
            rng=eval_command_rng(SCORE_SEED, length),
            activation=cfg.activation,
            threads=1,  # the campaign's workers have the other cores
        )
        yield Score(length, m.sequences, m.errors, SCORE_SEED, ckpt.state.updates)


class ScoreStore:
    """The ``scores`` table of a store file."""

    def __init__(self, path: Path, conn: sqlite3.Connection) -> None:
        self.path = path
        self._conn = conn

    @classmethod
    def open(cls, path: Path) -> ScoreStore:
        try:
            conn = sqlite3.connect(path, timeout=30, isolation_level=None)
            conn.execute(_SCHEMA)
        except sqlite3.Error as e:
            raise CheckpointError(f"cannot open the scores in {str(path)!r}: {e}") from None
        return cls(path, conn)

    @classmethod
    def open_readonly(cls, path: Path) -> ScoreStore | None:
        """None when the store has no scores yet."""
        try:
            conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
            has = conn.execute(
                "SELECT count(*) FROM sqlite_master WHERE name = 'scores'"
            ).fetchone()[0]
        except sqlite3.Error as e:
            raise CheckpointError(f"cannot read the scores in {str(path)!r}: {e}") from None
        if not has:
            conn.close()
            return None
        return cls(path, conn)

    def close(self) -> None:
        self._conn.close()

    def record(self, run_id: str, s: Score) -> None:
        with self._conn:
            self._conn.execute("BEGIN IMMEDIATE")
            self._conn.execute(
                "INSERT INTO scores (run_id, length, sequences, errors, seed, updates) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (run_id, s.length, s.sequences, s.errors, s.seed, s.updates),
            )

    def lengths(self, run_id: str) -> set[int]:
        rows = self._conn.execute("SELECT length FROM scores WHERE run_id = ?", (run_id,))
        return {int(n) for (n,) in rows}

    def of(self, run_id: str) -> dict[int, Score]:
        rows = self._conn.execute(
            "SELECT length, sequences, errors, seed, updates FROM scores WHERE run_id = ? "
            "ORDER BY length",
            (run_id,),
        ).fetchall()
        out = {}
        for length, sequences, errors, seed, updates in rows:
            if not (isinstance(sequences, int) and sequences > 0 and 0 <= errors <= sequences):
                raise CheckpointError(
                    f"damaged store {str(self.path)!r}: score of run {run_id} at length "
                    f"{length} has {errors} errors of {sequences}"
                )
            out[int(length)] = Score(int(length), sequences, errors, seed, updates)
        return out
