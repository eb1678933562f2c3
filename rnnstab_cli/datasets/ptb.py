"""Character-level Penn Treebank (Mikolov et al., 2012) and truncated-BPTT stream batching.

File format (``ptb.char.{train,valid,test}.txt``): one sentence per line, characters separated
by single spaces, ``_`` between words. Splitting a line on whitespace gives its symbols; one
end-of-line symbol is appended per line that has symbols (lines holding only whitespace, such as
the lone space after the files' final newline, are skipped). Each split becomes one stream of
symbol ids.

The vocabulary is built from the training file alone: the end-of-line symbol (written ``"\\n"``,
which can never be a symbol because symbols are split on whitespace) gets id 0, followed by the
training symbols sorted by code point. On the real files that is 1 + 49 = 50 symbols. A symbol in
the validation or test file that the training file lacks is an error naming the symbol and line;
it is never silently mapped to some "unknown" id.

Reading is vectorised over the file's bytes (about 0.2 s for the 10 MB training file). Files
whose symbols are not single printable ASCII characters take a slower, general path that follows
the same rules.

:func:`stream_segments` cuts an id stream into parallel streams and consecutive segments for
truncated back-propagation through time, with the hidden state carried between segments.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from rnnstab_cli.datasets.common import (
    PathLike,
    check_positive,
    one_line,
    read_bytes,
    require_file,
)
from rnnstab_cli.errors import DataError, UsageError

EOL = "\n"
"""The end-of-line symbol; always id 0 in :attr:`PtbChar.vocab`."""
EOL_ID = 0
SPLITS = ("train", "valid", "test")
FILE_NAMES = ("ptb.char.train.txt", "ptb.char.valid.txt", "ptb.char.test.txt")
_WHAT = "a character-level PTB text file (symbols separated by spaces, one sentence per line)"

# Bytes that bytes.split()/str.split() both treat as whitespace: \t \n \v \f \r and space.
_WS = np.zeros(256, dtype=bool)
_WS[[9, 10, 11, 12, 13, 32]] = True
# Bytes the fast path handles: that whitespace plus printable ASCII. Anything else (control
# characters, UTF-8) goes to the general path, whose str.split() knows more whitespace.
_FAST_OK = _WS.copy()
_FAST_OK[33:127] = True
_NEWLINE = 10
_BYTE_TABLE = [chr(i) for i in range(256)]  # fast-path code -> symbol; chr(10) is EOL


@dataclass(frozen=True)
class PtbChar:
    """Character-level PTB as three id streams over one vocabulary.

    Attributes:
        vocab: id -> symbol; ``vocab[0]`` is the end-of-line symbol ``"\\n"``, the rest are the
            training file's symbols in code-point order.
        train, valid, test: (N,) int64 ids, each whole split as one stream, one end-of-line id
            after every line.
        sources: the (train, valid, test) files.
    """

    vocab: list[str]
    train: np.ndarray
    valid: np.ndarray
    test: np.ndarray
    sources: tuple[Path, Path, Path]

    @property
    def vocab_size(self) -> int:
        """Number of symbols including end-of-line (50 on the real files)."""
        return len(self.vocab)

    def split(self, name: str) -> np.ndarray:
        """The stream called ``name`` (``"train"``, ``"valid"`` or ``"test"``)."""
        if name not in SPLITS:
            raise KeyError(f"unknown split {name!r}: expected one of {', '.join(SPLITS)}")
        return getattr(self, name)


def ptb_char_files(path: PathLike | Sequence[PathLike]) -> tuple[Path, Path, Path]:
    """The (train, valid, test) files named by a directory or by three explicit paths.

    A directory must hold ``ptb.char.train.txt``, ``ptb.char.valid.txt`` and
    ``ptb.char.test.txt``. A sequence must hold exactly three paths, in that order.

    Raises:
        DataError: the directory or a file is missing.
        UsageError: a sequence of other than three paths.
    """
    if isinstance(path, str | os.PathLike):
        d = Path(path).expanduser()
        expected = f"expected a directory holding {', '.join(FILE_NAMES)}"
        if not d.exists():
            raise DataError(f"{d}: no such directory: {expected}")
        if not d.is_dir():
            raise DataError(f"{d} is not a directory: {expected} (or give the three files)")
        files = tuple(d / name for name in FILE_NAMES)
        missing = [f.name for f in files if not f.is_file()]
        if missing:
            raise DataError(f"{d} lacks {', '.join(missing)}: {expected}")
        return files  # type: ignore[return-value]  # exactly three by construction
    paths = list(path)
    if len(paths) != 3:
        raise UsageError(f"expected three PTB files (train, valid, test), got {len(paths)}")
    train, valid, test = (require_file(p, _WHAT) for p in paths)
    return train, valid, test


def load_ptb_char(path: PathLike | Sequence[PathLike]) -> PtbChar:
    """Load character-level PTB from a directory or from (train, valid, test) files.

    Raises:
        DataError: a file is missing, unreadable, empty or not text, or the validation/test
            file holds a symbol the training file lacks (the message names file, line and
            symbol).
    """
    files = ptb_char_files(path)
    tokens = [_tokenize(f) for f in files]
    vocab = _build_vocab(tokens[0])
    train, valid, test = (_encode(t, vocab, files[0]) for t in tokens)
    return PtbChar(vocab=vocab, train=train, valid=valid, test=test, sources=files)


# --------------------------------------------------------------------------------------------
# Reading


class _Tokens(NamedTuple):
    """A file's symbols (EOL included) as codes into a file-local symbol table."""

    path: Path
    codes: np.ndarray  # (N,) integer codes into table
    table: list[str]  # code -> symbol
    line_of: Callable[[int], int]  # symbol index -> 1-based line number (only used for errors)


