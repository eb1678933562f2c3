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
from rnnstab_cli.errors import CheckpointError
from rnnstab_cli.training import checkpoint as checkpoint_io
from rnnstab_cli.training.checkpoint import BEST_ONLY_FORMAT_VERSION, FORMAT_VERSION, model_shapes
from rnnstab_cli.training.natural import load_natural_checkpoint
from rnnstab_cli.training.natural.checkpoint import (
    NaturalCheckpoint,
    drop_last_params,
    save_natural_checkpoint,
)

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
@pytest.mark.parametrize(
    ("rule", "own_parameter"),
    [
        (["--clip-mode", "auto", "--set", "clip_window=5"], "clip_window=6"),
        (["--clip-mode", "zscore"], "clip_z=3.0"),
    ],
)
def test_an_adaptive_clipping_rule_resumes_bit_identically(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, rule: list[str], own_parameter: str
) -> None:
    data = ptb_slice(tmp_path)
    args = ["train", "--task", "ptb-char", "--data", str(data), "--method", "sgd-c",
            "--lr", "0.05", "--set", "batch=4", *rule, *TINY]  # fmt: skip
    whole, part = tmp_path / "whole", tmp_path / "part"
    per_epoch = num_segments(len(load_ptb_char(data).train), 4, 25)
    end, stop = per_epoch + per_epoch // 2, per_epoch // 2 + 3
    code, out, _ = run(capsys, *args, "--max-updates", str(end), "--out", str(whole), "--json")
    assert code == EXIT_OK
    epochs = [r for r in json_lines(out) if r["event"] == "epoch" and r["epoch"] > 0]
    # The rule's threshold moves with the norms: a mean over the epoch, not the fixed `clip`.
    assert epochs[0]["clip_threshold"] is not None and epochs[0]["clip_threshold"] != 45.0
    assert run(capsys, *args, "--max-updates", str(stop), "--out", str(part))[0] == EXIT_OK
    saved = load_natural_checkpoint(part).clip_state
    assert saved is not None and np.isfinite(saved).all() and saved.any()
    code, _, _ = run(capsys, "train", "--resume", str(part), "--max-updates", str(end), "-q")
    assert code == EXIT_OK
    a, b = load_natural_checkpoint(whole), load_natural_checkpoint(part)
    for name, value in a.params.items():
        np.testing.assert_array_equal(b.params[name], value, err_msg=name)
    np.testing.assert_array_equal(a.clip_state, b.clip_state)
    # A rule's parameter shapes the trajectory: it cannot change on resume.
    code, _, err = run(capsys, "train", "--resume", str(part), "--set", own_parameter)
    assert code == EXIT_USAGE
    key = own_parameter.split("=")[0]
    assert_one_line_error(err, "--" + key.replace("_", "-"), "cannot change when resuming")


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


