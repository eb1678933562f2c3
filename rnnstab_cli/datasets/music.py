"""Polyphonic music data sets (Boulanger-Lewandowski et al., ICML 2012) as binary piano rolls.

Two file forms are read:

* the MATLAB piano-roll files ``JSB_Chorales.mat``, ``Nottingham.mat``, ``Piano_midi.mat`` and
  ``MuseData.mat``: variables ``traindata``, ``validdata``, ``testdata``, each a 1×N cell array
  of T×88 uint8 0/1 matrices;
* the original JSB pickle ``JSB_Chorales.pickle``: a Python-2 protocol-2 pickle of
  ``{'train'|'valid'|'test': [sequence, ...]}``, a sequence being a list of time steps and a
  time step a tuple of MIDI note numbers (numpy int64 scalars).

Both become lists of float32 arrays of shape (T, 88), where column j is MIDI note j + 21 (so the
88 columns are the piano's notes 21..108). The pickle is read with a restricted unpickler that
can only build numpy scalars and dtypes, because unpickling an arbitrary user file with
:func:`pickle.load` can run arbitrary code.

For training, :func:`music_batches` cuts every piece into chunks of ``seq_len`` prediction steps
(the paper uses 200) and yields shuffled, padded, time-major batches for next-step prediction.
For evaluation, :func:`music_eval_batches` yields whole pieces (optionally in consecutive chunks
that the caller must chain by carrying the hidden state), so the negative log-likelihood per
time step can be computed over complete sequences.
"""

from __future__ import annotations

import importlib
import io
import operator
import pickle
import resource
import struct
import subprocess
import sys
import tempfile
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from rnnstab_cli.datasets.common import (
    PathLike,
    check_file_size,
    check_positive,
    one_line,
    read_bytes,
    require_file,
)
from rnnstab_cli.errors import DataError

N_NOTES = 88
"""Columns of a piano roll: the 88 piano keys."""
LOWEST_NOTE = 21
"""MIDI number of column 0 (A0); column j is note ``j + LOWEST_NOTE``."""
HIGHEST_NOTE = LOWEST_NOTE + N_NOTES - 1

MAX_STEPS = 4_000_000
"""The most time steps a data set may hold, all splits together: 1.4 GB of float32 rolls, about
ten times the largest of the four real sets (MuseData). A pickle can reference one long list
many times at no cost in bytes, so the count is checked before any roll is built."""
MAX_NOTES_PER_STEP = 4 * N_NOTES
"""The most note entries one time step may list (there are 88 keys; repeats are harmless)."""

SPLITS = ("train", "valid", "test")
_MAT_VARS = {"train": "traindata", "valid": "validdata", "test": "testdata"}
_MAT_WHAT = "a MATLAB piano-roll file: expected variables traindata, validdata, testdata"
_PICKLE_WHAT = (
    "a piano-roll pickle: expected a dict with keys 'train', 'valid', 'test' mapping to lists "
    "of sequences of tuples of MIDI note numbers 21..108"
)

# Everything scipy's MAT reader is known to raise on a damaged or foreign file, besides its
# own MatReadError (added where scipy is imported: only the process that reads a MAT file
# pays for importing scipy).
_MAT_READ_ERRORS = (
    OSError,
    ValueError,
    TypeError,
    NotImplementedError,  # e.g. MATLAB v7.3 (HDF5) files
    EOFError,
    IndexError,
    KeyError,
    zlib.error,
    struct.error,
    # Found by tests/fuzz_loaders.py on damaged files: scipy's reader fails inside its own
    # code on some headers, or allocates what a header declares.
    UnboundLocalError,
    AttributeError,
    MemoryError,
    OverflowError,
    RecursionError,
)
# Everything the C unpickler raises on damaged input (DataError from find_class is not here, so
# it propagates with its own message).
_PICKLE_READ_ERRORS = (
    pickle.UnpicklingError,
    EOFError,
    ValueError,
    TypeError,
    AttributeError,
    IndexError,
    KeyError,
    struct.error,
    RecursionError,
    # A few bytes can declare a string or frame of gigabytes (found by tests/fuzz_loaders.py):
    # the unpickler's allocation fails before it finds the file too short.
    MemoryError,
    OverflowError,
)


