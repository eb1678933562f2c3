"""Tests for the character-level PTB loader and truncated-BPTT stream batching.

The loader is checked against the README's published counts and against a plain line-by-line
reference reader written here; error paths use tiny files written to tmp_path.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rnnstab_cli.datasets import (
    DATA_ENV,
    EOL,
    PtbChar,
    load_dataset,
    load_ptb_char,
    num_segments,
    one_hot,
    resolve_dataset,
    stream_segments,
)
from rnnstab_cli.errors import DataError, UsageError

DATA = Path("/work/shared/data")
PTB = DATA / "ptb_char"
needs_data = pytest.mark.skipif(
    not PTB.exists(), reason=f"real data sets not present at {PTB} (they are in CI)"
)
NAMES = ("ptb.char.train.txt", "ptb.char.valid.txt", "ptb.char.test.txt")
# The README's symbol set: # $ & ' * - . / 0-9 < > N \ _ a-z (49 symbols).
README_SYMBOLS = (
    set("#$&'*-./") | set("0123456789") | set("<>N\\_") | set("abcdefghijklmnopqrstuvwxyz")
)


def reference_symbols(text: str) -> list[str]:
    """The format's definition, spelled out slowly: split lines, then split on whitespace."""
    out: list[str] = []
    for line in text.split("\n"):
        symbols = line.split()
        if symbols:
            out += [*symbols, EOL]
    return out


def write_ptb(d: Path, train: str, valid: str, test: str) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    for name, text in zip(NAMES, (train, valid, test), strict=True):
        (d / name).write_text(text)
    return d


def decode(data: PtbChar, ids: np.ndarray) -> list[str]:
    return [data.vocab[i] for i in ids.tolist()]


@pytest.fixture(scope="module")
def real() -> PtbChar:
    if not PTB.exists():
        pytest.skip(f"real data sets not present at {PTB} (they are in CI)")
    return load_ptb_char(PTB)


# --------------------------------------------------------------------------------------------
# Real files


@needs_data
def test_real_counts_match_readme(real: PtbChar) -> None:
    # README: symbols incl. one end-of-line per line; lines; "_" counts.
    expected = {
        "train": (5_017_482, 42_068, 845_453),
        "valid": (393_042, 3_370, 67_020),
        "test": (442_423, 3_761, 74_908),
    }
    underscore = real.vocab.index("_")
    for split, (n, lines, words) in expected.items():
        ids = real.split(split)
        assert np.issubdtype(ids.dtype, np.integer) and ids.ndim == 1
        assert ids.size == n
        assert int((ids == 0).sum()) == lines
        assert int((ids == underscore).sum()) == words
        assert ids[-1] == 0  # the stream ends with the last line's end-of-line


@needs_data
def test_real_vocabulary(real: PtbChar) -> None:
    assert real.vocab_size == 50
    assert real.vocab[0] == EOL
    assert real.vocab[1:] == sorted(README_SYMBOLS)
    # valid uses all 49 training symbols, test 47 of them; none is outside the training set.
    assert len(set(real.valid.tolist()) - {0}) == 49
    test_symbols = set(decode(real, np.unique(real.test))) - {EOL}
    assert len(test_symbols) == 47 and test_symbols <= set(real.vocab)


@needs_data
def test_real_valid_matches_reference_reader(real: PtbChar) -> None:
    text = (PTB / NAMES[1]).read_text()
    assert decode(real, real.valid) == reference_symbols(text)


@needs_data
def test_real_train_loads_fast() -> None:
    # Generous bound (the vectorised reader takes ~0.2 s); a per-symbol Python loop over the
    # 10 MB file would not stay far below it on a loaded CI machine, so this is a smoke check.
    start = time.perf_counter()
    data = load_ptb_char([PTB / n for n in NAMES])
    assert time.perf_counter() - start < 5.0
    assert data.train.size == 5_017_482


