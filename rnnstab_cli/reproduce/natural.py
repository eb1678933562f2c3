"""Tables 1 and 2 in a campaign: the natural tasks (§4.2), one run per data set and method
with the presets' settings, trained until their presets stop them (the epoch budget, or
``patience`` epochs without a better validation score), then scored on the train and test
splits with the best validation parameters, as ``rnnstab eval --split`` scores them. Beside
them run the variants (:data:`NATURAL_VARIANTS`): a table's run with one setting changed, to
test an explanation of a figure that was not reproduced.

Each section keeps its runs in the ``natural_runs`` table of ``DIR/<section>/store.db`` and
their checkpoints in ``DIR/<section>/runs/<id>/``. A run interrupted part-way continues from
its checkpoint (saved after every epoch) the next time. The data are the user's files
(``--data`` or ``$RNNSTAB_DATA``); their path is not part of a run's identity, so a campaign
continues on a machine that keeps them elsewhere.
"""

from __future__ import annotations

import hashlib
import json
import math
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from rnnstab_cli.errors import CheckpointError
from rnnstab_cli.sweep.spec import canonical_json
from rnnstab_cli.sweep.store import ResultStore, utc_now
from rnnstab_cli.training.checkpoint import FieldError, read_state
from rnnstab_cli.training.natural import NaturalConfig, resolve_natural_config
from rnnstab_cli.training.natural.state import NaturalState
from rnnstab_cli.training.settings import identity

__all__ = [
    "NATURAL_STUDIES",
    "NATURAL_VARIANTS",
    "NaturalPlanned",
    "NaturalRow",
    "NaturalStore",
    "NaturalVariant",
    "epochs_in_checkpoint",
    "natural_seconds_left",
    "plan_natural",
]

#: Section → (preset, methods): Table 1's three data sets × the three methods; Table 2's next
#: character × three and 5 characters ahead × SGD+C, SGD+CR (the paper has no SGD there).
NATURAL_STUDIES: Final[dict[str, tuple[tuple[str, tuple[str, ...]], ...]]] = {
    "music": (
        ("music-piano-midi", ("sgd", "sgd-c", "sgd-cr")),
        ("music-nottingham", ("sgd", "sgd-c", "sgd-cr")),
        ("music-musedata", ("sgd", "sgd-c", "sgd-cr")),
    ),
    "ptb": (
        ("ptb-char", ("sgd", "sgd-c", "sgd-cr")),
        ("ptb-char-5ahead", ("sgd-c", "sgd-cr")),
    ),
}


@dataclass(frozen=True)
class NaturalVariant:
    """A run beside a table's: a preset and method with settings the paper's text does not
    give, to find out why a figure of the table was not reproduced."""

    preset: str
    method: str
    label: str  # what it changes, for the report
    settings: Mapping[str, Any]


#: Section → its variants. Table 2's SGD+C and SGD+CR plateau at constant learning rates above
#: the paper's figures (SGD+C clips nearly every update; SGD+CR's rate is 5 times SGD+C's):
#: Mikolov et al. (2012), whose set-up the appendix follows, halve the rate once validation
#: stalls, a schedule the appendix does not mention.
NATURAL_VARIANTS: Final[dict[str, tuple[NaturalVariant, ...]]] = {
    "ptb": tuple(
        NaturalVariant(
            "ptb-char", method, "lr halved once validation stalls",
            {"lr_halving": True, "lr_halving_on": "valid-stall"},
        )
        for method in ("sgd-c", "sgd-cr")
    ),
}  # fmt: skip
#: Settings that say where or how a run executes, not what it learns.
_NOT_IDENTITY: Final[frozenset[str]] = frozenset({"data", "threads", "description"})
#: The settings every natural run's id holds, as when Tables 1–2 began; one declared later
#: enters an id only where it is not at its default, so stored runs keep their ids.
_ID_KEYS: Final[frozenset[str]] = frozenset({
    "task", "preset", "method", "hidden", "activation", "init", "init_scale", "lr", "optimizer",
    "momentum", "clip_mode", "clip", "alpha", "omega_form", "time_reduction", "nonfinite",
    "batch", "seed", "dtype", "dataset", "alpha_schedule", "lr_halving", "seq_len", "ahead",
    "train_biases", "predict_first", "epochs", "max_updates", "patience",
})  # fmt: skip