@dataclass(frozen=True)
class MusicData:
    """A polyphonic music data set as binary piano rolls.

    Attributes:
        train, valid, test: one float32 array of shape (T_i, 88) per piece; 1.0 where MIDI note
            ``column + 21`` sounds at time step t, else 0.0.
        source: the file the data came from.
    """

    train: list[np.ndarray]
    valid: list[np.ndarray]
    test: list[np.ndarray]
    source: Path

    def split(self, name: str) -> list[np.ndarray]:
        """The split called ``name`` (``"train"``, ``"valid"`` or ``"test"``)."""
        if name not in SPLITS:
            raise KeyError(f"unknown split {name!r}: expected one of {', '.join(SPLITS)}")
        return getattr(self, name)


def load_music(path: PathLike) -> MusicData:
    """Load a piano-roll data set from a ``.mat`` file or the JSB ``.pickle``.

    The file type is chosen by extension: ``.mat`` for the MATLAB files, ``.pickle``/``.pkl``
    for the original JSB pickle. Nothing is downloaded; ``path`` must name a local file.

    Raises:
        DataError: the file is missing, unreadable, of an unknown type or malformed. The
            message is one line naming the file and what was expected.
    """
    p = require_file(path, "a .mat piano-roll file or the JSB .pickle")
    check_file_size(p, "a .mat piano-roll file or the JSB .pickle")
    suffix = p.suffix.lower()
    if suffix == ".mat":
        return _load_mat(p)
    if suffix in (".pickle", ".pkl"):
        return _load_pickle(p)
    raise DataError(
        f"{p} has an unknown extension {suffix or '(none)'!r}: expected a .mat piano-roll file "
        "or a .pickle of the JSB chorales"
    )


# --------------------------------------------------------------------------------------------
# MATLAB files


#: What the process that reads a MAT file may map beyond what it had at its start: room for
#: the largest real set (MuseData, a few hundred MB as float32 rolls) several times over.
PARSE_BYTES = 2 << 30
#: How long reading a MAT file may take; the real ones take under a second.
PARSE_SECONDS = 300
_CHILD_DATA_ERROR = 3  # the reading process's exit code for a DataError, said on its stderr

# The reading process: limits its own address space, reads and checks the file, and writes the
# rolls as uint8 (the values are 0/1) to an .npz the parent reads back without pickles.
_MAT_CHILD = """
import sys
from pathlib import Path
from rnnstab_cli.datasets.music import read_mat_here, limit_address_space
from rnnstab_cli.errors import DataError
limit_address_space(int(sys.argv[3]))
try:
    data = read_mat_here(Path(sys.argv[1]))
except DataError as e:
    print(e, file=sys.stderr)
    sys.exit(3)
import numpy as np
arrays = {f"{s}_{i:07d}": r.astype(np.uint8) for s in ("train", "valid", "test")
          for i, r in enumerate(getattr(data, s))}
np.savez(sys.argv[2], **arrays)
"""


def _load_mat(p: Path) -> MusicData:
    """Read a MAT file in a separate process. scipy's reader is C code that trusts the file:
    the fuzz target (tests/fuzz_loaders.py) found a 2.5 KB file that kills it with SIGBUS and
    headers that make it allocate gigabytes. A crash, a blow-up or a hang there ends the reading
    process, not this one, and becomes a one-line DataError."""
    with tempfile.TemporaryDirectory(prefix="rnnstab-mat-") as tmp:
        out = Path(tmp) / "rolls.npz"
        cmd = [sys.executable, "-c", _MAT_CHILD, str(p), str(out), str(PARSE_BYTES)]
        try:
            run = subprocess.run(
                cmd, capture_output=True, text=True, timeout=PARSE_SECONDS, check=False
            )
        except subprocess.TimeoutExpired:
            raise DataError(
                f"{p} is not {_MAT_WHAT} (reading it took over {PARSE_SECONDS} s)"
            ) from None
        if run.returncode == _CHILD_DATA_ERROR:
            raise DataError(one_line(run.stderr.strip().splitlines()[-1]))
        if run.returncode != 0:
            how = (
                f"scipy's reader died of signal {-run.returncode}"
                if run.returncode < 0
                else f"scipy's reader failed: {_last_line(run.stderr)}"
            )
            raise DataError(f"{p} is not {_MAT_WHAT} ({how})")
        with np.load(out, allow_pickle=False) as npz:
            keys = sorted(npz.files)
            splits = {
                s: [npz[k].astype(np.float32) for k in keys if k.startswith(f"{s}_")]
                for s in SPLITS
            }
    return MusicData(**splits, source=p)


