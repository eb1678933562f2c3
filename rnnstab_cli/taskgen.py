"""Generators for the pathological synthetic tasks of Pascanu, Mikolov & Bengio (2013).

The tasks come from Hochreiter & Schmidhuber (1997) as set up by Martens & Sutskever (2011);
the paper's supplementary appendix ("Experimental setup" → "The pathological synthetic tasks")
gives the definitions reproduced here: addition, multiplication, temporal order, 3-bit temporal
order, random permutation and noiseless memorization.

Every task samples a :class:`Batch` of time-major arrays::

    task = make_task("temporal-order")
    batch = task.sample(batch_size, length, rng)   # rng: numpy.random.Generator
    batch.inputs   # (T, B, I) float32
    batch.targets  # (T, B) int64 (classification) or (T, B, O) float32 (regression)
    batch.mask     # (T, B) float32, 1.0 where the cost applies

Index convention. The paper gives positions as 1-based ranges such as ``[T/10, 2T/10]``, and
neighbouring ranges share their end points (``[1, T'/10]`` and ``[T'/10, T'/2]``). We read a
range ``[aT, bT]`` as the 1-based positions ``p`` with ``aT < p <= bT`` (``a = 0`` for a range
that starts at position 1), i.e. the 0-based array indices ``floor(aT) .. floor(bT) - 1``, all
equally likely. Neighbouring ranges then never share an index, so two marked positions always
differ, and this is also what the authors' code does (``randint(int(.1*l)) + int(.1*l)``).
Every range is non-empty once ``T >= 10``, which is the minimum length of those tasks.

Success criterion (appendix, after Martens & Sutskever 2011): a run has solved a task when at
most :data:`SOLVED_ERROR_RATE` of :data:`TEST_SEQUENCES` freshly sampled sequences are errors;
a regression sequence is an error when its squared error exceeds :data:`REGRESSION_TOLERANCE`.
"""

from __future__ import annotations

import numbers
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar, Final, Literal

import numpy as np
import numpy.typing as npt

from rnnstab_cli.errors import UsageError

__all__ = [
    "REGRESSION_TOLERANCE",
    "SOLVED_ERROR_RATE",
    "TASK_NAMES",
    "TEST_SEQUENCES",
    "Batch",
    "Stack",
    "Task",
    "error_rate",
    "make_task",
]

#: A run has solved a task when at most this fraction of the test sequences are errors.
SOLVED_ERROR_RATE: Final[float] = 0.01
#: Number of freshly sampled sequences the success criterion is measured on.
TEST_SEQUENCES: Final[int] = 10_000
#: A regression sequence is an error when its squared error is above this (appendix: "0.04").
REGRESSION_TOLERANCE: Final[float] = 0.04

TASK_NAMES: Final[tuple[str, ...]] = (
    "addition",
    "multiplication",
    "temporal-order",
    "temporal-order-3bit",
    "random-permutation",
    "memorization",
)

Kind = Literal["classification", "regression"]
Loss = Literal["softmax_ce", "mse"]


@dataclass(frozen=True, eq=False)  # eq=False: element-wise array equality has no truth value
class Batch:
    """One sampled batch, time-major.

    ``inputs`` is (T, B, I) float32; ``targets`` is (T, B) int64 class indices for
    classification or (T, B, O) float32 for regression; ``mask`` is (T, B) float32 with 1.0 at
    the scored steps; ``lengths`` is (B,) int64, each sequence's true length (sequences start at
    step 0 and are zero-padded at the end up to T). Targets at unscored steps carry no meaning.
    """

    inputs: npt.NDArray[np.float32]
    targets: npt.NDArray[np.int64] | npt.NDArray[np.float32]
    mask: npt.NDArray[np.float32]
    lengths: npt.NDArray[np.int64]

    def __post_init__(self) -> None:
        # Cheap shape checks so a hand-built batch cannot silently disagree with itself.
        if self.inputs.ndim != 3:
            raise ValueError(f"inputs must be (T, B, I), got shape {self.inputs.shape}")
        tb = self.inputs.shape[:2]
        if self.mask.shape != tb or self.targets.shape[:2] != tb:
            raise ValueError(
                f"inputs {self.inputs.shape}, targets {self.targets.shape} and mask "
                f"{self.mask.shape} disagree on (T, B)"
            )
        if self.lengths.shape != (tb[1],):
            raise ValueError(f"lengths must be ({tb[1]},), got shape {self.lengths.shape}")

    @property
    def n_steps(self) -> int:
        """T, the number of time steps (the longest sequence's length)."""
        return int(self.inputs.shape[0])

    @property
    def batch_size(self) -> int:
        """B, the number of sequences."""
        return int(self.inputs.shape[1])


