"""Loaders for the paper's natural tasks: polyphonic music and character-level Penn Treebank.

Nothing is ever downloaded. Data come from a path the user gives or, failing that, from the
directory named by the ``RNNSTAB_DATA`` environment variable, laid out as::

    $RNNSTAB_DATA/polyphonic/JSB_Chorales.mat  (or JSB_Chorales.pickle)
    $RNNSTAB_DATA/polyphonic/Nottingham.mat
    $RNNSTAB_DATA/polyphonic/Piano_midi.mat
    $RNNSTAB_DATA/polyphonic/MuseData.mat
    $RNNSTAB_DATA/ptb_char/ptb.char.{train,valid,test}.txt

Data-set names: ``jsb``, ``nottingham``, ``piano-midi``, ``musedata`` (piano rolls, see
:mod:`.music`) and ``ptb-char`` (see :mod:`.ptb`). Every problem with a file raises
:class:`rnnstab_cli.errors.DataError` with a one-line message.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rnnstab_cli.datasets.common import PathLike, one_hot
from rnnstab_cli.datasets.music import (
    MusicBatch,
    MusicData,
    MusicEvalBatch,
    load_music,
    music_batches,
    music_eval_batches,
)
from rnnstab_cli.datasets.ptb import (
    EOL,
    PtbChar,
    Segment,
    load_ptb_char,
    num_segments,
    ptb_char_files,
    stream_segments,
)
from rnnstab_cli.datasets.ptb import (
    FILE_NAMES as PTB_FILE_NAMES,
)
from rnnstab_cli.errors import DataError, UsageError

__all__ = [
    "DATASETS",
    "DATA_ENV",
    "EOL",
    "DatasetSpec",
    "MusicBatch",
    "MusicData",
    "MusicEvalBatch",
    "PtbChar",
    "Segment",
    "default_data_dir",
    "load_dataset",
    "load_music",
    "load_ptb_char",
    "music_batches",
    "music_eval_batches",
    "num_segments",
    "one_hot",
    "ptb_char_files",
    "resolve_dataset",
    "stream_segments",
]

DATA_ENV = "RNNSTAB_DATA"


@dataclass(frozen=True)
class DatasetSpec:
    """Where a named data set lives inside a data directory.

    ``candidates`` are tried in order (relative to the data directory); for PTB the single
    candidate is the folder holding the three files.
    """

    name: str
    kind: str  # "music" or "ptb-char"
    subdir: str
    candidates: tuple[str, ...]


DATASETS: dict[str, DatasetSpec] = {
    "jsb": DatasetSpec("jsb", "music", "polyphonic", ("JSB_Chorales.mat", "JSB_Chorales.pickle")),
    "nottingham": DatasetSpec("nottingham", "music", "polyphonic", ("Nottingham.mat",)),
    "piano-midi": DatasetSpec("piano-midi", "music", "polyphonic", ("Piano_midi.mat",)),
    "musedata": DatasetSpec("musedata", "music", "polyphonic", ("MuseData.mat",)),
    "ptb-char": DatasetSpec("ptb-char", "ptb-char", "ptb_char", ()),
}


def default_data_dir() -> Path | None:
    """The directory in ``$RNNSTAB_DATA``, or None when the variable is unset or empty.

    The directory is not checked here; :func:`resolve_dataset` reports a missing one.
    """
    value = os.environ.get(DATA_ENV, "").strip()
    return Path(value).expanduser() if value else None


def _spec(name: str) -> DatasetSpec:
    key = name.strip().lower().replace("_", "-")
    if key not in DATASETS:
        raise UsageError(f"unknown data set {name!r}: expected one of {', '.join(DATASETS)}")
    return DATASETS[key]


def _search_dir(spec: DatasetSpec, d: Path, origin: str) -> tuple[Path, ...]:
    """Find ``spec``'s file(s) in ``d`` itself or in its standard sub-folder."""
    if not d.is_dir():
        raise DataError(f"{origin} {d} does not exist or is not a directory")
    if spec.kind == "ptb-char":
        for folder in (d / spec.subdir, d):
            if all((folder / n).is_file() for n in PTB_FILE_NAMES):
                return ptb_char_files(folder)
        return ptb_char_files(d / spec.subdir)  # raises a DataError naming what is missing
    for folder in (d / spec.subdir, d):
        for candidate in spec.candidates:
            if (folder / candidate).is_file():
                return (folder / candidate,)
    raise DataError(
        f"{origin} {d} holds no {' or '.join(spec.candidates)} (looked in {d / spec.subdir} "
        f"and {d}): expected the {spec.name} data set there"
    )


def resolve_dataset(
    name: str, path: PathLike | Sequence[PathLike] | None = None
) -> tuple[Path, ...]:
    """The file(s) of data set ``name``: one music file, or PTB's (train, valid, test).

    ``path`` wins when given: for music a file, for PTB a directory or the three files; a
    directory is searched for the standard file name(s), directly or in its standard
    sub-folder (``polyphonic/``, ``ptb_char/``). Without ``path`` the directory in
    ``$RNNSTAB_DATA`` is searched the same way.

    Raises:
        UsageError: unknown data-set name.
        DataError: neither a path nor ``$RNNSTAB_DATA`` is given, or the files are not there.
    """
    spec = _spec(name)
    if path is not None:
        if not isinstance(path, str | os.PathLike):
            if spec.kind != "ptb-char":
                raise UsageError(f"data set {spec.name} takes one file, not a list of files")
            return ptb_char_files(path)
        p = Path(path).expanduser()
        if p.is_dir():
            return _search_dir(spec, p, "the data path")
        if spec.kind == "ptb-char":
            return ptb_char_files(p)  # raises: PTB needs a directory or three files
        if not p.exists():
            raise DataError(f"{p}: no such file: expected the {spec.name} data set")
        return (p,)
    d = default_data_dir()
    if d is None:
        where = (
            f"{spec.subdir}/{spec.candidates[0]}"
            if spec.candidates
            else f"{spec.subdir}/ptb.char.{{train,valid,test}}.txt"
        )
        raise DataError(
            f"no data for {spec.name}: give a path to it or set {DATA_ENV} to a directory "
            f"holding {where} (nothing is downloaded)"
        )
    return _search_dir(spec, d, f"the {DATA_ENV} directory")


def load_dataset(
    name: str, path: PathLike | Sequence[PathLike] | None = None
) -> MusicData | PtbChar:
    """Resolve (see :func:`resolve_dataset`) and load a named data set."""
    spec = _spec(name)
    files = resolve_dataset(spec.name, path)
    if spec.kind == "ptb-char":
        return load_ptb_char(files)
    return load_music(files[0])
