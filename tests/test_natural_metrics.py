"""The tables' metrics (training/natural/metrics.py): NLL per time step of piano rolls
(Table 1) and bits per character (Table 2), on cases computable by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rnnstab_cli.engine import init_params
from rnnstab_cli.training.natural.metrics import (
    LN2,
    Score,
    bernoulli_nll,
    music_score,
    ptb_score,
    softmax_nll,
)


def test_bernoulli_nll_by_hand() -> None:
    # σ(ln 3) = 3/4: a sounding note costs ln(4/3), a silent one ln 4; z = 0 costs ln 2 either way.
    z = np.array([[[math.log(3.0), math.log(3.0), 0.0]]])  # (T=1, B=1, O=3)
    y = np.array([[[1.0, 0.0, 1.0]]])
    assert bernoulli_nll(z, y)[0, 0] == pytest.approx(math.log(4 / 3) + math.log(4) + LN2)
    # No overflow at extreme logits.
    big = bernoulli_nll(np.array([[[800.0, -800.0]]]), np.array([[[1.0, 0.0]]]))
    assert big[0, 0] == pytest.approx(0.0, abs=1e-300)


def test_softmax_nll_by_hand() -> None:
    q = np.array([0.5, 0.25, 0.125, 0.125])
    z = np.log(q)[None, None, :] + 7.0  # a shift changes nothing
    targets = np.array([[0], [1], [2], [3]])  # (T=4, B=1)
    nll = softmax_nll(np.repeat(z, 4, axis=0), targets)
    np.testing.assert_allclose(nll[:, 0] / LN2, [1.0, 2.0, 3.0, 3.0])


def _constant_output(n_in: int, n_hidden: int, n_out: int, b_out: np.ndarray) -> dict:
    """A model whose outputs ignore the input and the state: W_out = 0, b_out given."""
    p = init_params(n_in, n_hidden, n_out, seed=1, dtype="float64")
    p["W_out"][:] = 0.0
    p["b_out"][:] = b_out
    return p


def test_music_nll_per_step_by_hand() -> None:
    # Every note predicted with p = 1/4: k sounding notes cost k·ln 4 + (88 − k)·ln(4/3).
    p = _constant_output(88, 5, 88, np.full(88, math.log(1 / 3)))
    a = np.zeros((4, 88), dtype=np.float32)
    a[:, :2] = 1.0  # 2 notes in every frame
    b = np.zeros((3, 88), dtype=np.float32)
    b[:, :3] = 1.0  # 3 notes in every frame
    per = {k: k * math.log(4) + (88 - k) * math.log(4 / 3) for k in (2, 3)}
    # Next-step prediction: a piece of T frames gives T − 1 predictions (3 + 2 here).
    s = music_score(p, [a, b], "sigmoid")
    assert s.count == 5
    assert s.value == pytest.approx((3 * per[2] + 2 * per[3]) / 5)
    assert s.unit == "nats/step"
    # predict_first scores frame 0 too (from a silent frame): T predictions per piece.
    s = music_score(p, [a, b], "sigmoid", predict_first=True)
    assert s.count == 7 and s.value == pytest.approx((4 * per[2] + 3 * per[3]) / 7)


def test_music_chunks_with_carried_state_score_whole_pieces() -> None:
    rng = np.random.default_rng(0)
    rolls = [(rng.random((n, 88)) < 0.05).astype(np.float32) for n in (37, 12, 60, 2)]
    p = init_params(88, 16, 88, seed=3, dtype="float64", scale=0.5)
    whole = music_score(p, rolls, "sigmoid", chunk=1000, batch=4)
    chunked = music_score(p, rolls, "sigmoid", chunk=7, batch=3)
    assert chunked.count == whole.count == 36 + 11 + 59 + 1
    assert chunked.nats == pytest.approx(whole.nats, rel=1e-12)


def test_bits_per_character_by_hand() -> None:
    q = np.array([0.5, 0.25, 0.125, 0.125])
    p = _constant_output(4, 6, 4, np.log(q))
    ids = np.array([1, 0, 1, 2, 3, 3, 0])
    # Predictions of ids[1:]: 0, 1, 2, 3, 3, 0 cost 1, 2, 3, 3, 3, 1 bits.
    s = ptb_score(p, ids, 4, "sigmoid")
    assert s.count == 6 and s.value == pytest.approx(13 / 6)
    assert s.unit == "bits/char"
    # Five ahead: position p predicts ids[p + 5]: ids[5:] = 3, 0 → 3 and 1 bits.
    s = ptb_score(p, ids, 4, "sigmoid", ahead=5)
    assert s.count == 2 and s.value == pytest.approx(2.0)
    # Uniform outputs: exactly log2(V) bits per character.
    u = _constant_output(4, 6, 4, np.zeros(4))
    assert ptb_score(u, ids, 4, "sigmoid").value == pytest.approx(2.0)


def test_ptb_chunks_with_carried_state_score_one_stream() -> None:
    rng = np.random.default_rng(1)
    ids = rng.integers(0, 7, 123)
    p = init_params(7, 12, 7, seed=2, dtype="float64", scale=0.5)
    one = ptb_score(p, ids, 7, "sigmoid", chunk=10_000)
    many = ptb_score(p, ids, 7, "sigmoid", chunk=10)
    assert many.count == one.count == 122
    assert many.nats == pytest.approx(one.nats, rel=1e-12)


def test_score_units() -> None:
    assert Score("bpc", 10 * LN2, 5).value == pytest.approx(2.0)
    assert Score("nll", 10.0, 4).value == 2.5
    assert math.isnan(Score("nll", 0.0, 0).value)