_SCHEMA: Final[str] = """
CREATE TABLE IF NOT EXISTS natural_runs (
    run_id     TEXT PRIMARY KEY,   -- hash of the resolved config without data path and threads
    preset     TEXT NOT NULL,
    method     TEXT NOT NULL,
    config     TEXT NOT NULL,      -- JSON: NaturalConfig.to_dict
    outcome    TEXT NOT NULL,      -- how training stopped (epochs, patience, max_updates)
    epochs     INTEGER NOT NULL,
    updates    INTEGER NOT NULL,
    best_epoch INTEGER,
    wall_time  REAL NOT NULL,      -- seconds of training, summed over resumed sessions
    train      REAL,               -- the table's metric, best validation parameters
    valid      REAL,
    test       REAL,
    run_dir    TEXT NOT NULL,      -- relative to the section directory
    host       TEXT,
    started    TEXT,
    finished   TEXT NOT NULL
)
"""


@dataclass(frozen=True)
class NaturalPlanned:
    section: str
    preset: str
    method: str
    config: NaturalConfig
    variant: str | None = None  # a NaturalVariant's label; None for the table's own run

    @property
    def run_id(self) -> str:
        settings = identity(self.config, always=_ID_KEYS, excluded=_NOT_IDENTITY)
        return hashlib.sha256(canonical_json(settings).encode()).hexdigest()[:16]

    def describe(self) -> str:
        own = f"{self.preset} {self.method}"
        return own if self.variant is None else f"{own} ({self.variant})"


def plan_natural(sections: Sequence[str], data: str | None) -> list[NaturalPlanned]:
    """The runs of Tables 1–2 for ``sections``, resolved as ``rnnstab train`` resolves them
    (``data``: the data folder, or None for ``$RNNSTAB_DATA``)."""

    def planned(
        section: str, preset: str, method: str, variant: NaturalVariant | None = None
    ) -> NaturalPlanned:
        flags: dict[str, Any] = {"task": preset, "method": method, "threads": 1}
        if data is not None:
            flags["data"] = data
        if variant is None:
            return NaturalPlanned(section, preset, method, resolve_natural_config(flags))
        config = resolve_natural_config({**flags, **variant.settings})
        return NaturalPlanned(section, preset, method, config, variant.label)

    out = []
    for section in sections:
        for preset, methods in NATURAL_STUDIES.get(section, ()):
            out += [planned(section, preset, method) for method in methods]
        for v in NATURAL_VARIANTS.get(section, ()):
            out.append(planned(section, v.preset, v.method, v))
    return out


@dataclass(frozen=True)
class NaturalRow:
    run_id: str
    preset: str
    method: str
    config: dict[str, Any]
    outcome: str
    epochs: int
    updates: int
    best_epoch: int | None
    wall_time: float
    train: float | None
    valid: float | None
    test: float | None
    run_dir: str
    finished: str

    @property
    def variant(self) -> NaturalVariant | None:
        """The variant this run is, told from its stored config (a table's own run shares
        its preset and method), None for a table's own run."""
        return next(
            (
                v
                for variants in NATURAL_VARIANTS.values()
                for v in variants
                if (v.preset, v.method) == (self.preset, self.method)
                and all(self.config.get(k) == x for k, x in v.settings.items())
            ),
            None,
        )


def _shape(config: Mapping[str, Any]) -> tuple[Any, ...]:
    """What an epoch's cost depends on: the data, the model's size, the segments."""
    return tuple(config.get(k) for k in ("dataset", "hidden", "seq_len", "batch", "dtype"))


def epochs_in_checkpoint(run_dir: Path) -> int:
    """The complete epochs in the checkpoint of a natural run (0 without a readable one)."""
    try:
        return NaturalState.from_json(read_state(run_dir).get("run_state")).epochs_done
    except (CheckpointError, FieldError):
        return 0