def _tokenize(path: Path) -> _Tokens:
    raw = read_bytes(path, _WHAT)
    tokens = _tokenize_fast(path, raw)
    if tokens is None:
        tokens = _tokenize_general(path, raw)
    if tokens.codes.size == 0:
        raise DataError(f"{path} contains no symbols: expected {_WHAT}")
    return tokens


def _tokenize_fast(path: Path, raw: bytes) -> _Tokens | None:
    """Vectorised reading for files of single printable-ASCII-character symbols.

    Returns None when the file does not have that form, so the caller falls back to the
    general path; the two agree on every file the fast path accepts.
    """
    arr = np.frombuffer(raw, dtype=np.uint8)  # (n_bytes,)
    if not _FAST_OK[arr].all():
        return None
    sym = ~_WS[arr]  # (n_bytes,) True on symbol bytes
    if (sym[1:] & sym[:-1]).any():  # two adjacent symbol bytes: a multi-character symbol
        return None
    # A newline becomes an EOL symbol only if its line has a symbol: compare the running symbol
    # count at each newline with the count at the previous one.
    seen = np.cumsum(sym, dtype=np.int32)  # (n_bytes,) symbols up to and including each byte
    nl_pos = np.flatnonzero(arr == _NEWLINE)
    at_nl = seen[nl_pos]
    before = np.concatenate(([0], at_nl[:-1]))
    keep = sym  # reuse the buffer: from here on it marks the bytes that become symbols
    keep[nl_pos[at_nl > before]] = True
    codes = arr[keep]
    last_line_open = arr.size > 0 and seen[-1] > (at_nl[-1] if nl_pos.size else 0)
    if last_line_open:  # the file ends without a newline after its last symbol
        codes = np.append(codes, np.uint8(_NEWLINE))

    def line_of(i: int) -> int:
        kept = np.flatnonzero(keep)
        pos = int(kept[i]) if i < kept.size else len(raw)
        return raw.count(b"\n", 0, pos) + 1

    return _Tokens(path, codes, _BYTE_TABLE, line_of)


def _tokenize_general(path: Path, raw: bytes) -> _Tokens:
    """Line-by-line reading for any UTF-8 text; symbols are whatever str.split() returns."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path} is not UTF-8 text ({one_line(exc)}): expected {_WHAT}") from exc
    index: dict[str, int] = {EOL: 0}
    codes: list[int] = []
    lines: list[int] = []
    for lineno, line in enumerate(text.split("\n"), start=1):
        symbols = line.split()
        if not symbols:
            continue
        for s in symbols:
            codes.append(index.setdefault(s, len(index)))
        codes.append(0)  # EOL
        lines.extend([lineno] * (len(symbols) + 1))
    table = list(index)  # dicts keep insertion order, so position == code
    return _Tokens(path, np.asarray(codes, dtype=np.int64), table, lambda i: lines[i])


#: The most distinct symbols a vocabulary may have (PTB's characters are about 50): every
#: batch is one-hot over the vocabulary, so a text of many symbols would need (T, B, V) floats.
MAX_VOCAB = 1024


def _build_vocab(train: _Tokens) -> list[str]:
    """EOL first, then the training file's other symbols sorted by code point."""
    used = {train.table[c] for c in np.unique(train.codes)}
    if len(used) > MAX_VOCAB:
        raise DataError(
            f"{train.path} has {len(used):,} distinct symbols, more than the {MAX_VOCAB} a "
            f"character vocabulary may have: expected {_WHAT}"
        )
    return [EOL, *sorted(used - {EOL})]


