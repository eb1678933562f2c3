"""The steps both training loops take around their updates (:mod:`.training.run_session`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rnnstab_cli import engine
from rnnstab_cli.errors import CheckpointError, UsageError
from rnnstab_cli.training import run_session
from rnnstab_cli.training.config import TrainConfig
from rnnstab_cli.training.natural import natural_preset_config
from rnnstab_cli.training.records import TrainingInterrupted


def test_initial_params_are_those_of_the_config_alone() -> None:
    config = TrainConfig(task="temporal-order", length="50", hidden=7, init_scale=0.2, seed=3)
    got = run_session.initial_params(config, 6, 4)
    want = engine.init_params(6, 7, 4, init="normal", scale=0.2, seed=3, dtype="float32")
    assert got.keys() == want.keys()
    for name in want:
        np.testing.assert_array_equal(got[name], want[name])
    natural = natural_preset_config("ptb-char", hidden=7, seed=3)
    assert run_session.initial_params(natural, 5, 5)["W_rec"].shape == (7, 7)


def test_refuse_changes_names_each_changed_key_in_the_given_order() -> None:
    old = {"lr": 0.1, "seed": 1, "threads": 2}
    run_session.refuse_changes({**old, "threads": 8}, old, ["lr", "seed"])  # threads is not checked
    with pytest.raises(CheckpointError) as e:
        run_session.refuse_changes({"lr": 0.2, "seed": 2, "threads": 2}, old, ["seed", "lr"])
    assert str(e.value) == (
        "cannot resume: the checkpoint was trained with seed=1 (now 2), lr=0.1 (now 0.2)"
    )


def test_resume_and_overwrite_guards(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="resuming needs the checkpoint directory"):
        run_session.resume_dir(None)
    assert run_session.resume_dir(tmp_path) == tmp_path
    run_session.refuse_overwrite(None)
    run_session.refuse_overwrite(tmp_path)  # nothing there yet
    (tmp_path / "state.json").write_text("{}")
    with pytest.raises(UsageError, match="already holds a checkpoint"):
        run_session.refuse_overwrite(tmp_path)


def _trainer(optimizer: str = "momentum") -> engine.Trainer:
    config = TrainConfig(task="temporal-order", length="50", hidden=4, optimizer=optimizer)
    params = engine.init_params(6, 4, 4, seed=0, dtype="float32")
    return run_session.engine_trainer(config, params, loss="softmax_ce", alpha=0.0)


def test_snapshot_puts_back_params_and_optimizer_state() -> None:
    trainer = _trainer()
    snap = run_session.TrainerSnapshot.of(trainer)
    rng = np.random.default_rng(0)
    inputs = rng.standard_normal((2, 5, 3, 6)).astype(np.float32)
    targets = np.zeros((2, 5, 3), dtype=np.int64)
    mask = np.ones((2, 5, 3), dtype=np.float32)
    trainer.steps(inputs, targets, mask)
    assert not np.array_equal(trainer.params["W_rec"], snap.params["W_rec"])
    snap.restore(trainer)
    np.testing.assert_array_equal(trainer.params["W_rec"], snap.params["W_rec"])
    state = trainer.optimizer_state()
    assert state is not None and snap.optimizer_state is not None
    for name in state:
        np.testing.assert_array_equal(state[name], snap.optimizer_state[name])


def test_restore_optimizer_names_the_checkpoint_on_a_mismatch(tmp_path: Path) -> None:
    trainer = _trainer()
    run_session.restore_optimizer(trainer, None, tmp_path)  # plain SGD saved none: nothing to do
    with pytest.raises(CheckpointError, match=str(tmp_path)):
        run_session.restore_optimizer(trainer, {"W_rec": np.zeros((9, 9), np.float32)}, tmp_path)


def test_wall_clock_adds_this_session_to_earlier_ones() -> None:
    wall = run_session.WallClock(100.0)
    first = wall()
    assert 100.0 <= first <= wall()


def test_interrupted_says_where_the_run_was_saved(tmp_path: Path) -> None:
    saved: list[bool] = []
    e = run_session.interrupted(lambda: saved.append(True), 42, tmp_path)
    assert isinstance(e, TrainingInterrupted) and saved == [True]
    assert (e.updates, e.checkpoint) == (42, tmp_path)

    def fail() -> None:
        raise CheckpointError("disk full")

    assert run_session.interrupted(fail, 42, tmp_path).checkpoint is None


def test_diverged_message() -> None:
    e = run_session.TrainingDiverged.after(7, FloatingPointError("gradient is NaN"))
    assert str(e) == "training diverged after 7 updates: gradient is NaN"
    assert e.exit_code == 1