@needs_data
def test_slice_of_real_train(tmp_path: Path) -> None:
    lines = (PTB / NAMES[0]).read_text().split("\n")[:300]
    train = "\n".join(lines) + "\n"  # valid and test reuse train lines: no unknown symbols
    valid = "\n".join(lines[200:250])  # no final newline: the last line still gets an EOL
    test = "\n".join(lines[250:300]) + "\n \n\n"  # trailing blank lines add nothing
    data = load_ptb_char(write_ptb(tmp_path / "slice", train, valid, test))
    assert data.vocab == [EOL, *sorted(set(train.split()))]
    assert decode(data, data.train) == reference_symbols(train)
    assert decode(data, data.valid) == reference_symbols(valid)
    assert decode(data, data.test) == reference_symbols(test)
    assert int((data.valid == 0).sum()) == 50


# --------------------------------------------------------------------------------------------
# Synthetic files


def test_vocab_is_deterministic_and_from_train_only(tmp_path: Path) -> None:
    a = load_ptb_char(write_ptb(tmp_path / "a", "c a _ b\n a\n", "a\n", "b\n"))
    b = load_ptb_char(write_ptb(tmp_path / "b", " a\nb _ a c \n", "c\n", "_\n"))
    assert a.vocab == b.vocab == [EOL, "_", "a", "b", "c"]
    np.testing.assert_array_equal(a.train, [4, 2, 1, 3, 0, 2, 0])


def test_general_path_multi_character_symbols(tmp_path: Path) -> None:
    # Symbols longer than one character (or non-ASCII) take the general reader; same rules.
    train = "the cat\n<unk> é cat\r\n\n  \nthe"
    data = load_ptb_char(write_ptb(tmp_path / "g", train, "cat the\n", "é\n"))
    assert data.vocab == [EOL, "<unk>", "cat", "the", "é"]
    assert decode(data, data.train) == reference_symbols(train)
    assert decode(data, data.valid) == ["cat", "the", EOL]


@pytest.mark.parametrize(
    ("valid", "symbol", "line"),
    [
        ("a b\n a z b\n", "'z'", 2),  # fast path
        ("a b\n\n\nab a\n", "'ab'", 4),  # general path, blank lines still counted
    ],
)
def test_unknown_symbol_names_file_line_and_symbol(
    tmp_path: Path, valid: str, symbol: str, line: int
) -> None:
    d = write_ptb(tmp_path / "u", "a b _\n", valid, "a\n")
    with pytest.raises(DataError) as exc:
        load_ptb_char(d)
    msg = str(exc.value)
    assert "\n" not in msg
    assert f"{d / NAMES[1]}, line {line}: symbol {symbol}" in msg
    assert str(d / NAMES[0]) in msg


@pytest.mark.parametrize("which", [0, 1, 2])
@pytest.mark.parametrize("content", [b"", b"  \n \n", b"\n"])
def test_empty_files(tmp_path: Path, which: int, content: bytes) -> None:
    d = write_ptb(tmp_path / "e", "a\n", "a\n", "a\n")
    (d / NAMES[which]).write_bytes(content)
    with pytest.raises(DataError) as exc:
        load_ptb_char(d)
    assert f"{d / NAMES[which]} contains no symbols" in str(exc.value)


def test_not_text(tmp_path: Path) -> None:
    d = write_ptb(tmp_path / "b", "a\n", "a\n", "a\n")
    (d / NAMES[2]).write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe")
    with pytest.raises(DataError) as exc:
        load_ptb_char(d)
    assert f"{d / NAMES[2]} is not UTF-8 text" in str(exc.value)
    assert isinstance(exc.value.__cause__, UnicodeDecodeError)


