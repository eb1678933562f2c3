"""Chunks of training batches: padding, determinism, prefetching (training/synthetic/batches.py)."""

from __future__ import annotations

import numpy as np
import pytest

from rnnstab_cli.taskgen import make_task
from rnnstab_cli.training.config import LengthRange
from rnnstab_cli.training.synthetic.batches import (
    STREAM_TRAIN,
    ChunkSource,
    make_chunk,
    pad_and_stack,
)

F32 = np.dtype("float32")


def test_padding_goes_at_the_end_with_mask_zero() -> None:
    task = make_task("temporal-order")
    rng = np.random.default_rng(0)
    batches = [task.sample(3, n, rng) for n in (12, 20, 15)]
    chunk = pad_and_stack(batches, F32)
    assert chunk.inputs.shape == (3, 20, 3, 6)  # (K, T, B, I)
    assert chunk.targets.shape == (3, 20, 3) and chunk.targets.dtype == np.int64
    assert chunk.mask.shape == (3, 20, 3)
    assert list(chunk.steps) == [12, 20, 15]
    for k, b in enumerate(batches):
        n = b.n_steps
        np.testing.assert_array_equal(chunk.inputs[k, :n], b.inputs)
        np.testing.assert_array_equal(chunk.targets[k, :n], b.targets)
        np.testing.assert_array_equal(chunk.mask[k, :n], b.mask)
        assert not chunk.mask[k, n:].any()
        assert not chunk.inputs[k, n:].any()
        # The cost stays at each batch's own last step, not at the padded end.
        assert chunk.mask[k, n - 1].all()


def test_regression_targets_are_padded_in_the_training_dtype() -> None:
    task = make_task("addition")
    rng = np.random.default_rng(1)
    batches = [task.sample(4, n, rng) for n in (10, 30)]
    chunk = pad_and_stack(batches, np.dtype("float64"))
    assert chunk.targets.shape == (2, chunk.inputs.shape[1], 4, 1)
    assert chunk.targets.dtype == np.float64 and chunk.inputs.dtype == np.float64
    np.testing.assert_array_equal(chunk.mask.sum(axis=(1, 2)), [4, 4])
    # Batches of one length are stacked without padding, in the same dtypes.
    same = [task.sample(4, 20, rng) for _ in range(3)]
    chunk = pad_and_stack(same, np.dtype("float64"))
    assert chunk.targets.dtype == np.float64 and chunk.inputs.dtype == np.float64
    assert chunk.mask.dtype == np.float64 and list(chunk.steps) == [same[0].n_steps] * 3
    for k, b in enumerate(same):
        np.testing.assert_array_equal(chunk.inputs[k], b.inputs)
        np.testing.assert_array_equal(chunk.targets[k], b.targets)
        np.testing.assert_array_equal(chunk.mask[k], b.mask)


def test_chunks_depend_only_on_seed_and_index() -> None:
    task = make_task("temporal-order")
    kw = {"seed": 3, "size": 5, "batch": 2, "length": LengthRange(10, 40), "dtype": F32}
    a = make_chunk(task, index=7, **kw)
    b = make_chunk(task, index=7, **kw)
    c = make_chunk(task, index=8, **kw)
    np.testing.assert_array_equal(a.inputs, b.inputs)
    assert a.inputs.shape != c.inputs.shape or not np.array_equal(a.inputs, c.inputs)
    # A range draws lengths per batch within the range.
    assert set(a.steps) <= set(range(10, 41)) and len(set(a.steps)) > 1


def test_fixed_length_chunks_have_no_padding() -> None:
    task = make_task("temporal-order")
    ch = make_chunk(task, seed=0, index=0, size=4, batch=2, length=LengthRange(25, 25), dtype=F32)
    assert list(ch.steps) == [25] * 4 and ch.inputs.shape[1] == 25


@pytest.mark.parametrize("name", ["temporal-order-3bit", "addition"])
def test_fixed_length_chunks_come_from_the_stacked_sampler_in_the_training_dtype(
    name: str,
) -> None:
    task = make_task(name)
    f64 = np.dtype("float64")
    ch = make_chunk(task, seed=2, index=5, size=6, batch=3, length=LengthRange(30, 30), dtype=f64)
    stack = task.sample_stack(6, 3, 30, np.random.default_rng([2, STREAM_TRAIN, 5]))
    assert stack is not None
    assert ch.inputs.dtype == ch.mask.dtype == f64
    # Class indices stay integers; regression targets take the training dtype.
    assert ch.targets.dtype == (np.int64 if task.kind == "classification" else f64)
    # Each batch keeps its own length (addition's sequences run 30 to 33 steps).
    np.testing.assert_array_equal(ch.steps, stack.steps)
    np.testing.assert_array_equal(ch.inputs, stack.inputs)
    np.testing.assert_array_equal(ch.targets, stack.targets)
    np.testing.assert_array_equal(ch.mask, stack.mask)


def test_fixed_length_chunks_of_other_tasks_are_sampled_batch_by_batch() -> None:
    task = make_task("memorization")
    ch = make_chunk(task, seed=2, index=1, size=3, batch=4, length=LengthRange(20, 20), dtype=F32)
    rng = np.random.default_rng([2, STREAM_TRAIN, 1])
    for k in range(3):
        b = task.sample(4, 20, rng)
        np.testing.assert_array_equal(ch.inputs[k], b.inputs)
        np.testing.assert_array_equal(ch.targets[k], b.targets)
        np.testing.assert_array_equal(ch.mask[k], b.mask)


def test_prefetching_source_gives_the_same_chunks() -> None:
    task = make_task("temporal-order")
    kw = {"seed": 5, "size": 3, "batch": 2, "length": LengthRange(10, 20), "dtype": F32}
    with ChunkSource(task, **kw) as src:
        got = [src.get(i) for i in (0, 1, 1, 2, 5, 6)]
    for ch in got:
        ref = make_chunk(task, index=ch.index, **kw)
        np.testing.assert_array_equal(ch.inputs, ref.inputs)
        np.testing.assert_array_equal(ch.targets, ref.targets)
    assert [c.index for c in got] == [0, 1, 1, 2, 5, 6]


def test_slices_are_views_of_the_chunk() -> None:
    task = make_task("temporal-order")
    ch = make_chunk(task, seed=0, index=0, size=6, batch=2, length=LengthRange(10, 10), dtype=F32)
    inputs, targets, mask = ch.slice(2, 5)
    assert inputs.shape[0] == targets.shape[0] == mask.shape[0] == 3
    assert inputs.flags.c_contiguous and np.shares_memory(inputs, ch.inputs)
