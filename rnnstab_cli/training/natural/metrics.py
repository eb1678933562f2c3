"""The tables' metrics, computed over whole splits from the model's outputs.

- Table 1 (polyphonic music): negative log-likelihood per time step, in nats: for each
  predicted frame, the Bernoulli NLL summed over the 88 notes,
  ``Σ_j softplus(z_j) − y_j·z_j`` with ``z`` the output logits; averaged over every predicted
  frame of every piece (pieces are scored whole; long ones in chunks with the hidden state
  carried, which gives exactly the whole-piece result).
- Table 2 (character-level PTB): bits per character: the softmax cross-entropy of each
  prediction, ``logsumexp(z) − z_target``, averaged over every predicted character and divided
  by ln 2. The split is scored as one stream (as Mikolov's RNNLM does), in chunks with the state
  carried: ``N − ahead`` predictions for a split of ``N`` symbols (end-of-line included).

Sums are taken in float64 whatever the model's dtype.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np

from rnnstab_cli.datasets import music_eval_batches, one_hot, stream_segments
from rnnstab_cli.engine import forward

LN2: Final[float] = math.log(2.0)
#: Pieces per forward call when scoring music, and steps per chunk (bounds memory: the
#: engine keeps (T, B, H) states; 32 × 500 × 400 floats is 25 MB).
MUSIC_EVAL_BATCH: Final[int] = 32
MUSIC_EVAL_CHUNK: Final[int] = 500
#: Characters per forward call when scoring a PTB stream.
PTB_EVAL_CHUNK: Final[int] = 10_000

UNITS: Final[dict[str, str]] = {"nll": "nats/step", "bpc": "bits/char"}


@dataclass(frozen=True)
class Score:
    """``nats`` of negative log-likelihood over ``count`` predictions (time steps for music,
    characters for PTB); :attr:`value` is the table's number."""

    metric: str  # "nll" or "bpc"
    nats: float
    count: int

    @property
    def value(self) -> float:
        if self.count == 0:
            return math.nan
        per = self.nats / self.count
        return per / LN2 if self.metric == "bpc" else per

    @property
    def unit(self) -> str:
        return UNITS[self.metric]


def bernoulli_nll(logits: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """NLL of binary ``targets (T, B, O)`` under sigmoid(``logits``), summed over O: (T, B).

    ``softplus(z) − y·z`` is ``−log σ(z)`` for y = 1 and ``−log(1 − σ(z))`` for y = 0;
    ``logaddexp(0, z)`` computes softplus without overflow.
    """
    z = np.asarray(logits, dtype=np.float64)
    return (np.logaddexp(0.0, z) - np.asarray(targets, dtype=np.float64) * z).sum(axis=-1)


def softmax_nll(logits: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Cross-entropy of class ``targets (T, B)`` under softmax(``logits (T, B, V)``): (T, B)."""
    z = np.asarray(logits, dtype=np.float64)
    top = z.max(axis=-1, keepdims=True)
    lse = np.log(np.exp(z - top).sum(axis=-1)) + top[..., 0]
    picked = np.take_along_axis(z, np.asarray(targets)[..., None].astype(np.intp), axis=-1)
    return lse - picked[..., 0]


def music_score(
    params: Mapping[str, np.ndarray],
    rolls: Sequence[np.ndarray],
    activation: str,
    *,
    predict_first: bool = False,
    threads: int | None = None,
    batch: int = MUSIC_EVAL_BATCH,
    chunk: int = MUSIC_EVAL_CHUNK,
) -> Score:
    """NLL per time step (nats) of piano ``rolls`` (each (T, 88)), each piece scored whole."""
    dtype = params["W_rec"].dtype
    nats = 0.0
    count = 0
    state: np.ndarray | None = None
    for b in music_eval_batches(rolls, batch, chunk, predict_first=predict_first):
        x0 = state if b.carry else None
        logits, state = forward(
            params, b.inputs.astype(dtype, copy=False), activation, x0=x0, threads=threads,
            return_state=True,
        )  # fmt: skip  # logits (T, B, 88), state (B, H)
        nats += float((bernoulli_nll(logits, b.targets) * b.mask).sum())
        count += int(b.mask.sum())
    return Score("nll", nats, count)


def ptb_score(
    params: Mapping[str, np.ndarray],
    ids: np.ndarray,
    vocab_size: int,
    activation: str,
    *,
    ahead: int = 1,
    threads: int | None = None,
    chunk: int = PTB_EVAL_CHUNK,
) -> Score:
    """Bits per character of the id stream ``ids``, predicting ``ahead`` symbols ahead."""
    dtype = params["W_rec"].dtype
    nats = 0.0
    count = 0
    state: np.ndarray | None = None
    for seg in stream_segments(ids, 1, chunk, ahead):
        inputs = one_hot(seg.inputs, vocab_size).astype(dtype, copy=False)  # (T, 1, V)
        logits, state = forward(
            params, inputs, activation, x0=state, threads=threads, return_state=True
        )  # logits (T, 1, V)
        nats += float((softmax_nll(logits, seg.targets) * seg.mask).sum())
        count += int(seg.mask.sum())
    return Score("bpc", nats, count)
