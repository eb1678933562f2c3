"""Tests for the polyphonic-music loaders, the restricted pickle reader and music batching.

Real-data tests read /work/shared/data (always present in CI) and check the loaders against
the numbers published in its README; error paths use tiny files written to tmp_path.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from rnnstab_cli.datasets import (
    DATA_ENV,
    MusicData,
    default_data_dir,
    load_dataset,
    load_music,
    music_batches,
    music_eval_batches,
    resolve_dataset,
)
from rnnstab_cli.errors import DataError, UsageError

DATA = Path("/work/shared/data")
POLY = DATA / "polyphonic"
needs_data = pytest.mark.skipif(
    not POLY.exists(), reason=f"real data sets not present at {POLY} (they are in CI)"
)

# From /work/shared/data/README.md: per split (sequences, time steps, active notes,
# min note, max note, shortest, longest).
README_TABLE = {
    "JSB_Chorales.mat": {
        "train": (229, 13807, 53824, 43, 96, 25, 129),
        "valid": (76, 4602, 17811, 48, 96, 32, 144),
        "test": (77, 4725, 18367, 45, 96, 32, 160),
    },
    "Nottingham.mat": {
        "train": (694, 176561, 699403, 31, 93, 40, 1788),
        "valid": (173, 45513, 180192, 34, 91, 96, 1473),
        "test": (170, 44463, 177421, 36, 89, 63, 1793),
    },
    "Piano_midi.mat": {
        "train": (87, 75911, 231089, 21, 108, 111, 3857),
        "valid": (12, 8540, 27623, 24, 104, 209, 1637),
        "test": (25, 19036, 56067, 21, 108, 65, 2645),
    },
    "MuseData.mat": {
        "train": (524, 245202, 856543, 21, 96, 9, 3457),
        "valid": (135, 82755, 287893, 21, 100, 63, 3723),
        "test": (124, 64339, 211857, 21, 105, 45, 4273),
    },
}


def split_stats(seqs: list[np.ndarray]) -> tuple[int, ...]:
    """The README's columns for one split, computed from float32 rolls."""
    notes = np.flatnonzero(np.vstack(seqs).any(axis=0)) + 21
    lengths = [s.shape[0] for s in seqs]
    active = int(sum(int(s.sum()) for s in seqs))
    return (len(seqs), sum(lengths), active, notes.min(), notes.max(), min(lengths), max(lengths))


def assert_data_error(exc: pytest.ExceptionInfo[DataError], path: Path, *words: str) -> None:
    """A DataError message is one line, names the file and contains ``words``."""
    msg = str(exc.value)
    assert "\n" not in msg
    assert str(path) in msg
    for w in words:
        assert w in msg, f"{w!r} not in {msg!r}"


# --------------------------------------------------------------------------------------------
# Real files


@needs_data
@pytest.mark.parametrize("name", sorted(README_TABLE))
def test_mat_files_match_readme(name: str) -> None:
    data = load_music(POLY / name)
    assert isinstance(data, MusicData)
    for split, expected in README_TABLE[name].items():
        seqs = data.split(split)
        assert all(s.dtype == np.float32 and s.ndim == 2 and s.shape[1] == 88 for s in seqs)
        assert all(np.isin(s, (0.0, 1.0)).all() for s in seqs[:20])
        assert split_stats(seqs) == expected


@needs_data
def test_jsb_pickle_matches_mat_exactly() -> None:
    from_pickle = load_music(POLY / "JSB_Chorales.pickle")
    from_mat = load_music(POLY / "JSB_Chorales.mat")
    for split in ("train", "valid", "test"):
        a, b = from_pickle.split(split), from_mat.split(split)
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            assert x.dtype == y.dtype == np.float32
            np.testing.assert_array_equal(x, y)


@needs_data
def test_jsb_pickle_note_to_column_mapping() -> None:
    # The file's first test chorale starts with MIDI notes 72, 76, 79, 84 (read off the raw
    # pickle opcodes); column j is note j + 21.
    roll = load_music(POLY / "JSB_Chorales.pickle").test[0]
    assert np.flatnonzero(roll[0]).tolist() == [72 - 21, 76 - 21, 79 - 21, 84 - 21]


# --------------------------------------------------------------------------------------------
# Synthetic files: format details and error paths


def write_pickle(path: Path, obj: object, protocol: int = 4) -> Path:
    path.write_bytes(pickle.dumps(obj, protocol=protocol))
    return path


def small_pickle_obj() -> dict[str, list[list[tuple[np.int64, ...]]]]:
    i = np.int64
    return {
        "train": [[(i(21), i(60)), (), (i(108),)]],
        "valid": [[(i(64),)]],
        "test": [[(), (i(48), i(52))]],
    }


