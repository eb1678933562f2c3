"""What a training run reports: per engine call, per evaluation, and at the end.

These are plain values; :mod:`.progress` renders them for people and the CLI's ``--json``
streams :meth:`EvalRecord.to_json` / :meth:`RunResult.to_json` as JSON lines.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal, Protocol

import numpy as np

from rnnstab_cli.training.config import TrainConfig

Outcome = Literal["solved", "budget_exhausted"]
OUTCOMES: Final[tuple[str, ...]] = ("solved", "budget_exhausted")


def json_number(x: float | None) -> float | None:
    """JSON has no NaN or infinity: those become null."""
    return None if x is None or not math.isfinite(x) else float(x)


def json_safe(value: Any) -> Any:
    """``value`` with every float inside (lists, dicts) through :func:`json_number`: the
    diagnostics of a model whose states overflowed hold infinities."""
    if isinstance(value, float):
        return json_number(value)
    if isinstance(value, Mapping):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


@dataclass(frozen=True)
class ChunkReport:
    """One engine call of ``n`` updates, ending at ``updates``."""

    updates: int
    n: int
    seconds: float  # wall time of the engine call
    wall_time: float  # run total so far
    loss: float  # means over the call's finite updates
    grad_norm: float  # before clipping
    omega: float
    clip_rate: float  # fraction of the call's updates where clipping fired
    skipped: int  # updates not applied: a non-finite gradient, or a spike the skip rule left out


@dataclass(frozen=True)
class EvalRecord:
    """One evaluation: training statistics averaged since the previous one, and the test error
    (on a screen of fewer sequences unless ``test_full``)."""

    eval_index: int
    updates: int
    wall_time: float
    loss: float
    grad_norm: float
    clip_rate: float
    omega: float
    skipped_rate: float
    test_error: float
    test_sequences: int
    test_full: bool
    test_length: int
    spectral_radius: float
    lr: float
    alpha: float
    solved: bool
    #: Gradient-flow diagnostics (``--diagnostics``), see :mod:`.synthetic.diagnostics`.
    diagnostics: Mapping[str, Any] | None = None
    #: The clipping rule's threshold in force, averaged over the period's updates that had one
    #: (NaN → null: no clipping, or an adaptive rule still in its warm-up).
    clip_threshold: float = math.nan

    def to_json(self) -> dict[str, Any]:
        out = {
            "event": "eval",
            "eval_index": self.eval_index,
            "updates": self.updates,
            "wall_time": round(self.wall_time, 3),
            "loss": json_number(self.loss),
            "grad_norm": json_number(self.grad_norm),
            "clip_rate": json_number(self.clip_rate),
            "clip_threshold": json_number(self.clip_threshold),
            "omega": json_number(self.omega),
            "skipped_rate": json_number(self.skipped_rate),
            "test_error": json_number(self.test_error),
            "test_sequences": self.test_sequences,
            "test_full": self.test_full,
            "test_length": self.test_length,
            "spectral_radius": json_number(self.spectral_radius),
            "lr": self.lr,
            "alpha": self.alpha,
            "solved": self.solved,
        }
        if self.diagnostics is not None:
            out["diagnostics"] = json_safe(dict(self.diagnostics))
        return out


@dataclass(frozen=True)
class RunResult:
    """How a run ended. ``test_error`` is the last evaluation's, on ``test_sequences``
    sequences (the full test sample at the end of every run)."""

    config: TrainConfig
    outcome: Outcome
    updates: int
    wall_time: float
    test_error: float | None
    test_sequences: int | None
    test_full: bool
    params: dict[str, np.ndarray] = field(repr=False)
    evals: list[EvalRecord] = field(default_factory=list, repr=False)  # this session's
    out_dir: Path | None = None

    @property
    def solved(self) -> bool:
        return self.outcome == "solved"

    def to_json(self) -> dict[str, Any]:
        c = self.config
        return {
            "event": "summary",
            "solved": self.solved,
            "outcome": self.outcome,
            "updates": self.updates,
            "wall_time": round(self.wall_time, 3),
            "test_error": json_number(self.test_error),
            "test_sequences": self.test_sequences,
            "test_full": self.test_full,
            "test_length": c.eval_length,
            "task": c.label,
            "len": str(c.length),
            "method": c.method,
            "max_updates": c.max_updates,
            "checkpoint": str(self.out_dir) if self.out_dir is not None else None,
        }


class ProgressSink(Protocol):
    """Receives a run's events; :mod:`.progress` has the terminal and log implementations."""

    def start(self, config: TrainConfig, updates: int, wall_time: float) -> None: ...

    def chunk(self, report: ChunkReport) -> None: ...

    def evaluation(self, record: EvalRecord) -> None: ...

    def finish(self) -> None: ...


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C during :func:`run_training`. Still a KeyboardInterrupt, so callers that do not
    care stop as usual; ``updates`` is where the run stands and ``checkpoint`` where it was
    saved (``None`` without an output directory)."""

    def __init__(self, updates: int, checkpoint: Path | None) -> None:
        super().__init__(f"interrupted at {updates} updates")
        self.updates = updates
        self.checkpoint = checkpoint
