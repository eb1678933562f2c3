"""The success decision: screen first, declare "solved" only on the full sample
(training/synthetic/evaluate.py)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from rnnstab_cli import engine
from rnnstab_cli.taskgen import make_task
from rnnstab_cli.training.synthetic import evaluate
from rnnstab_cli.training.synthetic.evaluate import (
    ErrorMeasurement,
    Judgement,
    judge,
    measure_error,
)


def test_criterion_is_at_most_one_percent() -> None:
    assert ErrorMeasurement(100, 10_000, 50).within_criterion
    assert not ErrorMeasurement(101, 10_000, 50).within_criterion
    assert ErrorMeasurement(0, 10, 50).error_rate == 0.0


class FakeMeasure:
    """Stands in for measure_error: returns the queued error counts and records the calls."""

    def __init__(self, *errors: int) -> None:
        self.errors = list(errors)
        self.calls: list[int] = []

    def __call__(
        self, params: Any, task: Any, *, sequences: int, length: int, **kw: Any
    ) -> ErrorMeasurement:
        self.calls.append(sequences)
        return ErrorMeasurement(self.errors.pop(0), sequences, length)


def _judge(**kw: Any) -> Judgement:
    args = {
        "length": 50, "seed": 0, "at_update": 0, "full_sequences": 10_000,
        "screen_sequences": 1000, "activation": "tanh",
    } | kw  # fmt: skip
    return judge({}, make_task("temporal-order"), **args)


@pytest.mark.parametrize(
    ("errors", "calls", "full", "solved"),
    [
        ((500,), [1000], False, False),  # screen fails: the full test is not even run
        ((5, 50), [1000, 10_000], True, True),  # screen passes, full passes (0.5%)
        ((10, 101), [1000, 10_000], True, False),  # screen passes at exactly 1%, full fails
    ],
)
def test_screen_then_full(
    monkeypatch: pytest.MonkeyPatch,
    errors: tuple[int, ...],
    calls: list[int],
    full: bool,
    solved: bool,
) -> None:
    fake = FakeMeasure(*errors)
    monkeypatch.setattr(evaluate, "measure_error", fake)
    j = _judge()
    assert fake.calls == calls
    assert (j.full, j.solved) == (full, solved)


def test_a_screen_never_declares_solved(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeMeasure(0, 200)
    monkeypatch.setattr(evaluate, "measure_error", fake)
    j = _judge()
    assert not j.solved and j.full and j.measurement.errors == 200


def test_force_full_and_no_screen(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeMeasure(900, 900)
    monkeypatch.setattr(evaluate, "measure_error", fake)
    assert _judge(force_full=True).full
    assert _judge(screen_sequences=0).full
    assert fake.calls == [10_000, 10_000]


def test_measure_error_counts_sequences_with_errors() -> None:
    task = make_task("temporal-order")
    params = engine.init_params(6, 4, 4, seed=0, dtype="float32")
    rng = np.random.default_rng(0)
    m = measure_error(
        params, task, length=12, sequences=2500, rng=rng, activation="tanh"
    )  # spans several evaluation batches
    assert m.sequences == 2500 and 0 < m.errors <= 2500
    # The same seed draws the same sequences: the figure is reproducible.
    again = measure_error(
        params, task, length=12, sequences=2500, rng=np.random.default_rng(0), activation="tanh"
    )
    assert again == m


def test_a_length_range_is_tested_over_the_whole_range() -> None:
    """A model for lengths 10..30 is judged on lengths drawn from all of 10..30, not only on
    the longest: sequences of several different lengths appear in one measurement."""
    from rnnstab_cli import engine
    from rnnstab_cli.taskgen import make_task
    from rnnstab_cli.training.synthetic.evaluate import measure_error

    task = make_task("temporal-order")
    seen: list[int] = []
    real_sample = task.sample

    def spy(n: int, length: int, rng: np.random.Generator):  # type: ignore[no-untyped-def]
        seen.append(length)
        return real_sample(n, length, rng)

    task.sample = spy  # type: ignore[method-assign]
    params = engine.init_params(6, 4, 4, dtype="float32")
    m = measure_error(
        params,
        task,
        length=30,
        min_length=10,
        sequences=2000,
        rng=np.random.default_rng(0),
        activation="tanh",
    )
    assert m.sequences == 2000
    assert len(set(seen)) > 3 and min(seen) >= 10 and max(seen) <= 30