def _encode(tokens: _Tokens, vocab: list[str], train_path: Path) -> np.ndarray:
    """Map a file's codes to vocabulary ids; an unknown symbol is a DataError."""
    index = {s: i for i, s in enumerate(vocab)}
    lut = np.array([index.get(s, -1) for s in tokens.table], dtype=np.int64)  # code -> id
    ids = lut[tokens.codes]  # (N,)
    unknown = np.flatnonzero(ids < 0)
    if unknown.size:
        i = int(unknown[0])
        symbol = tokens.table[tokens.codes[i]]
        raise DataError(
            f"{tokens.path}, line {tokens.line_of(i)}: symbol {symbol!r} does not occur in the "
            f"training file {train_path}: expected only training symbols "
            f"({unknown.size} unknown occurrence(s) in all)"
        )
    return ids


# --------------------------------------------------------------------------------------------
# Truncated-BPTT batching


class Segment(NamedTuple):
    """One time-major segment of ``batch_size`` parallel streams.

    Row t of column b is position ``start + t`` of stream b. Padded steps (only in the last
    segment) hold id 0 and have mask 0.
    """

    inputs: np.ndarray  # (T, B) int64: symbol at position p
    targets: np.ndarray  # (T, B) int64: symbol at position p + ahead
    mask: np.ndarray  # (T, B) float32: 1.0 on real steps, 0.0 on padding
    start: int  # position of row 0 within each stream


def stream_segments(
    ids: np.ndarray, batch_size: int, seg_len: int, ahead: int = 1
) -> Iterator[Segment]:
    """Consecutive truncated-BPTT segments of one id stream split into parallel streams.

    As in Mikolov's RNNLM and the usual "batchify": the stream is cut into ``batch_size``
    contiguous pieces of ``L = len(ids) // batch_size`` symbols (the last ``len(ids) % B``
    symbols are dropped; use ``batch_size=1`` to score a whole split), piece b becoming column
    b. Each column is walked from start to end in segments of ``seg_len`` steps; the input at
    position p is asked to predict the symbol at ``p + ahead`` (1: next character; 5: the
    paper's "5 steps ahead" task), so each column yields ``L - ahead`` predictions. The final
    segment is zero-padded to ``seg_len`` and masked.

    Segment k + 1 continues exactly where segment k stopped, in every column, so the caller
    should carry the hidden state from the end of one segment into the next (the paper's
    200-step sequences "where the hidden state is carried over") and reset it only when it
    starts a new pass over the stream. For one-hot inputs use :func:`~.common.one_hot`.

    Raises:
        UsageError: a non-positive argument, or a stream too short to give each of the
            ``batch_size`` columns at least one prediction.
    """
    check_positive(batch_size=batch_size, seg_len=seg_len, ahead=ahead)
    ids = np.asarray(ids)
    if ids.ndim != 1:
        raise ValueError(f"ids must be one stream of shape (N,), got shape {ids.shape}")
    length = ids.size // batch_size
    if length <= ahead:
        raise UsageError(
            f"a stream of {ids.size} symbols is too short for batch_size={batch_size} and "
            f"ahead={ahead}: each column needs more than {ahead} symbols"
        )
    columns = ids[: batch_size * length].astype(np.int64).reshape(batch_size, length).T  # (L, B)
    return _segment_iter(np.ascontiguousarray(columns), seg_len, ahead)


def _segment_iter(columns: np.ndarray, seg_len: int, ahead: int) -> Iterator[Segment]:
    length, batch = columns.shape
    steps = length - ahead  # predictions per column
    for start in range(0, steps, seg_len):
        k = min(seg_len, steps - start)
        inputs = np.zeros((seg_len, batch), dtype=np.int64)  # (T, B)
        targets = np.zeros((seg_len, batch), dtype=np.int64)  # (T, B)
        mask = np.zeros((seg_len, batch), dtype=np.float32)  # (T, B)
        inputs[:k] = columns[start : start + k]
        targets[:k] = columns[start + ahead : start + ahead + k]
        mask[:k] = 1.0
        yield Segment(inputs, targets, mask, start)


def num_segments(n_ids: int, batch_size: int, seg_len: int, ahead: int = 1) -> int:
    """How many segments :func:`stream_segments` yields for a stream of ``n_ids`` symbols."""
    steps = n_ids // batch_size - ahead
    return max(0, -(-steps // seg_len))
