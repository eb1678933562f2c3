"""The training loop: resume bit-identity, Ctrl-C, stopping (training/synthetic/loop.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rnnstab_cli import engine
from rnnstab_cli.errors import CheckpointError, UsageError
from rnnstab_cli.training.checkpoint import load_checkpoint
from rnnstab_cli.training.config import TrainConfig, resolve_config
from rnnstab_cli.training.records import ChunkReport, EvalRecord, TrainingInterrupted
from rnnstab_cli.training.synthetic import loop
from rnnstab_cli.training.synthetic.evaluate import ErrorMeasurement, Judgement


def tiny(**over: Any) -> TrainConfig:
    """A config that trains in well under a second: few units, short sequences, small tests.
    eval_every is not a multiple of the chunk, so evaluations split chunks."""
    flags = {
        "task": "temporal-order", "len": "10:16", "hidden": 6, "batch": 4, "max_updates": 240,
        "eval_every": 70, "chunk": 25, "eval_sequences": 300, "screen_sequences": 60,
        "lr": 0.05,
    } | over  # fmt: skip
    return resolve_config(flags)


def assert_same_params(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert a[k].dtype == b[k].dtype
        assert np.array_equal(a[k], b[k]), f"{k} differs"


@pytest.mark.parametrize("optimizer", ["sgd", "momentum"])
def test_resume_is_bit_identical(tmp_path: Path, optimizer: str) -> None:
    cfg = tiny(optimizer=optimizer)
    straight = loop.run_training(cfg)
    half = loop.run_training(cfg.replace(max_updates=120), out_dir=tmp_path)
    assert half.updates == 120 and half.outcome == "budget_exhausted"
    resumed = loop.run_training(cfg, out_dir=tmp_path, resume=True)
    assert resumed.updates == straight.updates == 240
    assert_same_params(straight.params, resumed.params)

    # The later evaluations match too: same test sets, same averages (the half run's extra
    # evaluation at its budget only shifts the evaluation counter).
    def comparable(e: EvalRecord) -> dict[str, Any]:
        return e.to_json() | {"wall_time": 0, "eval_index": 0}

    assert [comparable(e) for e in straight.evals[-2:]] == [
        comparable(e) for e in resumed.evals[-2:]
    ]


def test_thread_count_does_not_change_the_result() -> None:
    a = loop.run_training(tiny(threads=1, max_updates=60))
    b = loop.run_training(tiny(threads=2, max_updates=60))
    assert_same_params(a.params, b.params)


def _interrupting_steps(monkeypatch: pytest.MonkeyPatch, on_call: int) -> None:
    """Make Trainer.steps behave like the engine on Ctrl-C: the call applies half of its
    updates, then KeyboardInterrupt escapes."""
    real = engine.Trainer.steps
    calls = {"n": 0}

    def steps(self: engine.Trainer, inputs: Any, targets: Any, mask: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == on_call:
            h = max(1, len(inputs) // 2)
            real(self, inputs[:h], targets[:h], mask[:h])
            raise KeyboardInterrupt
        return real(self, inputs, targets, mask)

    monkeypatch.setattr(engine.Trainer, "steps", steps)


def test_ctrl_c_inside_the_engine_saves_a_consistent_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = tiny(optimizer="momentum")
    straight = loop.run_training(cfg)
    _interrupting_steps(monkeypatch, on_call=5)
    with pytest.raises(TrainingInterrupted) as info:
        loop.run_training(cfg, out_dir=tmp_path)
    monkeypatch.undo()
    assert info.value.checkpoint == tmp_path
    saved = load_checkpoint(tmp_path)
    # The half-applied engine call was rolled back: the counters match the parameters.
    assert saved.state.updates == info.value.updates == 75
    resumed = loop.run_training(cfg, out_dir=tmp_path, resume=True)
    assert_same_params(straight.params, resumed.params)


class StopAfter:
    """A progress sink that presses Ctrl-C after ``n`` engine calls."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.events: list[str] = []

    def start(self, config: TrainConfig, updates: int, wall_time: float) -> None:
        self.events.append("start")

    def chunk(self, report: ChunkReport) -> None:
        self.n -= 1
        if self.n == 0:
            raise KeyboardInterrupt

    def evaluation(self, record: EvalRecord) -> None:
        self.events.append("eval")

    def finish(self) -> None:
        self.events.append("finish")


def test_ctrl_c_between_calls_and_resume(tmp_path: Path) -> None:
    cfg = tiny()
    straight = loop.run_training(cfg)
    sink = StopAfter(4)
    with pytest.raises(KeyboardInterrupt):  # TrainingInterrupted is one
        loop.run_training(cfg, out_dir=tmp_path, progress=sink)
    assert sink.events[0] == "start" and sink.events[-1] == "finish"
    resumed = loop.run_training(cfg, out_dir=tmp_path, resume=True)
    assert_same_params(straight.params, resumed.params)


def test_ctrl_c_without_out_dir_reports_no_checkpoint() -> None:
    with pytest.raises(TrainingInterrupted) as info:
        loop.run_training(tiny(), progress=StopAfter(1))
    assert info.value.checkpoint is None and info.value.updates == 25


def test_metrics_log_and_callback_agree(tmp_path: Path) -> None:
    seen: list[EvalRecord] = []
    result = loop.run_training(tiny(), out_dir=tmp_path, on_eval=seen.append)
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(x) for x in lines] == [r.to_json() for r in seen]
    assert [r.updates for r in seen] == [70, 140, 210, 240]
    assert seen[-1].test_full and seen[-1].test_sequences == 300  # a run ends on the full test
    assert result.test_error == seen[-1].test_error
    assert all(r.test_length == 16 for r in seen)  # a range is tested at its longest length


def test_stops_when_solved_and_resume_of_a_solved_run_is_a_no_op(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    verdicts = iter([False, True])

    def fake_judge(*args: Any, **kw: Any) -> Judgement:
        solved = next(verdicts)
        return Judgement(ErrorMeasurement(0 if solved else 50, 300, 16), full=solved)

    monkeypatch.setattr(loop, "judge", fake_judge)
    result = loop.run_training(tiny(), out_dir=tmp_path)
    assert result.solved and result.outcome == "solved" and result.updates == 140
    again = loop.run_training(tiny(), out_dir=tmp_path, resume=True)
    assert again.solved and again.updates == 140 and again.evals == []


def test_refuses_to_overwrite_a_checkpoint(tmp_path: Path) -> None:
    loop.run_training(tiny(max_updates=25), out_dir=tmp_path)
    with pytest.raises(UsageError, match="already holds a checkpoint"):
        loop.run_training(tiny(), out_dir=tmp_path)


def test_refuses_to_resume_with_a_different_trajectory(tmp_path: Path) -> None:
    loop.run_training(tiny(max_updates=25), out_dir=tmp_path)
    with pytest.raises(CheckpointError, match=r"lr=0\.05"):
        loop.run_training(tiny(lr=0.01), out_dir=tmp_path, resume=True)
    # The budget and the evaluation schedule may change.
    r = loop.run_training(tiny(max_updates=50, eval_every=50), out_dir=tmp_path, resume=True)
    assert r.updates == 50


def test_float64_and_regression_tasks_run() -> None:
    r = loop.run_training(tiny(task="addition", dtype="float64", lr=0.01, alpha=0.5))
    assert r.params["W_rec"].dtype == np.float64 and r.updates == 240
    assert r.test_error is not None and 0 <= r.test_error <= 1