def natural_seconds_left(
    rows: Sequence[NaturalRow], todo: Sequence[tuple[NaturalPlanned, int]]
) -> float | None:
    """Core-seconds the natural runs ``todo`` (each with the epochs its checkpoint holds
    already) take at most, each to its whole epoch budget, at the mean seconds per epoch of
    the stored runs of its shape (:func:`_shape`); None when a run has no such stored run to
    go by. An upper bound: early stopping ends most runs sooner."""
    per_epoch: dict[tuple[Any, ...], list[float]] = {}
    for r in rows:
        if r.epochs:
            per_epoch.setdefault(_shape(r.config), []).append(r.wall_time / r.epochs)
    total = 0.0
    for planned, epochs_done in todo:
        seen = per_epoch.get(_shape(planned.config.to_dict()))
        if not seen:
            return None
        total += max(planned.config.epochs - epochs_done, 0) * sum(seen) / len(seen)
    return total


def _number(x: Any) -> float | None:
    return float(x) if isinstance(x, int | float) and math.isfinite(x) else None


class NaturalStore:
    """The ``natural_runs`` table of a section's store file."""

    def __init__(self, path: Path, conn: sqlite3.Connection) -> None:
        self.path = path
        self._conn = conn

    @classmethod
    def open(cls, path: Path, *, readonly: bool = False) -> NaturalStore | None:
        """None when reading a store that has no natural runs."""
        try:
            if readonly:
                if not path.is_file():
                    return None
                conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
                has = conn.execute(
                    "SELECT count(*) FROM sqlite_master WHERE name = 'natural_runs'"
                ).fetchone()[0]
                if not has:
                    conn.close()
                    return None
            else:
                # A result store like every section's (its identity checked, its schema in
                # place), with the natural runs' table beside the synthetic runs'.
                ResultStore.open(path).close()
                conn = sqlite3.connect(path, timeout=30, isolation_level=None)
                conn.execute(_SCHEMA)
        except sqlite3.Error as e:
            raise CheckpointError(f"cannot open the natural runs in {str(path)!r}: {e}") from None
        return cls(path, conn)

    @classmethod
    def empty(cls, path: Path) -> NaturalStore:
        """No natural runs, in memory, named ``path``: see :meth:`ResultStore.empty`."""
        conn = sqlite3.connect(":memory:", isolation_level=None)
        conn.execute(_SCHEMA)
        return cls(path, conn)

    def close(self) -> None:
        self._conn.close()

    def record(self, planned: NaturalPlanned, result: Mapping[str, Any]) -> bool:
        values = (
            planned.run_id, planned.preset, planned.method,
            json.dumps(planned.config.to_dict(), sort_keys=True), str(result["outcome"]),
            int(result["epochs"]), int(result["updates"]), result.get("best_epoch"),
            float(result["wall_time"]), _number(result.get("train")),
            _number(result.get("valid")), _number(result.get("test")), str(result["run_dir"]),
            result.get("host"), result.get("started"), utc_now(),
        )  # fmt: skip
        with self._conn:
            self._conn.execute("BEGIN IMMEDIATE")
            cur = self._conn.execute(
                f"INSERT INTO natural_runs VALUES ({', '.join('?' * len(values))}) "
                "ON CONFLICT(run_id) DO NOTHING",
                values,
            )
            return cur.rowcount == 1

    def rows(self) -> list[NaturalRow]:
        cols = (
            "run_id, preset, method, config, outcome, epochs, updates, best_epoch, wall_time, "
            "train, valid, test, run_dir, finished"
        )
        out = []
        for r in self._conn.execute(f"SELECT {cols} FROM natural_runs ORDER BY finished"):
            try:
                config = json.loads(r[3])
            except json.JSONDecodeError as e:
                raise CheckpointError(f"damaged store {str(self.path)!r}: {e}") from None
            out.append(NaturalRow(r[0], r[1], r[2], config, *r[4:]))
        return out

    def ids(self) -> set[str]:
        return {r for (r,) in self._conn.execute("SELECT run_id FROM natural_runs")}