def test_pickle_written_by_current_numpy_loads(tmp_path: Path) -> None:
    # numpy 2 pickles scalars as numpy._core.multiarray.scalar; that name is allowed too.
    data = load_music(write_pickle(tmp_path / "small.pickle", small_pickle_obj()))
    expected = np.zeros((3, 88), np.float32)
    expected[0, [0, 39]] = 1.0
    expected[2, 87] = 1.0
    np.testing.assert_array_equal(data.train[0], expected)
    assert data.valid[0].shape == (1, 88) and np.flatnonzero(data.valid[0][0]).tolist() == [43]
    assert not data.test[0][0].any() and np.flatnonzero(data.test[0][1]).tolist() == [27, 31]


class _Exploit:
    """Pickles to "call os.system(cmd)"; unpickling it with pickle.load would run cmd."""

    def __init__(self, cmd: str) -> None:
        self.cmd = cmd

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (self.cmd,))


@pytest.mark.parametrize("protocol", [0, 2, 4])
def test_pickle_with_forbidden_global_is_refused_and_not_run(tmp_path: Path, protocol: int) -> None:
    marker = tmp_path / "pwned"
    obj = {"train": [[()]], "valid": [[()]], "test": [[()]], "x": _Exploit(f"touch {marker}")}
    path = write_pickle(tmp_path / "evil.pickle", obj, protocol)
    with pytest.raises(DataError) as exc:
        load_music(path)
    assert_data_error(exc, path, "system", "only numpy")
    assert not marker.exists()


def test_pickle_with_builtin_eval_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    # Hand-written protocol-0 opcodes: builtins.eval("open(marker, 'w')").
    payload = f"cbuiltins\neval\n(V__import__('pathlib').Path({str(marker)!r}).touch()\ntR."
    path = tmp_path / "evil.pkl"
    path.write_bytes(payload.encode())
    with pytest.raises(DataError) as exc:
        load_music(path)
    assert_data_error(exc, path, "builtins.eval")
    assert not marker.exists()


@pytest.mark.parametrize(
    ("obj", "words"),
    [
        ([1, 2, 3], ["holds a list"]),
        ({"train": [], "valid": [], "test": []}, ["'train'"]),
        ({"train": [[()]], "valid": [[()]]}, ["missing keys: test"]),
        ({"train": [[(np.int64(20),)]], "valid": [[()]], "test": [[()]]}, ["note 20"]),
        ({"train": [[(np.int64(109),)]], "valid": [[()]], "test": [[()]]}, ["note 109"]),
        ({"train": [[(60.0,)]], "valid": [[()]], "test": [[()]]}, ["integer MIDI"]),
        ({"train": [[60]], "valid": [[()]], "test": [[()]]}, ["expected a tuple"]),
        ({"train": [[]], "valid": [[()]], "test": [[()]]}, ["train[0]"]),
    ],
)
def test_malformed_pickle_content(tmp_path: Path, obj: object, words: list[str]) -> None:
    path = write_pickle(tmp_path / "bad.pickle", obj)
    with pytest.raises(DataError) as exc:
        load_music(path)
    assert_data_error(exc, path, *words)


@needs_data
def test_truncated_pickle(tmp_path: Path) -> None:
    path = tmp_path / "cut.pickle"
    path.write_bytes((POLY / "JSB_Chorales.pickle").read_bytes()[:5000])
    with pytest.raises(DataError) as exc:
        load_music(path)
    assert_data_error(exc, path, "unpickling failed")
    assert exc.value.__cause__ is not None  # chained to the unpickler's own error


@pytest.mark.parametrize("suffix", [".pickle", ".mat"])
def test_empty_and_garbage_files(tmp_path: Path, suffix: str) -> None:
    for content in (b"", b"this is not a data file\n" * 20):
        path = tmp_path / f"bad{suffix}"
        path.write_bytes(content)
        with pytest.raises(DataError) as exc:
            load_music(path)
        expected = "MATLAB piano-roll file" if suffix == ".mat" else "piano-roll pickle"
        assert_data_error(exc, path, expected)


def test_missing_file_directory_and_unknown_extension(tmp_path: Path) -> None:
    missing = tmp_path / "nope.mat"
    with pytest.raises(DataError) as exc:
        load_music(missing)
    assert_data_error(exc, missing, "no such file")
    with pytest.raises(DataError) as exc:
        load_music(tmp_path)
    assert_data_error(exc, tmp_path, "not a regular file")
    txt = tmp_path / "rolls.txt"
    txt.write_text("0 1 0\n")
    with pytest.raises(DataError) as exc:
        load_music(txt)
    assert_data_error(exc, txt, "'.txt'", ".mat")


def cell(*rolls: np.ndarray) -> np.ndarray:
    """A 1×N MATLAB cell array, as savemat expects it."""
    out = np.empty((1, len(rolls)), dtype=object)
    for i, r in enumerate(rolls):
        out[0, i] = r
    return out


