"""Training data in chunks: K batches stacked for one ``Trainer.steps`` call, generated in a
background thread while the engine trains on the previous chunk.

Update ``u`` always trains on batch ``u % K`` of chunk ``u // K``, and chunk ``c`` is drawn from
``default_rng([seed, 1, c])`` alone. The data a run sees is therefore a function of the update
counter only: prefetching, evaluation boundaries, budgets and resuming never change it.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from rnnstab_cli.taskgen import Batch, Task
from rnnstab_cli.training.config import LengthRange

#: RNG stream tag of the training data (evaluation uses 2 and 3, see evaluate.py).
STREAM_TRAIN = 1


@dataclass(frozen=True)
class Chunk:
    """K batches padded at the end to a common length T, with mask 0 on the padding.

    ``inputs (K, T, B, I)``, ``targets (K, T, B)`` int64 or ``(K, T, B, O)`` float,
    ``mask (K, T, B)``, ``steps (K,)`` each batch's own length before padding.
    """

    index: int
    inputs: npt.NDArray[np.floating]
    targets: npt.NDArray[np.generic]
    mask: npt.NDArray[np.floating]
    steps: npt.NDArray[np.int64]

    @classmethod
    def in_dtype(
        cls,
        index: int,
        inputs: np.ndarray,
        targets: np.ndarray,
        mask: np.ndarray,
        steps: np.ndarray,
        dtype: np.dtype,
    ) -> Chunk:
        """A chunk of stacked arrays in the training dtype: inputs, mask and regression
        targets (K, T, B, O) converted, class indices (K, T, B) kept as int64."""
        regression = targets.ndim == 4
        return cls(
            index,
            inputs.astype(dtype, copy=False),
            targets.astype(dtype if regression else np.int64, copy=False),
            mask.astype(dtype, copy=False),
            steps.astype(np.int64, copy=False),
        )

    def __len__(self) -> int:
        return int(self.inputs.shape[0])

    def slice(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Batches ``start .. stop - 1`` as views (the leading axis keeps them contiguous)."""
        return self.inputs[start:stop], self.targets[start:stop], self.mask[start:stop]


def pad_and_stack(batches: Sequence[Batch], dtype: np.dtype, index: int = 0) -> Chunk:
    """Stack batches of possibly different lengths into one :class:`Chunk`.

    Padding goes at the end with zero inputs, zero targets and mask 0; the engine stops BPTT
    after the last masked step, so padding changes neither the result nor the cost.
    """
    k = len(batches)
    t = max(b.n_steps for b in batches)
    if all(b.n_steps == t for b in batches):
        # No padding (a fixed length): stacking copies each batch once, with no zero fill.
        return Chunk.in_dtype(
            index,
            np.stack([b.inputs for b in batches]),
            np.stack([b.targets for b in batches]),
            np.stack([b.mask for b in batches]),
            np.full(k, t),
            dtype,
        )
    first = batches[0]
    bsz, n_in = first.inputs.shape[1:]
    regression = first.targets.ndim == 3
    inputs = np.zeros((k, t, bsz, n_in), dtype=dtype)  # (K, T, B, I)
    if regression:
        targets = np.zeros((k, t, bsz, first.targets.shape[2]), dtype=dtype)  # (K, T, B, O)
    else:
        targets = np.zeros((k, t, bsz), dtype=np.int64)  # (K, T, B)
    mask = np.zeros((k, t, bsz), dtype=dtype)  # (K, T, B)
    steps = np.empty(k, dtype=np.int64)
    for i, b in enumerate(batches):
        n = b.n_steps
        inputs[i, :n] = b.inputs
        targets[i, :n] = b.targets
        mask[i, :n] = b.mask
        steps[i] = n
    return Chunk(index, inputs, targets, mask, steps)


def make_chunk(
    task: Task,
    *,
    seed: int,
    index: int,
    size: int,
    batch: int,
    length: LengthRange,
    dtype: np.dtype,
) -> Chunk:
    """Chunk ``index`` of a run: ``size`` batches from ``default_rng([seed, 1, index])``, each
    of a length drawn uniformly from ``length`` (the paper's single model for all lengths)."""
    rng = np.random.default_rng([seed, STREAM_TRAIN, index])
    if length.fixed:
        stack = task.sample_stack(size, batch, length.lo, rng)
        if stack is not None:
            return Chunk.in_dtype(
                index, stack.inputs, stack.targets, stack.mask, stack.steps, dtype
            )
        lengths = np.full(size, length.lo)
    else:
        lengths = rng.integers(length.lo, length.hi, size=size, endpoint=True)
    batches = [task.sample(batch, int(n), rng) for n in lengths]
    return pad_and_stack(batches, dtype, index)


class ChunkSource:
    """Hands out chunks by index, generating the next one in a background thread.

    Sampling is numpy work that holds the GIL only briefly; the engine releases the GIL while
    it trains, so the next chunk is usually ready before it is asked for.
    """

    def __init__(
        self,
        task: Task,
        *,
        seed: int,
        size: int,
        batch: int,
        length: LengthRange,
        dtype: np.dtype,
    ) -> None:
        self._make = lambda index: make_chunk(
            task, seed=seed, index=index, size=size, batch=batch, length=length, dtype=dtype
        )
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rnnstab-data")
        self._pending: dict[int, Future[Chunk]] = {}
        self._current: Chunk | None = None

    def get(self, index: int) -> Chunk:
        """Chunk ``index``; also starts generating ``index + 1``."""
        if self._current is None or self._current.index != index:
            fut = self._pending.pop(index, None)
            self._current = fut.result() if fut is not None else self._make(index)
            for stale in [i for i in self._pending if i != index + 1]:
                self._pending.pop(stale).cancel()
        if index + 1 not in self._pending:
            self._pending[index + 1] = self._pool.submit(self._make, index + 1)
        return self._current

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def __enter__(self) -> ChunkSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
