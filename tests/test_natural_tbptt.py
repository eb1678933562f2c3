"""Truncated BPTT over a stream (the PTB set-up of §4.2): the state carried from segment to
segment is exactly the state of one long forward pass, and the trainer's loss and gradient on a
carried segment are those of loss_and_grads started from that state."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pytest

from rnnstab_cli.datasets import load_ptb_char, one_hot, stream_segments
from rnnstab_cli.engine import Trainer, forward, init_params, loss_and_grads

PTB = Path("/work/shared/data/ptb_char")


@functools.cache
def _ids(n: int) -> tuple[np.ndarray, int]:
    """The first ``n`` symbols of real PTB when present, else a random stream."""
    if PTB.exists():
        data = load_ptb_char(PTB)
        return data.valid[:n], data.vocab_size
    return np.random.default_rng(0).integers(0, 50, n), 50  # pragma: no cover


def test_carried_segments_equal_one_long_forward_pass() -> None:
    ids, vocab = _ids(4 * 60 + 1)
    p = init_params(vocab, 24, vocab, seed=4, dtype="float64", scale=0.3)
    segs = list(stream_segments(ids, batch_size=4, seg_len=15, ahead=1))  # 4 streams of 61
    assert len(segs) == 4
    # One long pass over each whole column.
    full_in = np.concatenate([one_hot(s.inputs, vocab) for s in segs]).astype(np.float64)
    y_full, x_full = forward(p, full_in, "sigmoid", return_state=True)  # (60, 4, V), (4, H)
    # Segment by segment, each starting from the previous one's final state.
    x = None
    outs = []
    for s in segs:
        y, x = forward(p, one_hot(s.inputs, vocab).astype(np.float64), "sigmoid", x0=x,
                       return_state=True)  # fmt: skip
        outs.append(y)
    np.testing.assert_allclose(np.concatenate(outs), y_full, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(x, x_full, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("ahead", [1, 5])
def test_trainer_loss_on_carried_segments_matches_loss_and_grads(ahead: int) -> None:
    ids, vocab = _ids(3 * 80 + ahead)
    segs = list(stream_segments(ids, batch_size=3, seg_len=20, ahead=ahead))
    p0 = init_params(vocab, 16, vocab, seed=5, dtype="float64", scale=0.3)
    settings = {"activation": "sigmoid", "loss": "softmax_ce", "time_reduction": "sum"}
    tr = Trainer(p0, optimizer="sgd", lr=0.05, clip_mode="none", alpha=0.0,
                 carry_state=True, train_biases=False, **settings)  # fmt: skip
    x_ref = None  # the state a forward pass with the parameters of each update reaches
    for s in segs:
        params = tr.params
        inputs = one_hot(s.inputs, vocab).astype(np.float64)
        mask = s.mask.astype(np.float64)
        ref = loss_and_grads(params, inputs, s.targets, mask, x0=x_ref, **settings)
        st = tr.step(inputs, s.targets, mask)
        assert st.loss == pytest.approx(ref.loss, rel=1e-12)
        for name in ("W_rec", "W_in", "W_out"):
            np.testing.assert_allclose(tr.grads[name], ref.grads[name], rtol=1e-9, atol=1e-12)
        for name in ("b", "b_out"):  # no biases: their gradient is dropped, they stay zero
            assert not tr.grads[name].any() and not tr.params[name].any()
        # The state handed on is x_T of this segment under the parameters it was run with.
        _, x_ref = forward(params, inputs, "sigmoid", x0=x_ref, return_state=True)
        np.testing.assert_allclose(tr.final_state(), x_ref, rtol=1e-12, atol=1e-12)
    tr.reset_state()  # a new epoch starts from x_0 = 0 again
    s = segs[0]
    inputs, mask = one_hot(s.inputs, vocab).astype(np.float64), s.mask.astype(np.float64)
    ref = loss_and_grads(tr.params, inputs, s.targets, mask, **settings)
    assert tr.step(inputs, s.targets, mask).loss == pytest.approx(ref.loss, rel=1e-12)
