"""Helpers shared by the data-set loaders: file checks, one-line error text, one-hot encoding.

Everything here is small on purpose. The loaders themselves live in :mod:`.music` and
:mod:`.ptb`; this module only holds what both of them (and their callers) need.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from rnnstab_cli.errors import DataError, UsageError

PathLike = str | os.PathLike[str]

#: The largest data file read (the largest real one, character-level PTB's training text, is
#: 5 MB): a bigger file is refused before it is read.
MAX_FILE_BYTES = 1 << 30


def one_line(exc: BaseException | str) -> str:
    """The text of ``exc`` (an exception or a message) squeezed onto one line.

    Third-party messages (scipy, pickle) sometimes span several lines; our error contract is
    one line per message, so whitespace runs are collapsed.
    """
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def require_file(path: PathLike, what: str) -> Path:
    """Return ``path`` as a :class:`Path` if it names an existing regular file.

    ``what`` describes the expected content (e.g. "a MATLAB piano-roll file") so the error can
    say both which file is wrong and what was wanted.

    Raises:
        DataError: the path does not exist or is not a regular file.
    """
    p = Path(path).expanduser()
    if not p.exists():
        raise DataError(f"{p}: no such file: expected {what}")
    if not p.is_file():
        raise DataError(f"{p} is not a regular file: expected {what}")
    return p


def check_file_size(path: Path, what: str) -> None:
    """DataError when ``path`` is larger than :data:`MAX_FILE_BYTES`."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise DataError(f"{path} cannot be read ({one_line(exc)}): expected {what}") from exc
    if size > MAX_FILE_BYTES:
        raise DataError(
            f"{path} has {size:,} bytes, more than the {MAX_FILE_BYTES:,} a data file may have: "
            f"expected {what}"
        )


def read_bytes(path: Path, what: str) -> bytes:
    """Read a whole file, turning OS-level failures into :class:`DataError`."""
    check_file_size(path, what)
    try:
        return path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path} cannot be read ({one_line(exc)}): expected {what}") from exc


def check_positive(**values: int) -> None:
    """Raise :class:`UsageError` unless every keyword value is an integer >= 1.

    Batch sizes and lengths usually come straight from command-line options, so a bad value is
    a user mistake, not a bug.
    """
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
            raise UsageError(f"{name} must be a positive integer, got {value!r}")


def one_hot(ids: np.ndarray, vocab_size: int) -> np.ndarray:
    """One-hot encode integer ids: shape ``ids.shape + (vocab_size,)``, dtype float32.

    Padded positions (whatever id they hold) are encoded like any other id; the caller's mask
    decides whether they count.

    Raises:
        ValueError: an id lies outside ``[0, vocab_size)`` (a programming error: ids come from
            our own loaders).
    """
    ids = np.asarray(ids)
    if ids.size and (ids.min() < 0 or ids.max() >= vocab_size):
        raise ValueError(f"ids must lie in [0, {vocab_size}), got [{ids.min()}, {ids.max()}]")
    out = np.zeros((*ids.shape, vocab_size), dtype=np.float32)
    # put_along_axis writes a 1 at each id without building a (V, V) identity matrix.
    np.put_along_axis(out, ids[..., None].astype(np.intp), 1.0, axis=-1)
    return out
