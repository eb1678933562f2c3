"""The data of a natural-task run: loading, epoch batches, and scoring a split.

Training batches:

- music: every piece is cut into chunks of ``seq_len`` prediction steps, shuffled anew each
  epoch (the order of epoch ``e`` depends only on (seed, e)), ``batch`` chunks per update,
  each chunk starting from x_0 = 0 (:func:`~rnnstab_cli.datasets.music_batches`);
- ptb-char: the training stream is cut into ``batch`` contiguous streams walked in consecutive
  ``seq_len``-step segments (:func:`~rnnstab_cli.datasets.stream_segments`); the trainer
  carries the hidden state from one segment to the next and resets it at each epoch's start.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final, NamedTuple

import numpy as np

from rnnstab_cli.datasets import (
    MusicData,
    PtbChar,
    load_dataset,
    music_batches,
    num_segments,
    one_hot,
    stream_segments,
)
from rnnstab_cli.datasets.music import N_NOTES
from rnnstab_cli.errors import DataError
from rnnstab_cli.training.natural.config import NaturalConfig
from rnnstab_cli.training.natural.metrics import Score, music_score, ptb_score

SPLITS: Final[tuple[str, ...]] = ("train", "valid", "test")
#: RNG stream tag of the epochs' shuffles: (seed, tag, epoch).
STREAM_EPOCH: Final[int] = 11


class TrainBatch(NamedTuple):
    """One update's data, time-major, in the model's dtype."""

    inputs: np.ndarray  # (T, B, I)
    targets: np.ndarray  # (T, B, O) float for music, (T, B) int64 for ptb-char
    mask: np.ndarray  # (T, B)
    steps: int  # scored steps in the batch (mask.sum())


@dataclass(frozen=True)
class NaturalData:
    """A loaded data set with what the model needs to know about it."""

    task: str
    music: MusicData | None
    ptb: PtbChar | None

    @property
    def n_in(self) -> int:
        return N_NOTES if self.ptb is None else self.ptb.vocab_size

    n_out = n_in

    @property
    def vocab(self) -> list[str] | None:
        """PTB's symbols by id (a checkpoint keeps them to check the data it is scored on)."""
        return None if self.ptb is None else list(self.ptb.vocab)

    @property
    def source(self) -> str:
        if self.ptb is not None:
            return str(self.ptb.sources[0].parent)
        assert self.music is not None
        return str(self.music.source)

    def split(self, name: str) -> list[np.ndarray] | np.ndarray:
        data = self.music if self.music is not None else self.ptb
        assert data is not None
        return data.split(name)


def load_natural_data(config: NaturalConfig) -> NaturalData:
    """Load ``config.dataset`` from ``config.data`` (or ``$RNNSTAB_DATA``); DataError if the
    files are missing or malformed."""
    loaded = load_dataset(config.dataset, config.data)
    if isinstance(loaded, PtbChar):
        data = NaturalData(config.task, None, loaded)
    else:
        data = NaturalData(config.task, loaded, None)
    if updates_per_epoch(config, data) == 0:
        raise DataError(f"{data.source}: the training split has no step to predict")
    return data


def updates_per_epoch(config: NaturalConfig, data: NaturalData) -> int:
    """How many updates one pass over the training split takes."""
    if data.ptb is not None:
        return num_segments(len(data.ptb.train), config.batch, config.seq_len, config.ahead)
    assert data.music is not None
    drop = 0 if config.predict_first else 1
    chunks = sum(math.ceil(max(r.shape[0] - drop, 0) / config.seq_len) for r in data.music.train)
    return math.ceil(chunks / config.batch)


def epoch_batches(config: NaturalConfig, data: NaturalData, epoch: int) -> Iterator[TrainBatch]:
    """The updates of epoch ``epoch`` (1-based), in order; the same for the same (seed,
    epoch), so a resumed run sees exactly the batches an uninterrupted one would."""
    dtype = np.dtype(config.dtype)
    if data.ptb is not None:
        vocab = data.ptb.vocab_size
        for seg in stream_segments(data.ptb.train, config.batch, config.seq_len, config.ahead):
            inputs = one_hot(seg.inputs, vocab).astype(dtype, copy=False)  # (T, B, V)
            yield TrainBatch(
                inputs, seg.targets, seg.mask.astype(dtype, copy=False), int(seg.mask.sum())
            )
        return
    assert data.music is not None
    rng = np.random.default_rng([config.seed, STREAM_EPOCH, epoch])
    for b in music_batches(
        data.music.train, config.batch, config.seq_len, rng, predict_first=config.predict_first
    ):
        yield TrainBatch(
            b.inputs.astype(dtype, copy=False),
            b.targets.astype(dtype, copy=False),
            b.mask.astype(dtype, copy=False),
            int(b.lengths.sum()),
        )


def score_split(
    config: NaturalConfig,
    params: dict[str, np.ndarray],
    data: NaturalData,
    split: str,
    threads: int | None = None,
) -> Score:
    """The table's metric of ``params`` on a whole split (NLL per step or bits per char)."""
    if data.ptb is not None:
        return ptb_score(
            params,
            data.ptb.split(split),
            data.ptb.vocab_size,
            config.activation,
            ahead=config.ahead,
            threads=threads,
        )
    assert data.music is not None
    return music_score(
        params,
        data.music.split(split),
        config.activation,
        predict_first=config.predict_first,
        threads=threads,
    )
