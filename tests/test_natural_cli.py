"""The natural tasks end to end, as users drive them: ``rnnstab train --task music|ptb-char``
on small slices of the real data files, ``rnnstab eval CKPT --split``, resume, exit codes and
one-line errors."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from rnnstab_cli.cli import main
from rnnstab_cli.cli.common import EXIT_CHECKPOINT, EXIT_DATA, EXIT_OK, EXIT_USAGE
from rnnstab_cli.datasets import DATA_ENV, load_music, load_ptb_char, num_segments
from rnnstab_cli.training.natural import load_natural_checkpoint

DATA = Path("/work/shared/data")
needs_data = pytest.mark.skipif(
    not DATA.exists(), reason=f"the real data sets are not at {DATA} (CI has them)"
)
#: Small models and short sequences: every run here takes a second or two.
TINY = ["--set", "hidden=12", "--set", "seq_len=25", "-q"]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def json_lines(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines()]


def assert_one_line_error(err: str, *needles: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), err
    for n in needles:
        assert n in lines[0], err


@pytest.fixture(autouse=True)
def _no_data_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(DATA_ENV, raising=False)


def music_slice(tmp_path: Path, name: str, pieces: int = 6, steps: int = 120) -> Path:
    """The first ``pieces`` pieces of each split of a real .mat file, each cut to ``steps``."""
    data = load_music(DATA / "polyphonic" / name)
    cells = {}
    for split, var in (("train", "traindata"), ("valid", "validdata"), ("test", "testdata")):
        cell = np.empty((1, pieces), dtype=object)
        for i, roll in enumerate(data.split(split)[:pieces]):
            cell[0, i] = roll[:steps].astype(np.uint8)
        cells[var] = cell
    path = tmp_path / name
    scipy.io.savemat(path, cells)
    return path


def ptb_slice(tmp_path: Path, train_lines: int = 25, other_lines: int = 10) -> Path:
    """The first lines of the real PTB files; valid/test keep only lines whose symbols the
    train slice has (the loader refuses unknown symbols)."""
    src = DATA / "ptb_char"
    train = (src / "ptb.char.train.txt").read_text().splitlines(keepends=True)[:train_lines]
    known = set("".join(train).split())
    out = tmp_path / "ptb"
    out.mkdir()
    (out / "ptb.char.train.txt").write_text("".join(train))
    for split in ("valid", "test"):
        lines = (src / f"ptb.char.{split}.txt").read_text().splitlines(keepends=True)
        kept = [ln for ln in lines[:500] if set(ln.split()) <= known][:other_lines]
        (out / f"ptb.char.{split}.txt").write_text("".join(kept))
    return out


@needs_data
@pytest.mark.parametrize(
    "dataset", ["jsb", "nottingham", "piano-midi", "musedata"], ids=lambda d: d
)
def test_music_trains_end_to_end(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, dataset: str
) -> None:
    files = {"jsb": "JSB_Chorales.mat", "nottingham": "Nottingham.mat",
             "piano-midi": "Piano_midi.mat", "musedata": "MuseData.mat"}  # fmt: skip
    data = music_slice(tmp_path, files[dataset])
    ck = tmp_path / "ck"
    code, out, err = run(
        capsys, "train", "--task", "music", "--dataset", dataset, "--data", str(data),
        "--epochs", "2", "--json", "--out", str(ck), "--method", "sgd-cr", *TINY,
    )  # fmt: skip
    assert code == EXIT_OK, err
    assert err == ""  # no progress when stderr is not a terminal
    lines = json_lines(out)
    epochs = [r for r in lines if r["event"] == "epoch"]
    assert [r["epoch"] for r in epochs] == [0, 1, 2]
    untrained, last = epochs[0]["valid"], epochs[-1]["valid"]
    assert epochs[0]["metric"] == "nll" and epochs[0]["unit"] == "nats/step"
    assert last < untrained / 2  # starts near 88·ln 2 ≈ 61 nats: anything learnt halves it
    assert [r["alpha"] for r in epochs[1:]] == [0.5 if dataset != "musedata" else 0.1] * 1 + [
        (0.5 if dataset != "musedata" else 0.1) / 2
    ]
    for r in epochs[1:]:
        for key in ("train", "lr", "grad_norm_mean", "grad_norm_max", "clip_rate", "wall_time"):
            assert isinstance(r[key], float) and math.isfinite(r[key]), key
    summary = lines[-1]
    assert summary["event"] == "summary" and summary["outcome"] == "epochs_done"
    assert summary["valid"] == last and summary["untrained_valid"] == untrained

    code, out, _ = run(capsys, "eval", str(ck), "--split", "test", "--split", "valid", "--json")
    assert code == EXIT_OK
    rows = json_lines(out)
    assert [r["split"] for r in rows] == ["test", "valid"]
    assert rows[1]["value"] == pytest.approx(summary["best_valid"])
    code, out, _ = run(capsys, "eval", str(ck), "--split", "test")
    assert code == EXIT_OK and "nats/step" in out and "test" in out


@needs_data
def test_ptb_trains_end_to_end_and_resumes_bit_identically(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = ptb_slice(tmp_path)
    monkeypatch.setenv(DATA_ENV, str(data))  # found through $RNNSTAB_DATA this time
    args = ["train", "--task", "ptb-char", "--method", "sgd-c", "--lr", "0.05",
            "--set", "batch=4", *TINY]  # fmt: skip
    whole, part = tmp_path / "whole", tmp_path / "part"
    per_epoch = num_segments(len(load_ptb_char(data).train), 4, 25)
    end, stop = per_epoch + per_epoch // 2, per_epoch // 2  # both in the middle of an epoch
    code, out, _ = run(capsys, *args, "--max-updates", str(end), "--out", str(whole), "--json")
    assert code == EXIT_OK
    lines = json_lines(out)
    assert lines[0]["metric"] == "bpc" and lines[0]["unit"] == "bits/char"
    assert lines[-1]["outcome"] == "max_updates" and lines[-1]["updates"] == end
    assert lines[-2]["complete"] is False and lines[-2]["epoch"] == 2
    assert lines[-1]["valid"] < lines[0]["valid"] - 0.5  # clearly better than untrained
    # The same run stopped in the middle of epoch 1 (state carried), then resumed.
    assert run(capsys, *args, "--max-updates", str(stop), "--out", str(part))[0] == EXIT_OK
    ck = load_natural_checkpoint(part)
    assert ck.carry is not None and ck.carry.shape == (4, 12) and ck.state.epoch.updates == stop
    code, out, _ = run(capsys, "train", "--resume", str(part), "--max-updates", str(end), "-q")
    assert code == EXIT_OK and f"after 1 complete epoch(s), {end} updates" in out
    a, b = load_natural_checkpoint(whole), load_natural_checkpoint(part)
    for name, value in a.params.items():
        np.testing.assert_array_equal(b.params[name], value, err_msg=name)
    np.testing.assert_array_equal(a.carry, b.carry)
    assert not a.params["b"].any() and not a.params["b_out"].any()  # no biases (appendix)
    code, out, _ = run(capsys, "eval", str(part), "--split", "valid", "--last", "--json")
    assert code == EXIT_OK
    assert json_lines(out)[0]["value"] == pytest.approx(lines[-1]["valid"])
    # Settings that shape the trajectory cannot change on resume.
    code, _, err = run(capsys, "train", "--resume", str(part), "--lr", "0.5")
    assert code == EXIT_USAGE
    assert_one_line_error(err, "--lr cannot change when resuming")


@needs_data
def test_lr_halving_and_alpha_schedule_in_the_epoch_records(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    data = music_slice(tmp_path, "JSB_Chorales.mat", pieces=4, steps=60)
    # A far too large learning rate makes the training error rise now and then.
    code, out, _ = run(
        capsys, "train", "--task", "music-jsb", "--data", str(data), "--epochs", "6",
        "--lr", "40", "--json", *TINY,
    )  # fmt: skip
    assert code == EXIT_OK
    epochs = [r for r in json_lines(out) if r["event"] == "epoch" and r["epoch"] > 0]
    for prev, cur in itertools.pairwise(epochs):
        assert cur["lr"] == prev["next_lr"]
        rose = cur["train"] > prev["train"]
        assert cur["next_lr"] == (cur["lr"] / 2 if rose else cur["lr"])
    assert any(r["lr_halved"] for r in epochs)
    assert [r["alpha"] for r in epochs] == pytest.approx([0.5 / t for t in range(1, 7)])


def test_missing_and_malformed_data_are_one_line_data_errors(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, _, err = run(capsys, "train", "--task", "ptb-char", "-q")
    assert code == EXIT_DATA
    assert_one_line_error(err, DATA_ENV)
    code, _, err = run(
        capsys, "train", "--task", "music", "--dataset", "jsb", "--data",
        str(tmp_path / "nope.mat"), "-q",
    )  # fmt: skip
    assert code == EXIT_DATA
    assert_one_line_error(err, "no such file")
    bad = tmp_path / "bad.mat"
    bad.write_bytes(b"not a MATLAB file at all")
    code, _, err = run(capsys, "train", "--task", "music-nottingham", "--data", str(bad), "-q")
    assert code == EXIT_DATA
    assert_one_line_error(err, "bad.mat")
    ptb = tmp_path / "ptb"
    ptb.mkdir()
    for split in ("train", "valid", "test"):
        (ptb / f"ptb.char.{split}.txt").write_text("a b _ c\n" if split == "train" else "a z\n")
    code, _, err = run(capsys, "train", "--task", "ptb-char", "--data", str(ptb), "-q")
    assert code == EXIT_DATA
    assert_one_line_error(err, "'z'")


def test_bad_usage_and_checkpoints(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(capsys, "train", "--task", "music", "-q")
    assert code == EXIT_USAGE
    assert_one_line_error(err, "--dataset")
    code, _, err = run(capsys, "train", "--task", "ptb-char", "--epochs", "0", "-q")
    assert code == EXIT_USAGE
    assert_one_line_error(err, "epochs")
    code, _, err = run(capsys, "train", "--task", "temporal-order", "--len", "20", "--epochs", "2")
    assert code == EXIT_USAGE
    assert_one_line_error(err, "natural tasks")
    code, _, err = run(capsys, "eval", str(tmp_path / "none"), "--split", "test")
    assert code == EXIT_CHECKPOINT
    # A tiny synthetic run gives a natural checkpoint to damage and misuse.
    rolls = np.zeros((1, 3), dtype=object)
    for i in range(3):
        rolls[0, i] = (np.random.default_rng(i).random((30, 88)) < 0.1).astype(np.uint8)
    mat = tmp_path / "tiny.mat"
    scipy.io.savemat(mat, {"traindata": rolls, "validdata": rolls, "testdata": rolls})
    ck = tmp_path / "ck"
    code, _, err = run(
        capsys, "train", "--task", "music-jsb", "--data", str(mat), "--epochs", "1",
        "--out", str(ck), *TINY,
    )  # fmt: skip
    assert code == EXIT_OK, err
    code, _, err = run(capsys, "eval", str(ck), "--split", "bogus")
    assert code == EXIT_USAGE
    assert_one_line_error(err, "--split")
    code, _, err = run(capsys, "eval", str(ck), "--len", "50")
    assert code == EXIT_USAGE
    code, _, err = run(capsys, "train", "--task", "music-jsb", "--data", str(mat), "--out",
                       str(ck), "-q")  # fmt: skip
    assert code == EXIT_USAGE
    assert_one_line_error(err, "already holds a checkpoint")
    params = next(ck.glob("params-*.safetensors"))
    params.write_bytes(params.read_bytes()[:-8] + b"garbage!")
    code, _, err = run(capsys, "eval", str(ck), "--split", "test")
    assert code == EXIT_CHECKPOINT
    assert_one_line_error(err, "damaged", "sha256")


def test_early_stopping_keeps_the_best_parameters(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Validation scores that only get worse after epoch 1: with patience 2 the run stops
    after epoch 3, and the checkpoint's best parameters are epoch 1's."""
    from rnnstab_cli.training.natural import loop, resolve_natural_config, run_natural
    from rnnstab_cli.training.natural.metrics import Score

    rolls = np.zeros((1, 2), dtype=object)
    for i in range(2):
        rolls[0, i] = (np.random.default_rng(i).random((20, 88)) < 0.1).astype(np.uint8)
    mat = tmp_path / "tiny.mat"
    scipy.io.savemat(mat, {"traindata": rolls, "validdata": rolls, "testdata": rolls})
    scores = iter([60.0, 5.0, 6.0, 7.0, 8.0, 9.0])  # untrained, then epochs 1, 2, ...
    params_at: list[dict] = []

    def fake_score(config, params, data, split, threads=None):  # type: ignore[no-untyped-def]
        params_at.append(params)
        return Score("nll", next(scores), 1)

    monkeypatch.setattr(loop, "score_split", fake_score)
    cfg = resolve_natural_config(
        {"task": "music-jsb", "data": str(mat), "epochs": 10, "patience": 2, "hidden": 8}
    )
    result = run_natural(cfg, out_dir=tmp_path / "ck")
    assert (result.outcome, result.epochs_done) == ("early_stopped", 3)
    assert (result.best_valid, result.best_epoch, result.valid) == (5.0, 1, 7.0)
    ck = load_natural_checkpoint(tmp_path / "ck")
    assert ck.best_params is not None
    for name, value in params_at[1].items():  # the parameters scored after epoch 1
        np.testing.assert_array_equal(ck.best_params[name], value)
    assert not np.array_equal(ck.params["W_rec"], ck.best_params["W_rec"])
