"""Checkpoints: round trip, atomic replacement, damage detection (training/checkpoint.py)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from rnnstab_cli import engine
from rnnstab_cli.errors import CheckpointError
from rnnstab_cli.training import checkpoint as ck
from rnnstab_cli.training.checkpoint import (
    Checkpoint,
    RunState,
    load_checkpoint,
    read_metrics,
    save_checkpoint,
)
from rnnstab_cli.training.config import resolve_config

CFG = resolve_config({"task": "temporal-order", "len": "20", "hidden": 5, "optimizer": "momentum"})


def _ckpt(updates: int, fill: float = 0.0) -> Checkpoint:
    params = engine.init_params(6, 5, 4, seed=updates, dtype="float32")
    opt = {k: np.full_like(v, fill) for k, v in params.items()}
    return Checkpoint(CFG, params, opt, RunState(updates=updates, eval_index=updates // 10))


def _metrics(n: int) -> list[dict[str, int]]:
    return [{"eval_index": i} for i in range(n)]


def test_round_trip(tmp_path: Path) -> None:
    c = _ckpt(20, fill=0.5)
    save_checkpoint(tmp_path, c, _metrics(2))
    got = load_checkpoint(tmp_path)
    assert got.config == CFG
    assert got.state == c.state
    for k in c.params:
        np.testing.assert_array_equal(got.params[k], c.params[k])
        assert got.params[k].dtype == np.float32
    assert got.optimizer_state is not None
    np.testing.assert_array_equal(got.optimizer_state["W_rec"], c.optimizer_state["W_rec"])
    assert read_metrics(tmp_path, 2) == _metrics(2)
    state = json.loads((tmp_path / "state.json").read_text())
    assert state["counters"] == {"updates": 20, "chunk_index": 0, "chunk_offset": 20,
                                 "eval_index": 2}  # fmt: skip
    assert state["dtype"] == "float32" and state["library_version"]


def test_an_archived_log_reads_the_same_and_a_later_checkpoint_replaces_it(
    tmp_path: Path,
) -> None:
    save_checkpoint(tmp_path, _ckpt(20), _metrics(2))
    lines = (tmp_path / ck.METRICS_FILE).read_text().splitlines()
    ck.archive_metrics(tmp_path, lines)
    assert not (tmp_path / ck.METRICS_FILE).exists()
    assert read_metrics(tmp_path, 2) == _metrics(2)
    # A run continued from the archive writes a plain log again; the stale archive goes.
    save_checkpoint(tmp_path, _ckpt(30), _metrics(3))
    assert not (tmp_path / ck.METRICS_ARCHIVE).exists()
    assert read_metrics(tmp_path, 3) == _metrics(3)


def test_a_truncated_archive_is_damage(tmp_path: Path) -> None:
    save_checkpoint(tmp_path, _ckpt(20), _metrics(2))
    ck.archive_metrics(tmp_path, (tmp_path / ck.METRICS_FILE).read_text().splitlines())
    archive = tmp_path / ck.METRICS_ARCHIVE
    archive.write_bytes(archive.read_bytes()[:-12])
    with pytest.raises(CheckpointError, match=r"cannot read metrics\.jsonl"):
        read_metrics(tmp_path, 2)


def test_old_tensor_files_are_removed(tmp_path: Path) -> None:
    save_checkpoint(tmp_path, _ckpt(10), _metrics(1))
    save_checkpoint(tmp_path, _ckpt(20), _metrics(2))
    names = sorted(p.name for p in tmp_path.iterdir())
    assert len([n for n in names if n.startswith("params-")]) == 1
    assert len([n for n in names if n.startswith("optimizer-")]) == 1
    assert not [n for n in names if n.endswith(".tmp")]
    assert load_checkpoint(tmp_path).state.updates == 20


def test_a_crash_before_the_state_file_keeps_the_previous_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    save_checkpoint(tmp_path, _ckpt(10), _metrics(1))
    real = ck._write_atomic

    def crash_on_state(path: Path, data: bytes) -> None:
        if path.name == ck.STATE_FILE:
            raise OSError(28, "No space left on device")
        real(path, data)

    monkeypatch.setattr(ck, "_write_atomic", crash_on_state)
    with pytest.raises(CheckpointError, match="cannot write checkpoint"):
        save_checkpoint(tmp_path, _ckpt(20), _metrics(2))
    monkeypatch.undo()
    got = load_checkpoint(tmp_path)  # the new tensor files exist but nothing points at them
    assert got.state.updates == 10
    np.testing.assert_array_equal(got.params["W_rec"], _ckpt(10).params["W_rec"])
    # The metrics log was already rewritten with 2 records; only the first belongs to it.
    assert read_metrics(tmp_path, got.state.eval_index) == _metrics(1)


def test_a_torn_write_leaves_no_partial_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    save_checkpoint(tmp_path, _ckpt(10), _metrics(1))
    before = (tmp_path / "state.json").read_bytes()

    def torn_replace(src: str, dst: str) -> None:
        raise OSError(5, "I/O error")

    monkeypatch.setattr(ck.os, "replace", torn_replace)
    with pytest.raises(CheckpointError):
        save_checkpoint(tmp_path, _ckpt(20), _metrics(2))
    monkeypatch.undo()
    assert (tmp_path / "state.json").read_bytes() == before
    assert not list(tmp_path.glob(".*.tmp"))
    assert load_checkpoint(tmp_path).state.updates == 10


def _params_file(d: Path) -> Path:
    return next(d.glob("params-*.safetensors"))


@pytest.mark.parametrize(
    ("damage", "match"),
    [
        (lambda d: _params_file(d).write_bytes(_params_file(d).read_bytes()[:-7]), "sha256"),
        (lambda d: _params_file(d).unlink(), "missing"),
        (lambda d: (d / "state.json").write_text("{not json"), "unreadable"),
        (lambda d: (d / "state.json").unlink(), "no checkpoint"),
        (lambda d: (d / "state.json").write_text('{"format": "other"}'), "not an rnnstab"),
    ],
)
def test_damage_is_detected(tmp_path: Path, damage: Callable[[Path], object], match: str) -> None:
    save_checkpoint(tmp_path, _ckpt(10), _metrics(1))
    damage(tmp_path)
    with pytest.raises(CheckpointError, match=match):
        load_checkpoint(tmp_path)


def test_flipped_byte_is_detected(tmp_path: Path) -> None:
    save_checkpoint(tmp_path, _ckpt(10), _metrics(1))
    f = _params_file(tmp_path)
    data = bytearray(f.read_bytes())
    data[-3] ^= 0x01
    f.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="sha256"):
        load_checkpoint(tmp_path)


def test_incompatible_version_and_shapes(tmp_path: Path) -> None:
    save_checkpoint(tmp_path, _ckpt(10), _metrics(1))
    state_path = tmp_path / "state.json"
    state = json.loads(state_path.read_text())
    state["format_version"] = 99
    state_path.write_text(json.dumps(state))
    with pytest.raises(CheckpointError, match="format version 99"):
        load_checkpoint(tmp_path)
    state["format_version"] = ck.FORMAT_VERSION
    state["config"]["hidden"] = 6  # the tensors are 5 units wide
    state_path.write_text(json.dumps(state))
    with pytest.raises(CheckpointError, match="expected float32"):
        load_checkpoint(tmp_path)
    state["config"]["hidden"] = -1
    state_path.write_text(json.dumps(state))
    with pytest.raises(CheckpointError, match="incompatible config"):
        load_checkpoint(tmp_path)


def test_a_synthetic_checkpoint_always_needs_its_parameters(tmp_path: Path) -> None:
    """Version 2 (a natural run that kept only its best parameters) is read, but a synthetic
    checkpoint without its params file is incomplete whatever its version says; a version
    that is not an integer is refused."""
    save_checkpoint(tmp_path, _ckpt(10), _metrics(1))
    state_path = tmp_path / "state.json"
    state = json.loads(state_path.read_text())
    assert state["format_version"] == ck.FORMAT_VERSION  # full checkpoints stay version 1
    state["format_version"] = ck.BEST_ONLY_FORMAT_VERSION
    state_path.write_text(json.dumps(state))
    assert load_checkpoint(tmp_path).state.updates == 10
    del state["files"]["params"]
    state["last_params_dropped"] = True
    state_path.write_text(json.dumps(state))
    with pytest.raises(CheckpointError, match=r"incomplete.*'params'"):
        load_checkpoint(tmp_path)
    state["format_version"] = True  # equal to 1 in Python, not a version
    state_path.write_text(json.dumps(state))
    with pytest.raises(CheckpointError, match="format version True"):
        load_checkpoint(tmp_path)


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="not a directory"):
        load_checkpoint(tmp_path / "nope")