def test_valid_stall_schedule_halves_after_a_stall_and_converges_across_a_resume(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Mikolov et al.'s rule on scripted validation scores: epoch 3 improves by less than a
    factor 1.003, so the rate halves from then on; epoch 5 stalls again and ends the run. The
    run is cut after epoch 3 and resumed: the halving carries over in the checkpoint."""
    from rnnstab_cli.training.natural import loop, resolve_natural_config, run_natural
    from rnnstab_cli.training.natural.metrics import Score

    rolls = np.zeros((1, 2), dtype=object)
    for i in range(2):
        rolls[0, i] = (np.random.default_rng(i).random((20, 88)) < 0.1).astype(np.uint8)
    mat = tmp_path / "tiny.mat"
    scipy.io.savemat(mat, {"traindata": rolls, "validdata": rolls, "testdata": rolls})
    scores = iter([60.0, 5.0, 4.0, 3.995, 3.5, 3.499, 3.0])  # untrained, then epochs 1, 2, ...
    monkeypatch.setattr(
        loop,
        "score_split",
        lambda config, params, data, split, threads=None: Score("nll", next(scores), 1),
    )
    flags = {"task": "music-jsb", "data": str(mat), "hidden": 8, "lr": 0.4,
             "lr_halving_on": "valid-stall", "epochs": 3}  # fmt: skip
    first = run_natural(resolve_natural_config(flags), out_dir=tmp_path / "ck")
    assert (first.outcome, first.epochs_done) == ("epochs_done", 3)
    cfg = resolve_natural_config({**flags, "epochs": 10})
    rest = run_natural(cfg, out_dir=tmp_path / "ck", resume=True)
    assert (rest.outcome, rest.epochs_done, rest.best_epoch) == ("converged", 5, 5)
    steps = [(r.epoch, r.lr, r.next_lr) for r in first.records + rest.records if r.epoch > 0]
    assert steps == [(1, 0.4, 0.4), (2, 0.4, 0.4), (3, 0.4, 0.2), (4, 0.2, 0.1), (5, 0.1, 0.1)]
    # The paper's rule looks at the training error only: the same scores do not end its run.
    scores = iter([60.0, 5.0, 4.0, 3.995, 3.5, 3.499])
    paper = run_natural(
        resolve_natural_config({**flags, "epochs": 5, "lr_halving_on": "train-rise"})
    )
    assert (paper.outcome, paper.epochs_done) == ("epochs_done", 5)


# --------------------------------------------------------------------------------------------
# A finished run that keeps only its best parameters (drop_last_params)


def tiny_music(tmp_path: Path) -> Path:
    """Three random piano rolls of 30 steps as every split: a run of a few updates an epoch,
    without the real data sets."""
    rolls = np.zeros((1, 3), dtype=object)
    for i in range(3):
        rolls[0, i] = (np.random.default_rng(i).random((30, 88)) < 0.1).astype(np.uint8)
    mat = tmp_path / "tiny.mat"
    scipy.io.savemat(mat, {"traindata": rolls, "validdata": rolls, "testdata": rolls})
    return mat


def tiny_finished_run(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> Path:
    """`rnnstab train` of a 12-unit music model to its 2-epoch budget."""
    ck = tmp_path / "ck"
    code, _, err = run(
        capsys, "train", "--task", "music-jsb", "--data", str(tiny_music(tmp_path)),
        "--epochs", "2", "--out", str(ck), *TINY,
    )  # fmt: skip
    assert code == EXIT_OK, err
    return ck


def files_of(d: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(d.iterdir())}


def test_a_finished_run_keeps_only_its_best_parameters_and_evaluates_as_before(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    ck = tiny_finished_run(capsys, tmp_path)
    evaluate = ["eval", str(ck), "--split", "valid", "--split", "test", "--json"]
    code, out, _ = run(capsys, *evaluate)
    assert code == EXIT_OK
    before = json_lines(out)
    assert [r["params"] for r in before] == ["best", "best"]
    full = load_natural_checkpoint(ck)
    assert full.params is not None and full.best_params is not None
    params_file = next(ck.glob("params-*.safetensors"))
    assert json.loads((ck / "state.json").read_text())["format_version"] == FORMAT_VERSION

    assert drop_last_params(ck) is True
    assert not params_file.exists() and not list(ck.glob("params-*"))
    state = json.loads((ck / "state.json").read_text())
    assert "params" not in state["files"] and "best" in state["files"]
    assert state["last_params_dropped"] is True
    assert state["format_version"] == BEST_ONLY_FORMAT_VERSION
    best_only = load_natural_checkpoint(ck)
    assert best_only.params is None and best_only.state == full.state
    assert best_only.best_params is not None
    for name, value in full.best_params.items():
        np.testing.assert_array_equal(best_only.best_params[name], value, err_msg=name)
    # `rnnstab eval` scores the same best parameters to the same figures.
    code, out, _ = run(capsys, *evaluate)
    assert code == EXIT_OK
    assert json_lines(out) == before
    export = ["export", str(ck), "--sigmoid-as-tanh"]  # the music presets' units are sigmoid
    code, out, err = run(capsys, *export, "-o", str(tmp_path / "m.safetensors"), "--json")
    assert code == EXIT_OK, err
    assert json_lines(out)[0]["params"] == "best"

    # Idempotent: a second call finds nothing to drop and changes no file.
    files = files_of(ck)
    assert drop_last_params(ck) is True
    assert files_of(ck) == files

    # What needs the last parameters is a one-line checkpoint error, never a traceback.
    code, _, err = run(capsys, "eval", str(ck), "--split", "valid", "--last")
    assert code == EXIT_CHECKPOINT
    assert_one_line_error(err, str(ck), "kept only its best", "--last")
    code, _, err = run(capsys, *export, "--last", "-o", str(tmp_path / "x.safetensors"))
    assert code == EXIT_CHECKPOINT
    assert_one_line_error(err, "kept only its best", "--last")
    assert not (tmp_path / "x.safetensors").exists()
    for more in ([], ["--epochs", "4"]):  # the same budget, or a larger one
        code, _, err = run(capsys, "train", "--resume", str(ck), *more, "-q")
        assert code == EXIT_CHECKPOINT
        assert_one_line_error(err, str(ck), "kept only its best", "cannot be continued")
    assert files_of(ck) == files


def test_a_finished_run_drops_its_clipping_state_with_its_last_parameters(
    tmp_path: Path,
) -> None:
    """The percentile rule's state (every norm so far) serves only to continue the run too."""
    from rnnstab_cli.training.natural import resolve_natural_config, run_natural

    cfg = resolve_natural_config(
        {"task": "music-jsb", "data": str(tiny_music(tmp_path)), "epochs": 2, "hidden": 8,
         "seq_len": 25, "clip_mode": "percentile"}
    )  # fmt: skip
    ck = tmp_path / "ck"
    run_natural(cfg, out_dir=ck)
    assert load_natural_checkpoint(ck).clip_state is not None
    assert drop_last_params(ck) is True
    assert not list(ck.glob("clip-*")) and not list(ck.glob("params-*"))
    state = json.loads((ck / "state.json").read_text())
    assert state["clip_state_dropped"] is True and state["last_params_dropped"] is True
    kept = load_natural_checkpoint(ck)
    assert kept.clip_state is None and kept.best_params is not None


def test_a_run_that_is_not_finished_keeps_its_last_parameters(tmp_path: Path) -> None:
    """Interrupted after epoch 1 of 3, a run has best parameters but is not finished: it is
    left alone and continues; once finished, its last parameters can go."""
    from rnnstab_cli.training.natural import resolve_natural_config, run_natural

    mat = tiny_music(tmp_path)
    cfg = resolve_natural_config(
        {"task": "music-jsb", "data": str(mat), "epochs": 3, "hidden": 8, "seq_len": 25}
    )
    ck = tmp_path / "ck"

    def stop_after_epoch_1(record: object) -> None:
        if getattr(record, "epoch", 0) == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_natural(cfg, out_dir=ck, on_epoch=stop_after_epoch_1)
    part = load_natural_checkpoint(ck)
    assert part.state.epochs_done == 1 and part.best_params is not None
    assert part.state.outcome(part.config) is None
    files = files_of(ck)
    assert drop_last_params(ck) is False
    assert files_of(ck) == files
    result = run_natural(cfg, out_dir=ck, resume=True)
    assert (result.outcome, result.epochs_done) == ("epochs_done", 3)
    assert drop_last_params(ck) is True
    assert load_natural_checkpoint(ck).params is None
    with pytest.raises(CheckpointError, match="cannot be continued"):
        run_natural(cfg.replace(epochs=5), out_dir=ck, resume=True)


def test_a_finished_run_without_best_parameters_keeps_its_last_ones(tmp_path: Path) -> None:
    """A run whose budget ended before any trained model was scored has only its last
    parameters: they stay."""
    from rnnstab_cli.training.natural import resolve_natural_config
    from rnnstab_cli.training.natural.state import NaturalState

    cfg = resolve_natural_config(
        {"task": "music-jsb", "data": str(tiny_music(tmp_path)), "epochs": 1, "hidden": 8}
    )
    params = {k: np.zeros(s, cfg.dtype) for k, s in model_shapes(8, 88, 88).items()}
    state = NaturalState(lr=cfg.lr, epochs_done=1)
    ck = tmp_path / "ck"
    save_natural_checkpoint(ck, NaturalCheckpoint(cfg, params, None, state), [])
    assert load_natural_checkpoint(ck).state.outcome(cfg) == "epochs_done"
    files = files_of(ck)
    assert drop_last_params(ck) is False
    assert files_of(ck) == files


def test_a_crash_after_the_state_is_replaced_leaves_a_loadable_checkpoint(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed between writing the new state.json and removing the params file: the checkpoint
    loads as best-only and evaluates; the next call removes the leftover file."""
    ck = tiny_finished_run(capsys, tmp_path)
    evaluate = ["eval", str(ck), "--split", "valid", "--json"]
    code, out, _ = run(capsys, *evaluate)
    assert code == EXIT_OK
    before = json_lines(out)
    params_file = next(ck.glob("params-*.safetensors"))

    class Crash(BaseException):
        pass

    real = checkpoint_io.replace_state

    def replace_then_crash(directory: Path, state: dict) -> None:
        real(directory, state)
        raise Crash

    with monkeypatch.context() as m:
        m.setattr(checkpoint_io, "replace_state", replace_then_crash)
        with pytest.raises(Crash):
            drop_last_params(ck)
    assert params_file.exists()  # not removed: the crash came first
    assert "params" not in json.loads((ck / "state.json").read_text())["files"]
    assert load_natural_checkpoint(ck).params is None
    code, out, _ = run(capsys, *evaluate)
    assert code == EXIT_OK and json_lines(out) == before
    assert drop_last_params(ck) is True
    assert not params_file.exists()
