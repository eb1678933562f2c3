"""Golden tests for rnnstab_cli.taskgen: the pathological tasks of the paper's appendix.

Every definition check reads the sampled arrays back (positions from the marker channel,
classes from the one-hot symbols, ...) and compares them with the appendix's definition, so a
generator that drifts from the paper fails here.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rnnstab_cli.errors import UsageError
from rnnstab_cli.taskgen import (
    SOLVED_ERROR_RATE,
    TASK_NAMES,
    TEST_SEQUENCES,
    Batch,
    Task,
    error_rate,
    make_task,
)

# name -> (n_in, n_out, kind, loss) as fixed by the appendix and the public API.
EXPECTED_META = {
    "addition": (2, 1, "regression", "mse"),
    "multiplication": (2, 1, "regression", "mse"),
    "temporal-order": (6, 4, "classification", "softmax_ce"),
    "temporal-order-3bit": (6, 8, "classification", "softmax_ce"),
    "random-permutation": (100, 100, "classification", "softmax_ce"),
    "memorization": (4, 2, "classification", "softmax_ce"),
}

#: The tasks that sample many batches in one pass (Task.sample_stack).
STACKED = ["addition", "multiplication", "temporal-order", "temporal-order-3bit"]


# Upper 1e-4 quantiles of the chi-square distribution (df = 3, 5, 7); a correct generator
# fails a balance test with probability 1e-4, and the seeds are fixed, so it never flakes.
CHI2_CRIT_1E4 = {3: 21.108, 5: 25.745, 7: 29.877}


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def chi_square(counts: npt.NDArray[np.int64]) -> float:
    """Pearson statistic of ``counts`` against the uniform distribution."""
    expected = counts.sum() / counts.size
    return float(((counts - expected) ** 2 / expected).sum())


def perfect_outputs(task: Task, batch: Batch) -> npt.NDArray[np.float64]:
    """Outputs a perfect network would give: scaled one-hot logits or the exact targets."""
    if task.kind == "classification":
        return 5.0 * np.eye(task.n_out)[batch.targets]  # (T, B, O)
    return batch.targets.astype(np.float64).copy()  # (T, B, O)


# --------------------------------------------------------------------------- API and shapes


def test_constants() -> None:
    assert SOLVED_ERROR_RATE == 0.01
    assert TEST_SEQUENCES == 10_000
    assert set(TASK_NAMES) == set(EXPECTED_META)


@pytest.mark.parametrize("name", TASK_NAMES)
def test_metadata_shapes_and_dtypes(name: str) -> None:
    task = make_task(name)
    n_in, n_out, kind, loss = EXPECTED_META[name]
    assert (task.name, task.n_in, task.n_out, task.kind, task.loss) == (
        name,
        n_in,
        n_out,
        kind,
        loss,
    )
    batch = task.sample(7, 30, rng())
    t, b = batch.n_steps, batch.batch_size
    assert b == 7
    assert batch.inputs.shape == (t, 7, n_in) and batch.inputs.dtype == np.float32
    assert batch.mask.shape == (t, 7) and batch.mask.dtype == np.float32
    assert batch.lengths.shape == (7,) and batch.lengths.dtype == np.int64
    if kind == "classification":
        assert batch.targets.shape == (t, 7) and batch.targets.dtype == np.int64
        assert batch.targets.min() >= 0 and batch.targets.max() < n_out
    else:
        assert batch.targets.shape == (t, 7, n_out) and batch.targets.dtype == np.float32
    assert set(np.unique(batch.mask)) <= {0.0, 1.0}
    assert batch.lengths.max() == t
    with pytest.raises(AttributeError):  # Batch is frozen
        batch.mask = batch.mask  # type: ignore[misc]


@pytest.mark.parametrize("name", TASK_NAMES)
def test_same_seed_same_batch_different_seed_different(name: str) -> None:
    task = make_task(name)
    a, b, c = (task.sample(16, 40, rng(s)) for s in (3, 3, 4))
    for field in ("inputs", "targets", "mask", "lengths"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    # The inputs carry every random draw, so a different seed must change them.
    assert a.inputs.shape != c.inputs.shape or not np.array_equal(a.inputs, c.inputs)


@given(
    name=st.sampled_from(TASK_NAMES),
    batch_size=st.integers(1, 6),
    extra=st.integers(0, 50),
    seed=st.integers(0, 2**32 - 1),
)
def test_invariants_any_length(name: str, batch_size: int, extra: int, seed: int) -> None:
    """For any valid size: masked steps lie inside each sequence, perfect outputs score 0."""
    task = make_task(name)
    length = type(task).min_length + extra
    check_invariants(task, task.sample(batch_size, length, rng(seed)))


@given(
    name=st.sampled_from(STACKED),
    count=st.integers(1, 4),
    batch_size=st.integers(1, 6),
    extra=st.integers(0, 50),
    seed=st.integers(0, 2**32 - 1),
)
def test_invariants_of_each_batch_of_a_stack(
    name: str, count: int, batch_size: int, extra: int, seed: int
) -> None:
    """Every batch of a stack, cut to its own length, is a batch as ``sample`` gives them."""
    task = make_task(name)
    length = type(task).min_length + extra
    stack = task.sample_stack(count, batch_size, length, rng(seed))
    assert stack is not None
    for k in range(count):
        batch = stack.batch(k)
        assert batch.n_steps == stack.steps[k] == batch.lengths.max()
        check_invariants(task, batch)
        # Past its own length, a batch is padding: no input and no cost.
        assert not stack.inputs[k, batch.n_steps :].any()
        assert not stack.mask[k, batch.n_steps :].any()


def check_invariants(task: Task, batch: Batch) -> None:
    batch_size = batch.batch_size
    steps = np.arange(batch.n_steps)[:, None]  # (T, 1)
    inside = steps < batch.lengths[None, :]  # (T, B)
    assert np.all(batch.mask[~inside] == 0)
    assert np.all(batch.inputs[~inside] == 0)
    # Every sequence is scored at its own last step, whatever else is scored.
    assert np.all(batch.mask[batch.lengths - 1, np.arange(batch_size)] == 1)
    if task.kind == "classification":  # every classification task has one-hot inputs
        np.testing.assert_array_equal(batch.inputs.sum(axis=-1), 1.0)
    assert not task.errors(perfect_outputs(task, batch), batch).any()


def stacked(task: Task, count: int, batch_size: int, length: int, seed: int) -> Batch:
    """``count`` batches from ``task.sample_stack``, laid side by side as one Batch of
    ``count · batch_size`` sequences, so the definition checks read them like any batch."""
    stack = task.sample_stack(count, batch_size, length, rng(seed))
    assert stack is not None
    t = stack.inputs.shape[1]
    assert stack.inputs.shape == (count, t, batch_size, task.n_in)
    assert stack.targets.shape[:3] == stack.mask.shape == (count, t, batch_size)
    # Each batch is as long as its longest sequence, the stack as its longest batch.
    np.testing.assert_array_equal(stack.steps, stack.lengths.max(axis=1))
    assert t == stack.steps.max()

    def side_by_side(a: npt.NDArray) -> npt.NDArray:  # (K, T, B, ...) -> (T, K·B, ...)
        return np.concatenate(list(a), axis=1)

    return Batch(
        side_by_side(stack.inputs),
        side_by_side(stack.targets),
        side_by_side(stack.mask),
        stack.lengths.reshape(-1),
    )


def sampled(task: Task, n: int, length: int, seed: int, how: str) -> Batch:
    """``n`` sequences from one call to ``sample`` or from a stack of 40 batches."""
    if how == "sample":
        return task.sample(n, length, rng(seed))
    return stacked(task, 40, n // 40, length, seed)


# ---------------------------------------------------------------- addition / multiplication


@pytest.mark.parametrize("how", ["sample", "stack"])
@pytest.mark.parametrize("name", ["addition", "multiplication"])
@pytest.mark.parametrize("length", [10, 20, 37, 100])
def test_two_number_lengths_and_positions(name: str, length: int, how: str) -> None:
    batch = sampled(make_task(name), 20_000, length, length, how)
    lengths = batch.lengths
    # T' uniform over T .. floor(11T/10): every value occurs, nothing else does.
    assert set(np.unique(lengths)) == set(range(length, (11 * length) // 10 + 1))
    assert batch.n_steps == lengths.max()
    marker = batch.inputs[:, :, 1]  # (T, B)
    assert set(np.unique(marker)) == {0.0, 1.0}
    np.testing.assert_array_equal(marker.sum(axis=0), 2.0)  # two distinct marked steps
    b_idx, t_idx = np.nonzero(marker.T)  # sequence-major: per sequence, earlier step first
    p1, p2 = t_idx[0::2], t_idx[1::2]
    np.testing.assert_array_equal(b_idx[0::2], np.arange(20_000))
    for tp in np.unique(lengths):
        sel = lengths == tp
        # Paper 1-based [1, T'/10] -> 0-based 0..T'//10-1; (T'/10, T'/2] -> T'//10..T'//2-1.
        # Equality of sets checks both bounds and that the extremes are actually reached.
        assert set(np.unique(p1[sel])) == set(range(0, tp // 10))
        assert set(np.unique(p2[sel])) == set(range(tp // 10, tp // 2))


@pytest.mark.parametrize("how", ["sample", "stack"])
@pytest.mark.parametrize("name", ["addition", "multiplication"])
def test_two_number_targets_padding_and_mask(name: str, how: str) -> None:
    batch = sampled(make_task(name), 5_000, 50, 1, how)
    b = np.arange(5_000)
    values, marker = batch.inputs[:, :, 0], batch.inputs[:, :, 1]  # (T, B) each
    last = batch.lengths - 1
    inside = np.arange(batch.n_steps)[:, None] <= last[None, :]  # (T, B)
    # Padding: zeros everywhere past each sequence's end.
    assert np.all(batch.inputs[~inside] == 0)
    assert np.all(batch.targets[~inside] == 0)
    assert (~inside).any()  # the batch really mixes lengths
    # Values are uniform in [0, 1): range and mean (sd of the mean ~ 0.29/sqrt(2.6e5)).
    v = values[inside]
    assert v.min() >= 0.0 and v.max() < 1.0
    assert abs(v.mean() - 0.5) < 0.005
    # Mask: exactly each sequence's own last step.
    expected_mask = np.zeros_like(batch.mask)
    expected_mask[last, b] = 1.0
    np.testing.assert_array_equal(batch.mask, expected_mask)
    # Target recomputed from the inputs at the two marked steps.
    marked = np.where(marker == 1, values, 0.0)  # (T, B)
    v1 = marked[np.argmax(marker, axis=0), b]
    v2 = marked.sum(axis=0) - v1
    want = (v1 + v2) / 2 if name == "addition" else v1 * v2
    got = batch.targets[last, b, 0]
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)
    off_target = batch.targets[:, :, 0].copy()
    off_target[last, b] = 0
    assert np.all(off_target == 0)


# ------------------------------------------------------------------------- temporal order


TO_RANGES = {
    "temporal-order": [(1, 2), (4, 5)],
    "temporal-order-3bit": [(1, 2), (3, 4), (6, 7)],
}


def ab_positions(batch: Batch, n_marks: int) -> tuple[npt.NDArray, npt.NDArray]:
    """(B, n_marks) time indices of the A/B symbols and their bits (A = 0, B = 1)."""
    symbols = batch.inputs.argmax(axis=-1)  # (T, B)
    is_ab = symbols < 2
    np.testing.assert_array_equal(is_ab.sum(axis=0), n_marks)
    b_idx, t_idx = np.nonzero(is_ab.T)  # sequence-major, time-ordered within a sequence
    pos = t_idx.reshape(-1, n_marks)
    bits = symbols[pos, b_idx.reshape(-1, n_marks)]
    return pos, bits


@pytest.mark.parametrize("how", ["sample", "stack"])
@pytest.mark.parametrize("name", list(TO_RANGES))
@pytest.mark.parametrize("length", [10, 19, 37, 100])
def test_temporal_order_positions(name: str, length: int, how: str) -> None:
    batch = sampled(make_task(name), 20_000, length, length, how)
    pos, _ = ab_positions(batch, len(TO_RANGES[name]))
    for k, (lo, hi) in enumerate(TO_RANGES[name]):
        # Paper [lo·T/10, hi·T/10] (1-based) -> 0-based floor(lo·T/10) .. floor(hi·T/10) - 1;
        # set equality checks the bounds and that both extremes are reached.
        assert set(np.unique(pos[:, k])) == set(range(lo * length // 10, hi * length // 10))


@pytest.mark.parametrize("how", ["sample", "stack"])
@pytest.mark.parametrize("length", [10, 19, 37, 100, 200])
def test_temporal_order_with_the_authors_positions(length: int, how: str) -> None:
    task = make_task("temporal-order", positions="authors")
    batch = sampled(task, 20_000, length, length, how)
    pos, _ = ab_positions(batch, 2)
    # [T/10, 2T/10] and [5T/10, 6T/10] by the module's rule; for T a multiple of 10 that is
    # tempOrder.py's p0 = randint(.1·l) + .1·l, p1 = randint(.1·l) + .5·l exactly (otherwise
    # a range may hold one index more than the code's, whose width is int(.1·l)).
    assert set(np.unique(pos[:, 0])) == set(range(length // 10, 2 * length // 10))
    assert set(np.unique(pos[:, 1])) == set(range(5 * length // 10, 6 * length // 10))
    if length % 10 == 0:
        assert set(np.unique(pos[:, 1])) == set(range(length // 2, length // 2 + length // 10))
    # The option survives a round trip through the config's task_options.
    assert make_task("temporal-order", **task.options).ranges == ((1, 2), (5, 6))
    assert make_task("temporal-order").options == {}


@pytest.mark.parametrize("how", ["sample", "stack"])
@pytest.mark.parametrize("name", list(TO_RANGES))
def test_temporal_order_labels_mask_and_balance(name: str, how: str) -> None:
    n_marks = len(TO_RANGES[name])
    batch = sampled(make_task(name), 64_000, 60, 7, how)
    assert batch.n_steps == 60
    np.testing.assert_array_equal(batch.lengths, 60)
    # Mask and target at the last step only.
    np.testing.assert_array_equal(batch.mask[:-1], 0.0)
    np.testing.assert_array_equal(batch.mask[-1], 1.0)
    _, bits = ab_positions(batch, n_marks)
    # Class = A/B in time order read as binary, first symbol most significant (AA, AB, BA, BB).
    label = bits @ (2 ** np.arange(n_marks - 1, -1, -1))
    np.testing.assert_array_equal(batch.targets[-1], label)
    # Balance: classes uniform (chi-square, df = classes - 1, see CHI2_CRIT_1E4).
    counts = np.bincount(batch.targets[-1], minlength=2**n_marks)
    assert counts.size == 2**n_marks
    assert chi_square(counts) < CHI2_CRIT_1E4[2**n_marks - 1]
    # Distractors c..f uniform too (df = 3).
    symbols = batch.inputs.argmax(axis=-1)
    distractor_counts = np.bincount(symbols[symbols >= 2] - 2, minlength=4)
    assert chi_square(distractor_counts) < CHI2_CRIT_1E4[3]


@pytest.mark.parametrize("name", STACKED)
def test_the_batches_of_a_stack_are_fresh_draws(name: str) -> None:
    many = make_task(name).sample_stack(3, 9, 30, rng(4))
    assert many is not None
    assert not np.array_equal(many.inputs[0], many.inputs[1])
    assert not np.array_equal(many.inputs[1], many.inputs[2])


@pytest.mark.parametrize("name", sorted(set(TASK_NAMES) - set(STACKED)))
def test_tasks_without_a_stacked_sampler_say_so(name: str) -> None:
    assert make_task(name).sample_stack(3, 4, 20, rng()) is None


@pytest.mark.parametrize(
    ("count", "batch_size", "length", "match"),
    [(0, 4, 20, "batch count"), (2, 0, 20, "batch size"), (2, 4, 9, "sequence length")],
)
def test_sample_stack_rejects_bad_sizes(
    count: int, batch_size: int, length: int, match: str
) -> None:
    with pytest.raises(UsageError, match=match):
        make_task("temporal-order").sample_stack(count, batch_size, length, rng())


def test_temporal_order_rejects_a_biased_sample() -> None:
    """The balance check has teeth: a 26/24/25/25 % split of 64,000 sequences fails it."""
    assert chi_square(np.array([16_640, 15_360, 16_000, 16_000])) > CHI2_CRIT_1E4[3]


# ---------------------------------------------------------------------- random permutation


def test_random_permutation_definition() -> None:
    length = 30
    batch = make_task("random-permutation").sample(4_000, length, rng(5))
    assert batch.n_steps == length - 1
    np.testing.assert_array_equal(batch.lengths, length - 1)
    symbols_in = batch.inputs.argmax(axis=-1)  # (T, B), symbol t
    # Next-symbol prediction: the target at step t is the input at step t + 1.
    np.testing.assert_array_equal(batch.targets[:-1], symbols_in[1:])
    first, last = symbols_in[0], batch.targets[-1]
    np.testing.assert_array_equal(first, last)
    assert set(np.unique(first)) == {0, 1}  # paper's symbols 1 and 2
    middle = symbols_in[1:]  # every symbol strictly between the first and the last
    assert set(np.unique(middle)) == set(range(2, 100))  # paper's [3, 100], all reached
    # First symbol balanced: binomial sd is sqrt(4000)/2 ~ 32, so 200 is > 6 sd.
    assert abs(int(first.sum()) - 2_000) < 200
    # Default mask: only the predictable last step (authors' code).
    np.testing.assert_array_equal(batch.mask[:-1], 0.0)
    np.testing.assert_array_equal(batch.mask[-1], 1.0)


def test_random_permutation_cost_every_step() -> None:
    task = make_task("random-permutation", cost_every_step=True)
    assert task.options == {"cost_every_step": True}
    batch = task.sample(8, 20, rng(0))
    np.testing.assert_array_equal(batch.mask, 1.0)
    # The same draws as the default task: only the mask differs.
    plain = make_task("random-permutation").sample(8, 20, rng(0))
    np.testing.assert_array_equal(batch.inputs, plain.inputs)
    np.testing.assert_array_equal(batch.targets, plain.targets)


# ---------------------------------------------------------------------------- memorization


@pytest.mark.parametrize(("p", "v"), [(5, 2), (10, 5), (3, 7)])
@pytest.mark.parametrize("length", [1, 50])
def test_memorization_layout(p: int, v: int, length: int) -> None:
    task = make_task("memorization", pattern_length=p, n_values=v)
    assert (task.n_in, task.n_out) == (v + 2, v)
    batch = task.sample(3_000, length, rng(p * v + length))
    go = p + length
    assert batch.n_steps == 2 * p + length
    np.testing.assert_array_equal(batch.lengths, 2 * p + length)
    x = batch.inputs
    np.testing.assert_array_equal(x.sum(axis=-1), 1.0)  # one active channel per step
    pattern = x[:p, :, :v].argmax(axis=-1)  # (P, B)
    assert set(np.unique(pattern)) == set(range(v))  # every symbol of the alphabet occurs
    np.testing.assert_array_equal(x[p:go, :, v], 1.0)  # filler
    np.testing.assert_array_equal(x[go, :, v + 1], 1.0)  # go signal on the first output step
    np.testing.assert_array_equal(x[go + 1 :, :, v], 1.0)  # filler while reproducing
    np.testing.assert_array_equal(x[:, :, v + 1].sum(axis=0), 1.0)  # go exactly once
    # The pattern is reproduced in the targets, scored on exactly those P steps.
    np.testing.assert_array_equal(batch.targets[go:], pattern)
    np.testing.assert_array_equal(batch.mask[go:], 1.0)
    np.testing.assert_array_equal(batch.mask[:go], 0.0)


def test_memorization_defaults_are_the_5_bit_task() -> None:
    task = make_task("memorization")
    assert task.options == {"pattern_length": 5, "n_values": 2}
    assert task.sample(2, 50, rng()).n_steps == 60


# ------------------------------------------------------------------------ the success test


@pytest.mark.parametrize("name", ["temporal-order", "random-permutation", "memorization"])
def test_classification_errors(name: str) -> None:
    # cost_every_step=True so that random-permutation has several scored steps per sequence.
    options = {"cost_every_step": True} if name == "random-permutation" else {}
    task = make_task(name, **options)
    batch = task.sample(6, 30, rng(2))
    out = perfect_outputs(task, batch)
    assert not task.errors(out, batch).any()
    assert error_rate(task, out, batch) == 0.0

    t_scored, _ = np.nonzero(batch.mask[:, 2:3])
    t = t_scored[0]
    wrong = out.copy()
    wrong[t, 2] = np.roll(wrong[t, 2], 1)  # the argmax moves off the target at one step
    np.testing.assert_array_equal(task.errors(wrong, batch), np.arange(6) == 2)
    assert error_rate(task, wrong, batch) == pytest.approx(1 / 6)

    tie = out.copy()
    tie[t, 4] = 0.0  # all outputs equal: the argmax is arbitrary, so it is an error
    assert task.errors(tie, batch)[4]

    nan = out.copy()
    nan[t, 5, 0] = np.nan
    assert task.errors(nan, batch)[5]

    unscored = batch.mask == 0
    if unscored.any():
        junk = out.copy()
        junk[unscored] = np.where(rng(9).random(junk[unscored].shape) < 0.5, -np.inf, np.nan)
        assert not task.errors(junk, batch).any()


@pytest.mark.parametrize("name", ["addition", "multiplication"])
def test_regression_errors_threshold(name: str) -> None:
    task = make_task(name)
    batch = task.sample(5, 40, rng(3))
    last, b = batch.lengths - 1, np.arange(5)
    out = perfect_outputs(task, batch)
    assert not task.errors(out, batch).any()
    # Squared error 0.1995² ≈ 0.0398 is a success, 0.2005² ≈ 0.0402 an error, either sign.
    for delta, is_error in [(0.1995, False), (-0.1995, False), (0.2005, True), (-0.2005, True)]:
        shifted = out.copy()
        shifted[last[1], 1, 0] += delta
        np.testing.assert_array_equal(task.errors(shifted, batch), (b == 1) & is_error)
    # Unscored steps (including padding) are ignored even when non-finite.
    junk = out.copy()
    junk[batch.mask == 0] = np.inf
    junk[0, 0, 0] = np.nan
    assert batch.mask[0, 0] == 0
    assert not task.errors(junk, batch).any()
    bad = out.copy()
    bad[last[3], 3, 0] = np.nan
    np.testing.assert_array_equal(task.errors(bad, batch), b == 3)


def test_errors_rejects_wrong_output_shape() -> None:
    task = make_task("temporal-order")
    batch = task.sample(3, 20, rng())
    with pytest.raises(ValueError, match="shape"):
        task.errors(np.zeros((20, 3, 5)), batch)


# ------------------------------------------------------------------------- usage errors


def test_unknown_task_lists_valid_names() -> None:
    with pytest.raises(UsageError) as info:
        make_task("temporal_order")
    message = str(info.value)
    assert "\n" not in message and "temporal_order" in message
    for name in TASK_NAMES:
        assert name in message


@pytest.mark.parametrize(
    ("name", "options", "match"),
    [
        ("temporal-order", {"n_values": 5}, "n_values"),
        ("temporal-order", {"positions": "text"}, "paper, authors"),
        ("temporal-order-3bit", {"positions": "authors"}, "none"),
        ("memorization", {"pattern": 5}, "pattern_length"),  # lists the valid options
        ("memorization", {"pattern_length": 0}, "at least 1"),
        ("memorization", {"n_values": 1}, "at least 2"),
        ("memorization", {"n_values": 2.5}, "integer"),
        ("memorization", {"pattern_length": True}, "integer"),
        ("random-permutation", {"cost_every_step": "yes"}, "cost_every_step"),
    ],
)
def test_bad_options(name: str, options: dict[str, object], match: str) -> None:
    with pytest.raises(UsageError, match=match):
        make_task(name, **options)


@pytest.mark.parametrize(
    ("name", "minimum"),
    [
        ("addition", 10),
        ("multiplication", 10),
        ("temporal-order", 10),
        ("temporal-order-3bit", 10),
        ("random-permutation", 3),
        ("memorization", 1),
    ],
)
def test_length_below_minimum(name: str, minimum: int) -> None:
    task = make_task(name)
    task.sample(2, minimum, rng())  # the minimum itself works
    with pytest.raises(UsageError, match=f"at least {minimum}"):
        task.sample(2, minimum - 1, rng())


@pytest.mark.parametrize(("batch_size", "length"), [(0, 20), (-1, 20), (2, 20.0), (2, True)])
def test_bad_sizes(batch_size: object, length: object) -> None:
    with pytest.raises(UsageError):
        make_task("temporal-order").sample(batch_size, length, rng())  # type: ignore[arg-type]


def test_sampling_is_fast() -> None:
    """Evaluation draws 10,000 sequences of length 400; it must stay well under a second."""
    import time

    task = make_task("temporal-order")
    start = time.perf_counter()
    batch = task.sample(TEST_SEQUENCES, 400, rng())
    assert time.perf_counter() - start < 1.0
    assert batch.inputs.shape == (400, TEST_SEQUENCES, 6)
