"""The engine's contract beyond gradients: clipping, determinism across thread counts, the
trainer's update rule and non-finite policies, carried state, and clear errors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnstab_cli import engine


def problem(
    seed: int = 0,
    t: int = 12,
    b: int = 9,
    i: int = 3,
    h: int = 24,
    o: int = 4,
    dtype: str = "float64",
    last_only: bool = False,
) -> tuple[dict, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    params = engine.init_params(i, h, o, scale=0.4, seed=seed, dtype=dtype)
    inputs = rng.normal(0, 1, (t, b, i)).astype(dtype)
    targets = rng.integers(0, o, (t, b)).astype(np.int64)
    mask = np.zeros((t, b), dtype=dtype)
    if last_only:
        mask[-1] = 1
    else:
        mask[:] = rng.random((t, b)) < 0.5
    return params, inputs, targets, mask


def flat(grads: dict[str, np.ndarray]) -> np.ndarray:
    return np.concatenate([grads[k].ravel() for k in sorted(grads)])


# --- clipping ---------------------------------------------------------------------------------


@settings(max_examples=100)
@given(st.integers(0, 10_000), st.floats(1e-3, 1e3))
def test_norm_clipping_bounds_the_norm_and_keeps_the_direction(seed: int, threshold: float) -> None:
    params, x, y, m = problem(seed % 50, t=5, b=3, h=6)
    grads = engine.loss_and_grads(params, x, y, m).grads
    clipped, norm = engine.clip_norm(grads, threshold)
    g, c = flat(grads), flat(clipped)
    assert norm == pytest.approx(np.linalg.norm(g), rel=1e-12)
    assert np.linalg.norm(c) <= threshold * (1 + 1e-12)
    if norm < threshold:
        np.testing.assert_array_equal(c, g)
    else:
        assert np.linalg.norm(c) == pytest.approx(threshold, rel=1e-12)
        cos = c @ g / (np.linalg.norm(c) * np.linalg.norm(g))
        assert cos == pytest.approx(1.0, abs=1e-12)


def test_value_clipping_clamps_each_entry() -> None:
    params, x, y, m = problem(1, t=5, b=3, h=6)
    grads = engine.loss_and_grads(params, x, y, m).grads
    th = float(np.median(np.abs(flat(grads))))
    clipped = engine.clip_value(grads, th)
    for k in grads:
        np.testing.assert_array_equal(clipped[k], np.clip(grads[k], -th, th))
    with pytest.raises(ValueError, match="threshold"):
        engine.clip_value(grads, -1.0)


# --- determinism ------------------------------------------------------------------------------


# The weight gradients are summed in 1 + B·(T+1)/(16H) groups of examples (at most 8, at most B):
# one group at (T, B, H) = (30, 13, 70), where the widths pass a vector's lanes, and five at
# (40, 13, 8), which the threads share unevenly at 2 and 3 threads. With fewer groups than
# threads each product's output rows are shared out instead: a batch of one at (60, 1, 70), and
# two groups on 3 and 5 threads at (10, 40, 20). The recurrences run in blocks of at least 8
# examples, up to four per thread: at (10, 40, 20) five blocks, taken as the threads free up.
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("alpha", [0.0, 2.0])
@pytest.mark.parametrize(("t", "b", "h"), [(30, 13, 70), (40, 13, 8), (60, 1, 70), (10, 40, 20)])
def test_results_are_bit_identical_across_thread_counts(
    dtype: str, alpha: float, t: int, b: int, h: int
) -> None:
    params, x, y, m = problem(2, t=t, b=b, h=h, dtype=dtype)
    runs = [engine.loss_and_grads(params, x, y, m, alpha=alpha, threads=n) for n in (1, 2, 3, 5)]
    for r in runs[1:]:
        assert r.loss == runs[0].loss and r.omega == runs[0].omega
        for k in r.grads:
            np.testing.assert_array_equal(r.grads[k], runs[0].grads[k])


def test_trainer_runs_are_bit_identical_across_thread_counts() -> None:
    # Two groups of examples for the weight gradients (see above).
    params, x, y, m = problem(3, t=60, b=11, h=40, dtype="float32", last_only=True)
    finals = []
    for threads in (1, 2):
        tr = engine.Trainer(params, lr=0.05, clip_mode="norm", clip=1.0, alpha=2.0, threads=threads)
        for _ in range(5):
            tr.step(x, y, m)
        finals.append(tr.params)
    for k in params:
        np.testing.assert_array_equal(finals[0][k], finals[1][k])


# --- the trainer ------------------------------------------------------------------------------


def test_sgd_step_is_minus_lr_times_the_clipped_gradient() -> None:
    params, x, y, m = problem(4, t=8, b=5, h=10)
    lr, th, alpha = 0.3, 0.05, 1.5
    res = engine.loss_and_grads(params, x, y, m, alpha=alpha)
    clipped, norm = engine.clip_norm(res.grads, th)
    tr = engine.Trainer(params, lr=lr, clip_mode="norm", clip=th, alpha=alpha)
    st_ = tr.step(x, y, m)
    assert st_.clipped and st_.grad_norm == pytest.approx(norm, rel=1e-12)
    assert st_.loss == pytest.approx(res.loss, rel=1e-12)
    assert st_.omega == pytest.approx(res.omega, rel=1e-12)
    for k in params:
        np.testing.assert_allclose(
            tr.params[k], params[k] - lr * clipped[k], rtol=1e-12, atol=1e-15
        )


def test_steps_equals_repeated_step() -> None:
    params, _, _, _ = problem(5)
    rng = np.random.default_rng(0)
    k, t, b = 4, 7, 5
    xs = rng.normal(0, 1, (k, t, b, 3))
    ys = rng.integers(0, 4, (k, t, b)).astype(np.int64)
    ms = (rng.random((k, t, b)) < 0.6).astype(np.float64)
    one = engine.Trainer(params, optimizer="momentum", lr=0.1, alpha=0.5)
    many = engine.Trainer(params, optimizer="momentum", lr=0.1, alpha=0.5)
    singles = [one.step(xs[j], ys[j], ms[j]) for j in range(k)]
    batch = many.steps(xs, ys, ms)
    np.testing.assert_array_equal(batch.loss, [s.loss for s in singles])
    np.testing.assert_array_equal(batch.grad_norm, [s.grad_norm for s in singles])
    for name in params:
        np.testing.assert_array_equal(one.params[name], many.params[name])
    state_one, state_many = one.optimizer_state(), many.optimizer_state()
    assert state_one is not None and state_many is not None
    for name in state_one:
        np.testing.assert_array_equal(state_one[name], state_many[name])


@pytest.mark.parametrize("optimizer", engine.OPTIMIZERS)
def test_every_optimizer_lowers_the_loss(optimizer: str) -> None:
    params, x, y, m = problem(6, t=6, b=8, h=12)
    lr = {"sgd": 0.5, "momentum": 0.1, "nesterov": 0.1, "rmsprop": 0.01, "adagrad": 0.1}[optimizer]
    tr = engine.Trainer(params, optimizer=optimizer, lr=lr, clip_mode="none")
    first = tr.step(x, y, m).loss
    for _ in range(60):
        last = tr.step(x, y, m).loss
    assert last < 0.7 * first, (optimizer, first, last)


def test_optimizer_state_round_trips() -> None:
    params, x, y, m = problem(7, t=5, b=4, h=8)
    a = engine.Trainer(params, optimizer="rmsprop", lr=0.01)
    for _ in range(3):
        a.step(x, y, m)
    b = engine.Trainer(a.params, optimizer="rmsprop", lr=0.01)
    state = a.optimizer_state()
    assert state is not None
    b.set_optimizer_state(state)
    a.step(x, y, m)
    b.step(x, y, m)
    for k in params:
        np.testing.assert_array_equal(a.params[k], b.params[k])
    assert engine.Trainer(params).optimizer_state() is None


def exploding() -> tuple[dict, np.ndarray, np.ndarray, np.ndarray]:
    """A linear RNN with ρ(W_rec) = 1e4 over 200 steps: the gradient overflows to inf."""
    params, x, y, m = problem(8, t=200, b=2, h=4, last_only=True)
    params["W_rec"] = 1e4 * np.eye(4)
    return params, x, y, m


def test_nonfinite_gradient_is_skipped_by_default() -> None:
    params, x, y, m = exploding()
    tr = engine.Trainer(params, activation="linear", lr=0.1)
    st_ = tr.step(x, y, m)
    assert st_.skipped and not np.isfinite(st_.grad_norm)
    for k in params:
        np.testing.assert_array_equal(tr.params[k], params[k])


def test_nonfinite_shrink_policy_scales_only_w_rec() -> None:
    params, x, y, m = exploding()
    lr = 0.1
    tr = engine.Trainer(params, activation="linear", lr=lr, nonfinite="shrink")
    assert tr.step(x, y, m).skipped
    np.testing.assert_allclose(tr.params["W_rec"], params["W_rec"] * (1 - lr * 0.02), rtol=1e-15)
    for k in params:
        if k != "W_rec":
            np.testing.assert_array_equal(tr.params[k], params[k])


def test_nonfinite_error_policy_raises() -> None:
    params, x, y, m = exploding()
    tr = engine.Trainer(params, activation="linear", lr=0.1, nonfinite="error")
    with pytest.raises(FloatingPointError, match="non-finite gradient"):
        tr.step(x, y, m)


def test_learning_rate_and_alpha_can_be_changed_between_steps() -> None:
    params, x, y, m = problem(9, t=5, b=4, h=8)
    tr = engine.Trainer(params, lr=0.1, alpha=1.0)
    tr.lr = 0.0
    tr.alpha = 0.25
    tr.step(x, y, m)
    assert tr.lr == 0.0 and tr.alpha == 0.25
    for k in params:
        np.testing.assert_array_equal(tr.params[k], params[k])
    with pytest.raises(ValueError, match="learning rate"):
        tr.lr = -1.0


# --- carried state (truncated BPTT) ------------------------------------------------------------


def test_state_carried_across_segments_equals_one_long_forward_pass() -> None:
    params, x, _, _ = problem(10, t=30, b=4, h=16)
    whole, final = engine.forward(params, x, return_state=True)
    first, state = engine.forward(params, x[:13], return_state=True)
    second, final2 = engine.forward(params, x[13:], x0=state, return_state=True)
    np.testing.assert_allclose(np.concatenate([first, second]), whole, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(final2, final, rtol=1e-12, atol=1e-14)


def test_trainer_carries_state_between_steps() -> None:
    params, x, y, _ = problem(11, t=20, b=3, h=8)
    m = np.ones((20, 3))
    carried = engine.Trainer(params, lr=0.0, carry_state=True)
    carried.step(x[:10], y[:10], m[:10])
    s2 = carried.step(x[10:], y[10:], m[10:])
    _, state = engine.forward(params, x[:10], return_state=True)
    want = engine.loss_and_grads(params, x[10:], y[10:], m[10:], x0=state)
    assert s2.loss == pytest.approx(want.loss, rel=1e-12)
    carried.reset_state()
    s3 = carried.step(x[10:], y[10:], m[10:])
    assert s3.loss == pytest.approx(
        engine.loss_and_grads(params, x[10:], y[10:], m[10:]).loss, rel=1e-12
    )


def test_forward_matches_the_loss_path() -> None:
    params, x, y, _ = problem(12, t=9, b=5, h=7)
    m = np.zeros((9, 5))
    m[-1] = 1
    logits = engine.forward(params, x)
    z = logits[-1] - logits[-1].max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    ce = -logp[np.arange(5), y[-1]].mean()
    assert engine.loss_and_grads(params, x, y, m).loss == pytest.approx(ce, rel=1e-12)


# --- errors -----------------------------------------------------------------------------------


def test_bad_arguments_raise_clear_errors() -> None:
    params, x, y, m = problem(13, t=4, b=3, h=5)
    with pytest.raises(ValueError, match=r"inputs has shape \[4, 3, 2\], expected \(T, B, 3\)"):
        engine.loss_and_grads(params, x[:, :, :2].copy(), y, m)
    with pytest.raises(ValueError, match="mask has shape"):
        engine.loss_and_grads(params, x, y, m[:, :2].copy())
    with pytest.raises(TypeError, match="inputs must be a numpy array of float64"):
        engine.loss_and_grads(params, x.astype(np.float32), y, m)
    with pytest.raises(TypeError, match="inputs must be a numpy array of float64, got list"):
        engine.loss_and_grads(params, x.tolist(), y, m)
    with pytest.raises(ValueError, match="not C-contiguous"):
        engine.loss_and_grads(params, np.asfortranarray(x), y, m)
    bad = x.copy()
    bad[2, 1, 0] = np.nan
    with pytest.raises(ValueError, match=r"NaN or infinity .*step 2, example 1"):
        engine.loss_and_grads(params, bad, y, m)
    with pytest.raises(ValueError, match="unknown activation 'softsign'"):
        engine.loss_and_grads(params, x, y, m, activation="softsign")
    with pytest.raises(ValueError, match="unknown loss"):
        engine.loss_and_grads(params, x, y, m, loss="hinge")
    with pytest.raises(ValueError, match="class index outside"):
        engine.loss_and_grads(params, x, np.full_like(y, 99), np.ones_like(m))
    with pytest.raises(ValueError, match="W_rec has shape"):
        engine.loss_and_grads(params | {"W_rec": np.zeros((5, 4))}, x, y, m)
    with pytest.raises(ValueError, match="missing parameter 'b_out'"):
        engine.loss_and_grads({k: v for k, v in params.items() if k != "b_out"}, x, y, m)
    with pytest.raises(ValueError, match="x0 has shape"):
        engine.loss_and_grads(params, x, y, m, x0=np.zeros(7))
    with pytest.raises(ValueError, match="unknown optimizer 'adam'"):
        engine.Trainer(params, optimizer="adam")
    with pytest.raises(ValueError, match="clipping threshold"):
        engine.Trainer(params, clip_mode="norm", clip=0.0)
    with pytest.raises(ValueError, match="threads must be between 1 and"):
        engine.Trainer(params, threads=0)


def test_learned_initial_state_excludes_a_given_one() -> None:
    params, x, y, m = problem(14, t=4, b=3, h=5)
    params["x0"] = np.zeros(5)
    with pytest.raises(ValueError, match="learned parameter"):
        engine.loss_and_grads(params, x, y, m, x0=np.zeros(5))


def test_init_params_is_deterministic_and_honours_the_spectral_radius() -> None:
    a = engine.init_params(3, 20, 2, init="orthogonal", seed=5)
    b = engine.init_params(3, 20, 2, init="orthogonal", seed=5)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    np.testing.assert_allclose(a["W_rec"] @ a["W_rec"].T, np.eye(20), atol=1e-12)
    sparse = engine.init_params(3, 40, 2, init="sparse", seed=1)
    assert engine.spectral_radius(sparse["W_rec"]) == pytest.approx(0.95, rel=1e-9)
    assert (np.count_nonzero(sparse["W_rec"], axis=1) == 15).all()
    ident = engine.init_params(3, 10, 2, init="identity", spectral_radius_target=0.5)
    np.testing.assert_array_equal(ident["W_rec"], 0.5 * np.eye(10))
    normal = engine.init_params(3, 200, 2, scale=0.1, seed=0, dtype="float32")
    assert normal["W_rec"].dtype == np.float32
    assert normal["W_rec"].std() == pytest.approx(0.1, rel=0.02)


def test_frozen_biases_stay_put_and_do_not_count_in_the_norm() -> None:
    params, x, y, m = problem(15, t=6, b=4, h=8)
    params["b"] = np.full(8, 0.3)
    tr = engine.Trainer(params, lr=0.5, clip_mode="none", train_biases=False)
    st_ = tr.step(x, y, m)
    np.testing.assert_array_equal(tr.params["b"], params["b"])
    np.testing.assert_array_equal(tr.params["b_out"], params["b_out"])
    assert not np.array_equal(tr.params["W_rec"], params["W_rec"])
    g = engine.loss_and_grads(params, x, y, m).grads
    want = np.sqrt(sum(float(np.sum(v**2)) for k, v in g.items() if k not in ("b", "b_out")))
    assert st_.grad_norm == pytest.approx(want, rel=1e-12)