def test_missing_paths(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such directory"):
        load_ptb_char(tmp_path / "absent")
    d = write_ptb(tmp_path / "m", "a\n", "a\n", "a\n")
    (d / NAMES[1]).unlink()
    with pytest.raises(DataError) as exc:
        load_ptb_char(d)
    assert str(exc.value).startswith(f"{d} lacks ptb.char.valid.txt")
    with pytest.raises(DataError, match="not a directory"):
        load_ptb_char(d / NAMES[0])
    with pytest.raises(DataError, match="no such file"):
        load_ptb_char([d / NAMES[0], d / NAMES[1], d / NAMES[2]])
    with pytest.raises(UsageError, match="three PTB files"):
        load_ptb_char([d / NAMES[0], d / NAMES[2]])


def test_resolver_and_load_dataset(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    root = tmp_path / "data"
    write_ptb(root / "ptb_char", "a b\n", "b\n", "a\n")
    files = tuple(root / "ptb_char" / n for n in NAMES)
    monkeypatch.delenv(DATA_ENV, raising=False)
    with pytest.raises(DataError, match=DATA_ENV):
        resolve_dataset("ptb-char")
    assert resolve_dataset("ptb-char", root) == files  # the data root ...
    assert resolve_dataset("ptb_char", root / "ptb_char") == files  # ... or the folder itself
    assert resolve_dataset("ptb-char", list(files)) == files
    monkeypatch.setenv(DATA_ENV, str(root))
    assert resolve_dataset("ptb-char") == files
    data = load_dataset("ptb-char")
    assert isinstance(data, PtbChar) and data.sources == files
    np.testing.assert_array_equal(data.valid, [2, 0])
    with pytest.raises(UsageError, match="one file"):
        resolve_dataset("jsb", list(files))


# --------------------------------------------------------------------------------------------
# Stream batching


@given(
    n=st.integers(2, 300),
    batch=st.integers(1, 8),
    seg_len=st.integers(1, 40),
    ahead=st.integers(1, 6),
)
def test_stream_segments_walk_contiguous_columns(
    n: int, batch: int, seg_len: int, ahead: int
) -> None:
    ids = np.arange(n)  # id == position in the stream, so every check is arithmetic
    length = n // batch
    if length <= ahead:
        with pytest.raises(UsageError, match="too short"):
            stream_segments(ids, batch, seg_len, ahead)
        return
    segments = list(stream_segments(ids, batch, seg_len, ahead))
    assert len(segments) == num_segments(n, batch, seg_len, ahead)
    covered = 0
    for k, seg in enumerate(segments):
        assert seg.inputs.shape == seg.targets.shape == seg.mask.shape == (seg_len, batch)
        assert seg.inputs.dtype == seg.targets.dtype == np.int64
        assert seg.mask.dtype == np.float32
        assert seg.start == k * seg_len  # consecutive segments continue the same columns
        real = seg.mask == 1
        steps = int(real[:, 0].sum())
        assert (real[:steps].all()) and not real[steps:].any()  # padding only at the end
        # Row t of column b is stream position b*L + start + t; the target is `ahead` later.
        pos = np.arange(batch)[None, :] * length + seg.start + np.arange(seg_len)[:, None]
        np.testing.assert_array_equal(seg.inputs[real], pos[real])
        np.testing.assert_array_equal(seg.targets[real], pos[real] + ahead)
        assert not seg.inputs[~real].any() and not seg.targets[~real].any()
        covered += steps
    assert covered == length - ahead  # every prediction within a column, exactly once


def test_stream_segments_on_real_ids(tmp_path: Path) -> None:
    data = load_ptb_char(write_ptb(tmp_path / "s", "a b c d e f g h\n", "a\n", "b\n"))
    # train: a..h + EOL = 9 symbols; 2 columns of 4 (the 9th symbol is dropped).
    segs = list(stream_segments(data.train, batch_size=2, seg_len=3, ahead=1))
    assert [decode(data, s.inputs[:, 0]) for s in segs] == [["a", "b", "c"]]
    assert decode(data, segs[0].targets[:, 1]) == ["f", "g", "h"]
    x = one_hot(segs[0].inputs, data.vocab_size)  # (T, B, V)
    assert x.shape == (3, 2, data.vocab_size) and x.dtype == np.float32
    np.testing.assert_array_equal(x.sum(axis=-1), 1.0)
    np.testing.assert_array_equal(x.argmax(axis=-1), segs[0].inputs)


def test_stream_segments_and_one_hot_bad_arguments() -> None:
    ids = np.arange(20)
    for kwargs in ({"batch_size": 0}, {"seg_len": 0}, {"ahead": 0}, {"batch_size": 2.5}):
        args = {"batch_size": 2, "seg_len": 5, "ahead": 1, **kwargs}
        with pytest.raises(UsageError, match=next(iter(kwargs))):
            stream_segments(ids, **args)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"\[0, 5\)"):
        one_hot(np.array([0, 5]), 5)
    with pytest.raises(ValueError, match=r"\[0, 5\)"):
        one_hot(np.array([-1, 0]), 5)
