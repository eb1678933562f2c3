"""Test error on freshly sampled sequences, and the success decision.

The paper's criterion (appendix, after Martens & Sutskever 2011): a task is solved when at most
1% of 10,000 fresh test sequences are errors. Measuring 10,000 sequences at every evaluation
would cost as much as many training updates, so :func:`judge` first screens a smaller sample
and runs the full 10,000 only when the screen is already at or below 1%. "Solved" is only ever
declared on the full sample; a screen's figure is reported as such (``full = False``).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from rnnstab_cli.engine import forward
from rnnstab_cli.taskgen import SOLVED_ERROR_RATE, Task

#: Sequences per forward call: bounds memory (the engine keeps (B, T, H) states) at any length.
EVAL_BATCH = 1000
#: Sequences per drawn length when testing a length range: 10,000 test sequences then cover
#: 40 lengths of the range.
RANGE_BATCH = 250

#: RNG stream tags: (seed, tag, index) keeps training data, screens, full tests and the eval
#: command's test sets apart.
STREAM_FULL_TEST = 2
STREAM_SCREEN = 3
STREAM_EVAL_COMMAND = 4


def eval_command_rng(seed: int, length: int) -> np.random.Generator:
    """The test sequences of ``rnnstab eval --seed SEED --len LENGTH``: the same for every
    checkpoint, so models are compared on one test set and a stored score can be checked."""
    return np.random.default_rng([seed, STREAM_EVAL_COMMAND, length])


@dataclass(frozen=True)
class ErrorMeasurement:
    """``errors`` of ``sequences`` fresh sequences of nominal length ``length`` were wrong."""

    errors: int
    sequences: int
    length: int

    @property
    def error_rate(self) -> float:
        return self.errors / self.sequences

    @property
    def within_criterion(self) -> bool:
        """The paper's criterion: at most 1% errors."""
        return self.within(SOLVED_ERROR_RATE)

    def within(self, solve_error: float) -> bool:
        return self.error_rate <= solve_error


@dataclass(frozen=True)
class Judgement:
    """One evaluation: the figure to report and whether it proves the task solved."""

    measurement: ErrorMeasurement
    full: bool  # measured on the full test sample (else a screen)
    solve_error: float = SOLVED_ERROR_RATE

    @property
    def solved(self) -> bool:
        return self.full and self.measurement.within(self.solve_error)


def measure_error(
    params: Mapping[str, np.ndarray],
    task: Task,
    *,
    length: int,
    sequences: int,
    min_length: int | None = None,
    rng: np.random.Generator,
    activation: str,
    threads: int | None = None,
) -> ErrorMeasurement:
    """Error count of the model ``params`` on ``sequences`` fresh sequences from ``rng``.

    With ``min_length`` below ``length`` the test covers the range as training does: each
    group of :data:`RANGE_BATCH` sequences has a length drawn uniformly from
    [min_length, length], so a model trained for a range is judged on all of it.
    """
    dtype = params["W_rec"].dtype
    ranged = min_length is not None and min_length < length
    errors = 0
    done = 0
    while done < sequences:
        n = min(RANGE_BATCH if ranged else EVAL_BATCH, sequences - done)
        t = int(rng.integers(min_length or length, length + 1)) if ranged else length
        batch = task.sample(n, t, rng)
        inputs = batch.inputs if batch.inputs.dtype == dtype else batch.inputs.astype(dtype)
        outputs = forward(params, inputs, activation, threads=threads)  # (T, B, O)
        errors += int(np.count_nonzero(task.errors(outputs, batch)))
        done += n
    return ErrorMeasurement(errors, sequences, length)


def judge(
    params: Mapping[str, np.ndarray],
    task: Task,
    *,
    length: int,
    seed: int,
    at_update: int,
    min_length: int | None = None,
    full_sequences: int,
    screen_sequences: int,
    activation: str,
    threads: int | None = None,
    force_full: bool = False,
    solve_error: float = SOLVED_ERROR_RATE,
) -> Judgement:
    """Screen, then (only if the screen passes, or ``force_full``) the full test.

    The test sets depend only on (seed, at_update): an evaluation after u updates sees the same
    sequences whether the run was resumed, had its budget extended or evaluated more often.
    (Keyed by the update count rather than an evaluation counter, which the extra evaluation
    at the end of a budget would shift.)
    """
    measure = functools.partial(
        measure_error,
        params,
        task,
        length=length,
        min_length=min_length,
        activation=activation,
        threads=threads,
    )
    if not force_full and 0 < screen_sequences < full_sequences:
        screen_rng = np.random.default_rng([seed, STREAM_SCREEN, at_update])
        screen = measure(sequences=screen_sequences, rng=screen_rng)
        if not screen.within(solve_error):
            return Judgement(screen, full=False, solve_error=solve_error)
    full_rng = np.random.default_rng([seed, STREAM_FULL_TEST, at_update])
    full = measure(sequences=full_sequences, rng=full_rng)
    return Judgement(full, full=True, solve_error=solve_error)