def _last_line(text: str) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return one_line(lines[-1])[:300] if lines else "no message"


def limit_address_space(extra_bytes: int) -> None:
    """Let this process map at most ``extra_bytes`` more than it has now: an allocation a
    damaged header asks for then fails with MemoryError. Used by the single-threaded reading
    process only; a no-op where /proc or the limit is unavailable."""
    try:
        status = Path("/proc/self/status").read_text()
        used = next(
            int(ln.split()[1]) * 1024 for ln in status.splitlines() if ln.startswith("VmSize:")
        )
        _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        cap = (
            used + extra_bytes if hard == resource.RLIM_INFINITY else min(used + extra_bytes, hard)
        )
        resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    except (OSError, ValueError, StopIteration):
        return


def read_mat_here(p: Path) -> MusicData:
    """Read and check a MAT file in this process (see :func:`_load_mat` for why it is not)."""
    import scipy.io
    from scipy.io.matlab import MatReadError

    try:
        mat = scipy.io.loadmat(p)
    except (MatReadError, *_MAT_READ_ERRORS) as exc:
        raise DataError(f"{p} is not {_MAT_WHAT} (scipy: {one_line(exc)})") from exc
    missing = [v for v in _MAT_VARS.values() if v not in mat]
    if missing:
        raise DataError(f"{p} is not {_MAT_WHAT} (missing: {', '.join(missing)})")
    _check_steps(p, [_mat_steps(mat[v]) for v in _MAT_VARS.values()])
    splits = {s: _mat_cells(p, v, mat[v]) for s, v in _MAT_VARS.items()}
    return MusicData(**splits, source=p)


def _mat_steps(value: Any) -> int:
    """Time steps in a cell array, counted before any roll is converted (0 where a cell is
    not a matrix; :func:`_mat_cells` then says what is wrong)."""
    if not (isinstance(value, np.ndarray) and value.dtype == object):
        return 0
    return sum(c.shape[0] for c in value.ravel() if isinstance(c, np.ndarray) and c.ndim == 2)


def _check_steps(p: Path, counts: Sequence[int]) -> None:
    total = sum(counts)
    if total > MAX_STEPS:
        raise DataError(
            f"{p} holds {total:,} time steps, more than the {MAX_STEPS:,} a piano-roll data set "
            "may have: expected one of the four polyphonic music sets"
        )


def _mat_cells(p: Path, var: str, value: Any) -> list[np.ndarray]:
    """Validate one 1×N cell array of T×88 0/1 matrices and convert it to float32 rolls."""
    if not (isinstance(value, np.ndarray) and value.dtype == object and min(value.shape) <= 1):
        raise DataError(f"{p}: variable {var} is not a 1×N cell array of T×88 piano rolls")
    cells = value.ravel()
    if cells.size == 0:
        raise DataError(f"{p}: variable {var} holds no sequences: expected at least one")
    rolls = []
    for i, cell in enumerate(cells):
        where = f"{p}: {var}{{{i + 1}}}"  # MATLAB's 1-based cell index, as a MATLAB user sees it
        if not (
            isinstance(cell, np.ndarray)
            and cell.ndim == 2
            and cell.shape[1] == N_NOTES
            and cell.shape[0] >= 1
            and (np.issubdtype(cell.dtype, np.number) or cell.dtype == bool)
        ):
            shape = getattr(cell, "shape", None)
            raise DataError(f"{where} has shape {shape}: expected a numeric T×88 matrix, T >= 1")
        if not ((cell == 0) | (cell == 1)).all():
            raise DataError(f"{where} holds values other than 0 and 1: expected a binary roll")
        rolls.append(np.ascontiguousarray(cell, dtype=np.float32))  # (T, 88)
    return rolls


# --------------------------------------------------------------------------------------------
# The original JSB pickle


def _numpy_scalar() -> Any:
    """numpy's scalar reconstructor, wherever this numpy version keeps it.

    numpy 2 moved ``numpy.core`` to ``numpy._core`` and warns on access to the old name, so the
    new location is tried first; the pickle itself still names the old one.
    """
    for module in ("numpy._core.multiarray", "numpy.core.multiarray"):
        try:
            return importlib.import_module(module).scalar
        except (ImportError, AttributeError):
            continue
    raise ImportError("numpy has no multiarray.scalar")  # pragma: no cover - broken numpy