@dataclass(frozen=True, eq=False)
class Stack:
    """K batches from :meth:`Task.sample_stack`, each laid out as a :class:`Batch` and padded
    at the end to the longest, T steps: ``inputs`` (K, T, B, I) float32, ``targets`` (K, T, B)
    int64 or (K, T, B, O) float32, ``mask`` (K, T, B) float32, ``lengths`` (K, B) every
    sequence's own length and ``steps`` (K,) each batch's, that of its longest sequence."""

    inputs: npt.NDArray[np.float32]
    targets: npt.NDArray[np.int64] | npt.NDArray[np.float32]
    mask: npt.NDArray[np.float32]
    lengths: npt.NDArray[np.int64]
    steps: npt.NDArray[np.int64]

    def batch(self, k: int) -> Batch:
        """Batch ``k`` alone, without the padding to the other batches' length."""
        n = int(self.steps[k])
        return Batch(self.inputs[k, :n], self.targets[k, :n], self.mask[k, :n], self.lengths[k])


def _one_hot(symbols: npt.NDArray[np.integer], n: int) -> npt.NDArray[np.float32]:
    """One-hot encode integer symbols: (...,) -> (..., n) float32."""
    if n <= _ONE_HOT_TAKE_MAX:
        # Copying rows of the identity is one pass over the output: twice as fast as
        # zeros + scatter at six symbols (the temporal order problem's training data).
        return np.take(_EYES[n], symbols, axis=0)
    # zeros + scatter beats copying identity rows for large n: it writes one value per entry.
    out = np.zeros((*symbols.shape, n), dtype=np.float32)
    flat = out.reshape(-1, n)
    flat[np.arange(flat.shape[0]), symbols.ravel()] = 1.0
    return out


#: Up to this many symbols, :func:`_one_hot` copies rows of an identity matrix.
_ONE_HOT_TAKE_MAX = 16
_EYES = {n: np.eye(n, dtype=np.float32) for n in range(1, _ONE_HOT_TAKE_MAX + 1)}