def test_mat_roundtrip_of_synthetic_file(tmp_path: Path) -> None:
    a = np.zeros((4, 88), np.uint8)
    a[1, [0, 87]] = 1
    b = np.ones((2, 88), np.uint8)
    path = tmp_path / "tiny.mat"
    scipy.io.savemat(path, {"traindata": cell(a, b), "validdata": cell(b), "testdata": cell(a)})
    data = load_music(path)
    assert len(data.train) == 2 and data.train[0].dtype == np.float32
    np.testing.assert_array_equal(data.train[0], a)
    np.testing.assert_array_equal(data.train[1], b)
    np.testing.assert_array_equal(data.test[0], a)


def test_mat_without_the_variables(tmp_path: Path) -> None:
    path = tmp_path / "other.mat"
    scipy.io.savemat(path, {"traindata": cell(np.zeros((2, 88), np.uint8)), "x": np.eye(3)})
    with pytest.raises(DataError) as exc:
        load_music(path)
    assert_data_error(exc, path, "expected variables traindata, validdata, testdata")
    assert "missing: validdata, testdata" in str(exc.value)


@pytest.mark.parametrize(
    ("train", "words"),
    [
        (cell(np.zeros((3, 87), np.uint8)), ["traindata{1}", "T×88"]),
        (cell(np.zeros((3, 88), np.uint8), np.full((2, 88), 2, np.uint8)), ["traindata{2}", "0"]),
        (np.zeros((3, 88), np.uint8), ["cell array"]),
        (cell(np.array(["a"], dtype=object)), ["traindata{1}"]),
    ],
)
def test_mat_with_malformed_cells(tmp_path: Path, train: np.ndarray, words: list[str]) -> None:
    ok = cell(np.zeros((2, 88), np.uint8))
    path = tmp_path / "bad.mat"
    scipy.io.savemat(path, {"traindata": train, "validdata": ok, "testdata": ok})
    with pytest.raises(DataError) as exc:
        load_music(path)
    assert_data_error(exc, path, *words)


# --------------------------------------------------------------------------------------------
# Resolver


def test_default_data_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(DATA_ENV, raising=False)
    assert default_data_dir() is None
    monkeypatch.setenv(DATA_ENV, "")
    assert default_data_dir() is None
    monkeypatch.setenv(DATA_ENV, str(tmp_path))
    assert default_data_dir() == tmp_path


def test_resolver_errors(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(DATA_ENV, raising=False)
    with pytest.raises(DataError) as exc:
        resolve_dataset("nottingham")
    msg = str(exc.value)
    assert DATA_ENV in msg and "polyphonic/Nottingham.mat" in msg and "\n" not in msg
    with pytest.raises(UsageError, match="unknown data set 'mnist'"):
        resolve_dataset("mnist")
    monkeypatch.setenv(DATA_ENV, str(tmp_path / "absent"))
    with pytest.raises(DataError, match=DATA_ENV):
        resolve_dataset("jsb")
    monkeypatch.setenv(DATA_ENV, str(tmp_path))
    with pytest.raises(DataError, match=r"MuseData\.mat"):
        resolve_dataset("musedata")
    with pytest.raises(DataError, match="no such file"):
        resolve_dataset("jsb", tmp_path / "x.mat")


def test_resolver_finds_files(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "polyphonic").mkdir()
    mat = tmp_path / "polyphonic" / "Piano_midi.mat"
    mat.write_bytes(b"")
    pkl = tmp_path / "JSB_Chorales.pickle"
    pkl.write_bytes(b"")
    monkeypatch.setenv(DATA_ENV, str(tmp_path))
    assert resolve_dataset("piano-midi") == (mat,)
    assert resolve_dataset("Piano_Midi") == (mat,)
    assert resolve_dataset("jsb") == (pkl,)  # no .mat anywhere, so the pickle
    # An explicit path wins over the environment, whether a file or a directory.
    other = tmp_path / "elsewhere.mat"
    other.write_bytes(b"")
    assert resolve_dataset("piano-midi", other) == (other,)
    assert resolve_dataset("piano-midi", tmp_path / "polyphonic") == (mat,)


@needs_data
def test_load_dataset_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DATA_ENV, str(DATA))
    data = load_dataset("jsb")
    assert isinstance(data, MusicData)
    assert data.source == POLY / "JSB_Chorales.mat"
    assert [len(data.train), len(data.valid), len(data.test)] == [229, 76, 77]


# --------------------------------------------------------------------------------------------
# Batching