class _RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that can only build numpy scalars and numpy dtypes.

    Every global a pickle names goes through :meth:`find_class`; refusing all but these two
    means a hostile file cannot reach ``os.system``, ``eval`` and the like. The two allowed
    callables only construct plain numpy values.
    """

    def __init__(self, file: io.BufferedIOBase, path: Path) -> None:
        # latin1 maps Python-2 byte strings (numpy scalar payloads) one-to-one onto str.
        super().__init__(file, encoding="latin1")
        self._path = path
        scalar = _numpy_scalar()
        self._allowed: dict[tuple[str, str], Any] = {
            ("numpy.core.multiarray", "scalar"): scalar,
            ("numpy._core.multiarray", "scalar"): scalar,
            ("numpy", "dtype"): np.dtype,
        }

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self._allowed[(module, name)]
        except KeyError:
            raise DataError(
                f"{self._path} is not a safe piano-roll pickle: it references {module}.{name}, "
                "but only numpy.core.multiarray.scalar and numpy.dtype are allowed"
            ) from None


#: The largest pickle read (the JSB pickle has 2 MB): every opcode can add an object, so the
#: file's size bounds what unpickling builds.
MAX_PICKLE_BYTES = 64 << 20


def _load_pickle(p: Path) -> MusicData:
    size = p.stat().st_size
    if size > MAX_PICKLE_BYTES:
        raise DataError(
            f"{p} has {size:,} bytes, more than the {MAX_PICKLE_BYTES:,} a piano-roll pickle may "
            f"have: expected {_PICKLE_WHAT}"
        )
    raw = read_bytes(p, _PICKLE_WHAT)
    try:
        obj = _RestrictedUnpickler(io.BytesIO(raw), p).load()
    except _PICKLE_READ_ERRORS as exc:
        raise DataError(f"{p} is not {_PICKLE_WHAT} (unpickling failed: {one_line(exc)})") from exc
    if not isinstance(obj, dict):
        raise DataError(f"{p} is not {_PICKLE_WHAT} (it holds a {type(obj).__name__}, not a dict)")
    missing = [s for s in SPLITS if s not in obj]
    if missing:
        raise DataError(f"{p} is not {_PICKLE_WHAT} (missing keys: {', '.join(missing)})")
    _check_steps(p, [_pickle_steps(obj[s]) for s in SPLITS])
    splits = {s: _pickle_split(p, s, obj[s]) for s in SPLITS}
    return MusicData(**splits, source=p)


def _pickle_steps(seqs: Any) -> int:
    """Time steps in a split, counted without building anything (lengths of shared lists are
    counted as often as they are referenced, which is what building would cost)."""
    if not isinstance(seqs, list | tuple):
        return 0
    return sum(len(q) for q in seqs if isinstance(q, list | tuple))


def _pickle_split(p: Path, split: str, seqs: Any) -> list[np.ndarray]:
    """Turn one split (list of lists of note tuples) into float32 (T, 88) rolls."""
    if not isinstance(seqs, list | tuple) or not seqs:
        raise DataError(f"{p}: split {split!r} is not a non-empty list of sequences")
    return [_steps_to_roll(p, f"{split}[{i}]", seq) for i, seq in enumerate(seqs)]


def _steps_to_roll(p: Path, where: str, seq: Any) -> np.ndarray:
    if not isinstance(seq, list | tuple) or not seq:
        raise DataError(f"{p}: {where} is not a non-empty list of time steps")
    roll = np.zeros((len(seq), N_NOTES), dtype=np.float32)  # (T, 88)
    for t, step in enumerate(seq):
        if not isinstance(step, tuple | list):
            raise DataError(f"{p}: {where}[{t}] is a {type(step).__name__}: expected a tuple")
        if len(step) > MAX_NOTES_PER_STEP:
            raise DataError(
                f"{p}: {where}[{t}] lists {len(step):,} notes: expected at most "
                f"{MAX_NOTES_PER_STEP} (there are {N_NOTES} keys)"
            )
        for note in step:
            try:
                n = operator.index(note)  # accepts int and numpy integer scalars only
            except TypeError as exc:
                raise DataError(
                    f"{p}: {where}[{t}] holds {note!r}: expected integer MIDI note numbers"
                ) from exc
            if not LOWEST_NOTE <= n <= HIGHEST_NOTE:
                raise DataError(
                    f"{p}: {where}[{t}] holds MIDI note {n}: expected {LOWEST_NOTE}..{HIGHEST_NOTE}"
                )
            roll[t, n - LOWEST_NOTE] = 1.0
    return roll


# --------------------------------------------------------------------------------------------
# Batching


class MusicBatch(NamedTuple):
    """A time-major training batch for next-step prediction.

    Column b holds one chunk of one piece; steps past the chunk's end are zero padding.
    """

    inputs: np.ndarray  # (T, B, 88) float32: frame t
    targets: np.ndarray  # (T, B, 88) float32: frame t + 1
    mask: np.ndarray  # (T, B) float32: 1.0 on real steps, 0.0 on padding
    lengths: np.ndarray  # (B,) int64: real steps in each column


class MusicEvalBatch(NamedTuple):
    """A time-major evaluation batch: (a chunk of) whole pieces.

    ``carry`` is False for the first chunk of a group of pieces (start from the initial hidden
    state) and True for every following chunk of the same group (start from the hidden state
    the previous chunk ended in). ``pieces`` gives each column's position in the input list.
    """

    inputs: np.ndarray  # (T, B, 88) float32
    targets: np.ndarray  # (T, B, 88) float32
    mask: np.ndarray  # (T, B) float32
    pieces: np.ndarray  # (B,) int64
    carry: bool


def _check_rolls(seqs: Sequence[np.ndarray]) -> None:
    for i, s in enumerate(seqs):
        if s.ndim != 2 or s.shape[1] != N_NOTES:
            raise ValueError(f"sequence {i} has shape {s.shape}: expected (T, {N_NOTES})")


def _pairs(roll: np.ndarray, predict_first: bool) -> tuple[np.ndarray, np.ndarray]:
    """Inputs and targets of one piece: (n, 88) each, target row s follows input row s.

    Without ``predict_first`` there are T - 1 pairs (frame t predicts frame t + 1). With it a
    silent frame is put in front, so frame 0 is predicted too, from the initial state (T pairs);
    use this to score every frame of a piece, as some papers do.
    """
    if predict_first:
        silent = np.zeros((1, N_NOTES), dtype=roll.dtype)
        return np.concatenate([silent, roll[:-1]]), roll
    return roll[:-1], roll[1:]  # views, no copy


def music_batches(
    seqs: Sequence[np.ndarray],
    batch_size: int,
    seq_len: int,
    rng: np.random.Generator,
    *,
    predict_first: bool = False,
) -> Iterator[MusicBatch]:
    """One shuffled epoch of training batches for next-step prediction.

    Each piece's prediction steps (frame t -> frame t + 1) are cut into consecutive chunks of
    at most ``seq_len`` steps: chunk k of a piece covers inputs t = k*seq_len .. and its last
    target is the first input of chunk k + 1, so every step of every piece is trained on exactly
    once per epoch. Chunks start from the initial hidden state (no state is carried between
    training chunks, as in the paper's 200-step training sequences). The chunks are shuffled
    with ``rng`` and grouped into batches of ``batch_size`` (the last batch may be smaller).
    Every batch has exactly ``seq_len`` time steps: shorter chunks are zero-padded at the end
    and masked out. To average the loss over real steps, divide by ``mask.sum()``.

    Args:
        seqs: piano rolls of shape (T_i, 88), e.g. ``load_music(...).train``.
        batch_size: chunks per batch (B).
        seq_len: time steps per batch (T); 200 in the paper.
        rng: the generator that shuffles the chunks; pass the same seeded generator to get
            the same epochs.
        predict_first: also predict frame 0 from a silent frame (see :func:`_pairs`).

    Raises:
        UsageError: ``batch_size`` or ``seq_len`` is not a positive integer.
        DataError: no piece has a step to predict.
    """
    check_positive(batch_size=batch_size, seq_len=seq_len)
    _check_rolls(seqs)
    # (piece, first step, steps) for every chunk; computed eagerly so errors surface at call time.
    chunks = [
        (i, start, min(seq_len, n - start))
        for i, s in enumerate(seqs)
        for n in [s.shape[0] - (0 if predict_first else 1)]
        for start in range(0, n, seq_len)
    ]
    if not chunks:
        raise DataError("no piece has a time step to predict: every sequence is too short")
    order = rng.permutation(len(chunks))
    return _music_batch_iter(seqs, chunks, order, batch_size, seq_len, predict_first)


def _music_batch_iter(
    seqs: Sequence[np.ndarray],
    chunks: list[tuple[int, int, int]],
    order: np.ndarray,
    batch_size: int,
    seq_len: int,
    predict_first: bool,
) -> Iterator[MusicBatch]:
    for b0 in range(0, len(order), batch_size):
        group = [chunks[j] for j in order[b0 : b0 + batch_size]]
        b = len(group)
        inputs = np.zeros((seq_len, b, N_NOTES), dtype=np.float32)  # (T, B, 88)
        targets = np.zeros((seq_len, b, N_NOTES), dtype=np.float32)  # (T, B, 88)
        mask = np.zeros((seq_len, b), dtype=np.float32)  # (T, B)
        lengths = np.zeros(b, dtype=np.int64)  # (B,)
        for col, (i, start, k) in enumerate(group):
            x, y = _pairs(seqs[i], predict_first)
            inputs[:k, col] = x[start : start + k]
            targets[:k, col] = y[start : start + k]
            mask[:k, col] = 1.0
            lengths[col] = k
        yield MusicBatch(inputs, targets, mask, lengths)


def music_eval_batches(
    seqs: Sequence[np.ndarray],
    batch_size: int,
    chunk_len: int | None = None,
    *,
    predict_first: bool = False,
) -> Iterator[MusicEvalBatch]:
    """Batches of whole pieces for computing the NLL per time step over complete sequences.

    Pieces are sorted by length (longest first, ties in input order) so that a batch holds
    pieces of similar length and little padding; ``index`` maps columns back to ``seqs``. The
    result does not depend on this order: sum ``mask * nll`` over all batches and divide by the
    sum of all masks to get the mean NLL per predicted time step.

    With ``chunk_len=None`` each batch spans its longest piece in one go (T = longest piece's
    steps). With a ``chunk_len`` a group of pieces is delivered as consecutive chunks of at most
    ``chunk_len`` steps (the last one shorter, not padded); ``carry`` is True for every chunk
    after the first of a group, meaning "continue from the hidden state the previous batch
    ended in", so the pieces are still scored as wholes. Pieces with no step to predict are
    skipped.

    Raises:
        UsageError: ``batch_size`` or ``chunk_len`` is not a positive integer.
    """
    check_positive(batch_size=batch_size)
    if chunk_len is not None:
        check_positive(chunk_len=chunk_len)
    _check_rolls(seqs)
    steps = [s.shape[0] - (0 if predict_first else 1) for s in seqs]
    # Stable sort on -length: longest first, input order among equals; deterministic.
    order = [i for i in sorted(range(len(seqs)), key=lambda i: -steps[i]) if steps[i] > 0]
    return _music_eval_iter(seqs, steps, order, batch_size, chunk_len, predict_first)


def _music_eval_iter(
    seqs: Sequence[np.ndarray],
    steps: list[int],
    order: list[int],
    batch_size: int,
    chunk_len: int | None,
    predict_first: bool,
) -> Iterator[MusicEvalBatch]:
    for g0 in range(0, len(order), batch_size):
        group = order[g0 : g0 + batch_size]
        pairs = [_pairs(seqs[i], predict_first) for i in group]
        total = max(steps[i] for i in group)  # the group's longest piece
        step = chunk_len or total
        for start in range(0, total, step):
            k = min(step, total - start)
            b = len(group)
            inputs = np.zeros((k, b, N_NOTES), dtype=np.float32)  # (T, B, 88)
            targets = np.zeros((k, b, N_NOTES), dtype=np.float32)  # (T, B, 88)
            mask = np.zeros((k, b), dtype=np.float32)  # (T, B)
            for col, (x, y) in enumerate(pairs):
                x_part = x[start : start + k]  # shorter than k (or empty) once the piece ended
                n = x_part.shape[0]
                inputs[:n, col] = x_part
                targets[:n, col] = y[start : start + n]
                mask[:n, col] = 1.0
            yield MusicEvalBatch(
                inputs, targets, mask, np.asarray(group, dtype=np.int64), carry=start > 0
            )