def _positions(
    rng: np.random.Generator,
    n: npt.ArrayLike,
    lo_tenths: int,
    hi_tenths: int,
    size: int | tuple[int, ...],
) -> npt.NDArray[np.int64]:
    """Uniform 0-based indices for the paper's 1-based range [lo/10 · n, hi/10 · n].

    Returns indices in ``floor(lo·n/10) .. floor(hi·n/10) - 1`` (see the module docstring);
    integer arithmetic avoids float rounding such as ``int(0.3 * 10) == 3`` surprises.
    """
    n = np.asarray(n, dtype=np.int64)
    return rng.integers((lo_tenths * n) // 10, (hi_tenths * n) // 10, size=size, dtype=np.int64)


def _check_int(value: object, what: str, minimum: int) -> int:
    """Return ``value`` as an int, or raise UsageError unless it is an integer >= minimum."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise UsageError(f"{what} must be an integer, got {value!r}")
    if int(value) < minimum:
        raise UsageError(f"{what} must be at least {minimum}, got {int(value)}")
    return int(value)


class Task(ABC):
    """A synthetic task: samples batches and judges a network's outputs on them."""

    name: ClassVar[str]
    kind: ClassVar[Kind]
    #: Smallest ``length`` accepted by :meth:`sample`.
    min_length: ClassVar[int]
    n_in: int
    n_out: int

    @property
    def loss(self) -> Loss:
        """``"softmax_ce"`` for classification, ``"mse"`` for regression."""
        return "softmax_ce" if self.kind == "classification" else "mse"

    @property
    def options(self) -> dict[str, Any]:
        """The options this task was made with (``make_task(name, **task.options)`` rebuilds it)."""
        return {}

    def __repr__(self) -> str:
        opts = ", ".join(f"{k}={v!r}" for k, v in self.options.items())
        return f"make_task({self.name!r}{', ' if opts else ''}{opts})"

    def sample(self, batch_size: int, length: int, rng: np.random.Generator) -> Batch:
        """Sample ``batch_size`` sequences of nominal length ``length`` using ``rng``.

        What ``length`` means is task-specific (the paper's T): see each task's docstring.
        Raises UsageError when ``batch_size`` or ``length`` is out of range.
        """
        return self._sample(*self._checked(batch_size, length, rng))

    def _checked(
        self, batch_size: int, length: int, rng: np.random.Generator
    ) -> tuple[int, int, np.random.Generator]:
        """The arguments of :meth:`sample` and :meth:`sample_stack`, validated."""
        batch_size = _check_int(batch_size, "batch size", 1)
        length = _check_int(length, f"sequence length for task {self.name!r}", self.min_length)
        if not isinstance(rng, np.random.Generator):
            raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
        return batch_size, length, rng

    @abstractmethod
    def _sample(self, batch_size: int, length: int, rng: np.random.Generator) -> Batch: ...

    def sample_stack(
        self, count: int, batch_size: int, length: int, rng: np.random.Generator
    ) -> Stack | None:
        """``count`` batches of ``length`` steps sampled in one pass and stacked, or None when
        this task samples batch by batch only (then call :meth:`sample` ``count`` times).

        Training draws a hundred batches at a time; doing that in whole-array operations keeps
        data generation a small fraction of an update. The batches are not those of ``count``
        calls to :meth:`sample` with the same ``rng`` (the draws come in another order), but
        they follow the same definition; ``count == 1`` gives what :meth:`sample` gives.
        """
        count = _check_int(count, "batch count", 1)
        return self._sample_stack(count, *self._checked(batch_size, length, rng))

    def _sample_stack(
        self, count: int, batch_size: int, length: int, rng: np.random.Generator
    ) -> Stack | None:
        return None

    def errors(self, outputs: npt.ArrayLike, batch: Batch) -> npt.NDArray[np.bool_]:
        """Per-sequence failure flags (B,) bool for raw network ``outputs`` (T, B, O).

        Classification: a sequence is an error when at any scored step (mask > 0) the target's
        output is not the strict maximum — a tie is an error, since its argmax is arbitrary.
        Regression: an error when the squared error summed over scored steps and outputs
        exceeds 0.04. Non-finite outputs at a scored step always count as an error; outputs at
        unscored steps (padding, distractor steps) are ignored whatever they are.
        """
        out = np.asarray(outputs)
        expected = (batch.n_steps, batch.batch_size, self.n_out)
        if out.shape != expected:
            raise ValueError(f"outputs must have shape {expected} for this batch, got {out.shape}")
        scored = batch.mask > 0  # (T, B)
        finite = np.isfinite(out).all(axis=-1)  # (T, B)
        if self.kind == "classification":
            classes = batch.targets.astype(np.int64, copy=False)[..., None]  # (T, B, 1)
            target_out = np.take_along_axis(out, classes, axis=-1)  # (T, B, 1)
            # Exactly one output >= the target's output means the target is the strict argmax;
            # a NaN target output compares False everywhere and so counts as wrong.
            correct = ((out >= target_out).sum(axis=-1) == 1) & finite  # (T, B)
            return np.any(scored & ~correct, axis=0)
        diff = out.astype(np.float64) - batch.targets  # (T, B, O)
        # np.where, not mask *: padding may hold inf/NaN outputs, and 0 * inf is NaN.
        sq = np.where(scored[..., None], diff * diff, 0.0).sum(axis=(0, 2))  # (B,)
        # "not <=" rather than ">" so that a NaN squared error is an error too.
        return ~(sq <= REGRESSION_TOLERANCE) | np.any(scored & ~finite, axis=0)


class _TwoNumberTask(Task):
    """Addition / multiplication (appendix, "Addition problem", "Multiplication problem").

    ``length`` is the paper's T. Each sequence's own length T' is uniform over the integers
    ``T .. floor(11T/10)``. Input channel 0 holds values uniform in [0, 1); channel 1 is a
    marker, 1.0 at exactly two steps: the first uniform over 1-based ``[1, T'/10]`` (0-based
    ``0 .. floor(T'/10) - 1``), the second over ``(T'/10, T'/2]`` (0-based
    ``floor(T'/10) .. floor(T'/2) - 1``), so the two always differ. The single target (O = 1)
    is at the sequence's last step, index T' - 1, which is also the only masked step. The batch
    is as long as its longest sequence; shorter ones are zero-padded at the end.
    """

    kind = "regression"
    min_length = 10
    n_in = 2
    n_out = 1

    @staticmethod
    @abstractmethod
    def _combine(
        v1: npt.NDArray[np.float32], v2: npt.NDArray[np.float32]
    ) -> npt.NDArray[np.float32]: ...

    def _sample(self, batch_size: int, length: int, rng: np.random.Generator) -> Batch:
        return self._sample_stack(1, batch_size, length, rng).batch(0)

    def _sample_stack(
        self, count: int, batch_size: int, length: int, rng: np.random.Generator
    ) -> Stack:
        kb = (count, batch_size)
        k = np.arange(count)[:, None]  # (K, 1)
        b = np.arange(batch_size)  # (B,)
        lengths = rng.integers(length, (11 * length) // 10, size=kb, endpoint=True)  # (K, B)
        n_steps = int(lengths.max())
        p1 = _positions(rng, lengths, 0, 1, kb)  # (K, B)
        p2 = _positions(rng, lengths, 1, 5, kb)  # (K, B)
        values = rng.random((count, n_steps, batch_size), dtype=np.float32)  # (K, T, B)
        inside = np.arange(n_steps)[:, None] < lengths[:, None, :]  # (K, T, B)
        values *= inside  # pad with zeros past each sequence's end
        inputs = np.zeros((count, n_steps, batch_size, 2), dtype=np.float32)  # (K, T, B, I)
        inputs[..., 0] = values
        inputs[k, p1, b, 1] = 1.0
        inputs[k, p2, b, 1] = 1.0
        last = lengths - 1  # (K, B)
        targets = np.zeros((count, n_steps, batch_size, 1), dtype=np.float32)  # (K, T, B, O)
        targets[k, last, b, 0] = self._combine(values[k, p1, b], values[k, p2, b])
        mask = np.zeros((count, n_steps, batch_size), dtype=np.float32)  # (K, T, B)
        mask[k, last, b] = 1.0
        return Stack(inputs, targets, mask, lengths.astype(np.int64), lengths.max(axis=1))


class AdditionTask(_TwoNumberTask):
    __doc__ = (_TwoNumberTask.__doc__ or "") + "\n    Target: (v1 + v2) / 2.\n"
    name = "addition"

    @staticmethod
    def _combine(v1: npt.NDArray[np.float32], v2: npt.NDArray[np.float32]) -> Any:
        return (v1 + v2) / np.float32(2)


class MultiplicationTask(_TwoNumberTask):
    __doc__ = (_TwoNumberTask.__doc__ or "") + "\n    Target: v1 * v2.\n"
    name = "multiplication"

    @staticmethod
    def _combine(v1: npt.NDArray[np.float32], v2: npt.NDArray[np.float32]) -> Any:
        return v1 * v2


class _TemporalOrderTask(Task):
    """Temporal order (appendix, "Temporal order problem" and "3-bit temporal order problem").

    ``length`` is T, the same for every sequence. Inputs are one-hot over six symbols
    (I = 6, channels A, B, c, d, e, f). Every step is a distractor c..f uniformly, except one
    step in each of the task's ranges, which holds A or B with probability 1/2 each. The ranges
    (1-based, paper) are [T/10, 2T/10] and [4T/10, 5T/10] for 2 bits, and [T/10, 2T/10],
    [3T/10, 4T/10], [6T/10, 7T/10] for 3 bits; a range [aT, bT] is drawn over the 0-based
    indices ``floor(aT) .. floor(bT) - 1``. The class, scored at the last step only, reads the
    A/B symbols in time order as a binary number with A = 0, B = 1, the first one most
    significant: AA=0, AB=1, BA=2, BB=3 (and AAA=0 … BBB=7).
    """

    kind = "classification"
    min_length = 10
    n_in = 6
    #: (lo, hi) of each marked range, in tenths of T.
    ranges: tuple[tuple[int, int], ...]

    def __init__(self) -> None:
        self.n_out = 2 ** len(self.ranges)

    def _sample(self, batch_size: int, length: int, rng: np.random.Generator) -> Batch:
        return self._sample_stack(1, batch_size, length, rng).batch(0)

    def _sample_stack(
        self, count: int, batch_size: int, length: int, rng: np.random.Generator
    ) -> Stack:
        k = np.arange(count)[:, None]  # (K, 1)
        b = np.arange(batch_size)  # (B,)
        symbols = rng.integers(2, 6, size=(count, length, batch_size))  # (K, T, B), c..f
        label = np.zeros((count, batch_size), dtype=np.int64)  # (K, B)
        for lo, hi in self.ranges:
            pos = _positions(rng, length, lo, hi, (count, batch_size))  # (K, B)
            bit = rng.integers(0, 2, size=(count, batch_size))  # (K, B) 0 = A, 1 = B
            symbols[k, pos, b] = bit
            label = 2 * label + bit
        targets = np.zeros((count, length, batch_size), dtype=np.int64)  # (K, T, B)
        targets[:, -1] = label
        mask = np.zeros((count, length, batch_size), dtype=np.float32)  # (K, T, B)
        mask[:, -1] = 1.0
        lengths = np.full((count, batch_size), length, dtype=np.int64)
        return Stack(_one_hot(symbols, 6), targets, mask, lengths, np.full(count, length))


#: Where temporal order's second symbol goes, in tenths of T: the paper's text says
#: [4T/10, 5T/10]; the authors' released code (tempOrder.py) draws it from [5T/10, 6T/10).
TEMPORAL_ORDER_POSITIONS: Final[dict[str, tuple[tuple[int, int], ...]]] = {
    "paper": ((1, 2), (4, 5)),
    "authors": ((1, 2), (5, 6)),
}


class TemporalOrderTask(_TemporalOrderTask):
    __doc__ = (_TemporalOrderTask.__doc__ or "") + (
        '\n    Option ``positions``: ``"paper"`` (default, the ranges above) or ``"authors"``\n'
        "    (the authors' released code: the second symbol in [5T/10, 6T/10]).\n"
    )
    name = "temporal-order"
    ranges = TEMPORAL_ORDER_POSITIONS["paper"]

    def __init__(self, positions: str = "paper") -> None:
        if positions not in TEMPORAL_ORDER_POSITIONS:
            raise UsageError(
                f"temporal-order positions must be one of "
                f"{', '.join(TEMPORAL_ORDER_POSITIONS)}, got {positions!r}"
            )
        self.positions = positions
        self.ranges = TEMPORAL_ORDER_POSITIONS[positions]
        super().__init__()

    @property
    def options(self) -> dict[str, Any]:
        return {} if self.positions == "paper" else {"positions": self.positions}


class TemporalOrder3BitTask(_TemporalOrderTask):
    __doc__ = _TemporalOrderTask.__doc__
    name = "temporal-order-3bit"
    ranges = ((1, 2), (3, 4), (6, 7))


class RandomPermutationTask(Task):
    """Random permutation (appendix, "Random permutation problem").

    ``length`` is the number of symbols in the sequence. The dictionary has 100 symbols, one-hot
    (I = O = 100); the paper's symbol k is class index k - 1. The first and last symbols are
    equal and uniform over {1, 2} (indices 0, 1); the others are uniform over [3, 100]
    (indices 2..99). The task is next-symbol prediction, so ``length`` symbols give
    ``length - 1`` steps: the input at step t is symbol t and the target is symbol t + 1. Only
    the last target (equal to the first symbol) is predictable; by default only that step is
    masked, as in the authors' code, and ``cost_every_step=True`` masks every step.
    """

    name = "random-permutation"
    kind = "classification"
    min_length = 3  # first and last symbol plus at least one from [3, 100]
    n_in = 100
    n_out = 100

    def __init__(self, cost_every_step: bool = False) -> None:
        if not isinstance(cost_every_step, bool | np.bool_):
            raise UsageError(f"cost_every_step must be true or false, got {cost_every_step!r}")
        self.cost_every_step = bool(cost_every_step)

    @property
    def options(self) -> dict[str, Any]:
        return {"cost_every_step": self.cost_every_step}

    def _sample(self, batch_size: int, length: int, rng: np.random.Generator) -> Batch:
        symbols = rng.integers(2, 100, size=(length, batch_size))  # (L, B)
        first = rng.integers(0, 2, size=batch_size)  # (B,)
        symbols[0] = first
        symbols[-1] = first
        n_steps = length - 1
        inputs = _one_hot(symbols[:-1], 100)  # (T, B, I)
        targets = symbols[1:].astype(np.int64)  # (T, B)
        if self.cost_every_step:
            mask = np.ones((n_steps, batch_size), dtype=np.float32)
        else:
            mask = np.zeros((n_steps, batch_size), dtype=np.float32)
            mask[-1] = 1.0
        lengths = np.full(batch_size, n_steps, dtype=np.int64)
        return Batch(inputs, targets, mask, lengths)


class MemorizationTask(Task):
    """Noiseless memorization (appendix, "Noiseless memorization problem").

    ``length`` is T, the number of filler steps. A pattern of P symbols uniform over an
    alphabet of V is shown one-hot, then the filler, then the pattern must be reproduced.
    Inputs have I = V + 2 channels: V symbol channels, the filler channel (index V) and the
    go channel (index V + 1); outputs are O = V classes. Layout, P + T + P steps in all, as in
    the authors' code::

        steps 0 .. P-1              pattern symbols (one-hot), no cost
        steps P .. P+T-1            filler channel = 1, no cost
        step  P+T                   go channel = 1 (instead of filler); first output step
        steps P+T+1 .. P+T+P-1      filler channel = 1
        steps P+T .. 2P+T-1         target = pattern[k] at step P+T+k, mask = 1

    So the go signal arrives on the first output step itself (no separate cue step). Defaults
    P = 5, V = 2 are the paper's 5-bit task; P = 10, V = 5 is the "over 20 bits" variant of
    Martens & Sutskever (2011).
    """

    name = "memorization"
    kind = "classification"
    min_length = 1

    def __init__(self, pattern_length: int = 5, n_values: int = 2) -> None:
        self.pattern_length = _check_int(pattern_length, "pattern_length", 1)
        self.n_values = _check_int(n_values, "n_values", 2)
        self.n_in = self.n_values + 2
        self.n_out = self.n_values

    @property
    def options(self) -> dict[str, Any]:
        return {"pattern_length": self.pattern_length, "n_values": self.n_values}

    def _sample(self, batch_size: int, length: int, rng: np.random.Generator) -> Batch:
        p, v = self.pattern_length, self.n_values
        n_steps = 2 * p + length
        go = p + length
        pattern = rng.integers(0, v, size=(p, batch_size))  # (P, B)
        inputs = np.zeros((n_steps, batch_size, v + 2), dtype=np.float32)  # (T, B, I)
        inputs[:p, :, :v] = _one_hot(pattern, v)
        inputs[p:, :, v] = 1.0
        inputs[go, :, v] = 0.0
        inputs[go, :, v + 1] = 1.0
        targets = np.zeros((n_steps, batch_size), dtype=np.int64)  # (T, B)
        targets[go:] = pattern
        mask = np.zeros((n_steps, batch_size), dtype=np.float32)  # (T, B)
        mask[go:] = 1.0
        lengths = np.full(batch_size, n_steps, dtype=np.int64)
        return Batch(inputs, targets, mask, lengths)


_TASKS: Final[dict[str, type[Task]]] = {
    cls.name: cls
    for cls in (
        AdditionTask,
        MultiplicationTask,
        TemporalOrderTask,
        TemporalOrder3BitTask,
        RandomPermutationTask,
        MemorizationTask,
    )
}
assert tuple(_TASKS) == TASK_NAMES

_OPTIONS: Final[dict[str, tuple[str, ...]]] = {
    "temporal-order": ("positions",),
    "random-permutation": ("cost_every_step",),
    "memorization": ("pattern_length", "n_values"),
}


def make_task(name: str, **options: Any) -> Task:
    """Build the task called ``name`` (one of :data:`TASK_NAMES`) with keyword ``options``.

    Options: ``temporal-order`` takes ``positions`` (``"paper"`` or ``"authors"``);
    ``random-permutation`` takes ``cost_every_step`` (bool, default False);
    ``memorization`` takes ``pattern_length`` (default 5) and ``n_values`` (default 2); the
    others take none. Raises UsageError for an unknown name, option or option value.
    """
    cls = _TASKS.get(name) if isinstance(name, str) else None
    if cls is None:
        raise UsageError(f"unknown task {name!r}; valid tasks: {', '.join(TASK_NAMES)}")
    valid = _OPTIONS.get(cls.name, ())
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise UsageError(
            f"task {cls.name!r} does not take option(s) {', '.join(unknown)}; "
            f"valid options: {', '.join(valid) if valid else 'none'}"
        )
    return cls(**options)


def error_rate(task: Task, outputs: npt.ArrayLike, batch: Batch) -> float:
    """Fraction of the batch's sequences that ``task.errors`` flags (solved if <= 0.01)."""
    return float(np.mean(task.errors(outputs, batch)))