def coded_rolls(lengths: list[int]) -> list[np.ndarray]:
    """Rolls whose row t of piece i spells (i, t) in binary, plus an always-on column 87.

    Column 87 tells real frames from zero padding; columns 0..11 hold t, 12..19 hold i.
    """
    rolls = []
    for i, n in enumerate(lengths):
        t = np.arange(n)[:, None]
        r = np.zeros((n, 88), np.float32)
        r[:, :12] = (t >> np.arange(12)) & 1
        r[:, 12:20] = (i >> np.arange(8)) & 1
        r[:, 87] = 1.0
        rolls.append(r)
    return rolls


def decode(frame: np.ndarray) -> tuple[int, int]:
    bits = frame.astype(int)
    t = int((bits[:12] << np.arange(12)).sum())
    i = int((bits[12:20] << np.arange(8)).sum())
    return i, t


LENGTHS = [1, 2, 5, 7, 12, 30]


@pytest.mark.parametrize("predict_first", [False, True])
def test_music_batches_cover_every_step_once(predict_first: bool) -> None:
    seqs = coded_rolls(LENGTHS)
    seen: list[tuple[int, int]] = []
    first = 0 if predict_first else 1  # the first frame that is a target
    batches = list(music_batches(seqs, 3, 5, np.random.default_rng(0), predict_first=predict_first))
    for batch in batches:
        t_len, b = batch.mask.shape
        assert t_len == 5 and 1 <= b <= 3
        assert batch.inputs.shape == batch.targets.shape == (5, b, 88)
        assert batch.inputs.dtype == batch.targets.dtype == batch.mask.dtype == np.float32
        np.testing.assert_array_equal(batch.mask.sum(axis=0), batch.lengths)
        for col in range(b):
            k = int(batch.lengths[col])
            assert (batch.mask[:k, col] == 1).all() and (batch.mask[k:, col] == 0).all()
            assert not batch.inputs[k:, col].any() and not batch.targets[k:, col].any()
            for t in range(k):
                i, tt = decode(batch.targets[t, col])
                x = batch.inputs[t, col]
                if x[87] == 1:  # a real frame: it is the target's predecessor
                    assert decode(x) == (i, tt - 1)
                else:  # the silent frame before frame 0
                    assert predict_first and tt == 0 and not x.any()
                seen.append((i, tt))
    expected = [(i, t) for i, n in enumerate(LENGTHS) for t in range(first, n)]
    assert sorted(seen) == sorted(expected)  # every target frame exactly once


def test_music_batches_shuffle_is_seeded() -> None:
    seqs = coded_rolls(LENGTHS)

    def first_targets(seed: int) -> list[tuple[int, int]]:
        return [
            decode(batch.targets[0, c])
            for batch in music_batches(seqs, 2, 4, np.random.default_rng(seed))
            for c in range(batch.mask.shape[1])
        ]

    assert first_targets(1) == first_targets(1)
    assert first_targets(1) != first_targets(2)


def test_music_batches_bad_arguments() -> None:
    seqs = coded_rolls([5])
    with pytest.raises(UsageError, match="batch_size"):
        music_batches(seqs, 0, 5, np.random.default_rng(0))
    with pytest.raises(UsageError, match="seq_len"):
        music_batches(seqs, 1, -3, np.random.default_rng(0))
    with pytest.raises(DataError, match="too short"):
        music_batches(coded_rolls([1, 1]), 1, 5, np.random.default_rng(0))


@pytest.mark.parametrize("chunk_len", [None, 4, 100])
def test_music_eval_batches_rebuild_whole_pieces(chunk_len: int | None) -> None:
    seqs = coded_rolls(LENGTHS)
    rebuilt: dict[int, list[np.ndarray]] = {}
    groups = 0
    for batch in music_eval_batches(seqs, 2, chunk_len):
        t_len, b = batch.mask.shape
        assert batch.inputs.shape == batch.targets.shape == (t_len, b, 88)
        if chunk_len is not None:
            assert t_len <= chunk_len
        groups += not batch.carry
        for col, i in enumerate(batch.pieces.tolist()):
            k = int(batch.mask[:, col].sum())
            assert (batch.mask[:k, col] == 1).all() and (batch.mask[k:, col] == 0).all()
            if batch.carry:
                assert i in rebuilt  # a continuation of a piece already started
            else:
                assert i not in rebuilt
                rebuilt[i] = []
                np.testing.assert_array_equal(batch.inputs[0, col], seqs[i][0])
            rebuilt[i].append(batch.targets[:k, col])
            # Within a chunk, each input frame is the previous step's target frame.
            prev = batch.targets[: max(k - 1, 0), col]
            np.testing.assert_array_equal(batch.inputs[1:k, col], prev)
    # Pieces with at least one step, longest first, two per group; chunks chain into wholes.
    assert sorted(rebuilt) == [i for i, n in enumerate(LENGTHS) if n > 1]
    assert groups == 3
    for i, parts in rebuilt.items():
        np.testing.assert_array_equal(np.concatenate(parts), seqs[i][1:])
