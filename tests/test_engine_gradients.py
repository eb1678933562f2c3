"""Property tests of the engine's gradients: every one, Ω's immediate gradient included, against
central finite differences in float64, and the loss and Ω against an independent numpy model.

Tolerances: central differences with step h = 1e-6 in f64 carry a truncation error of order
h²·|E'''| ≈ 1e-12 and a rounding error of order ε·|E|/h ≈ 1e-16·|E|/1e-6 = 1e-10·|E|; with E of
order 1–10 the finite difference is good to ~1e-8 absolute. We allow 1e-6 relative to the
larger of 1 and the gradient entry's magnitude, as the project's convention for f64 central
differences, which is still orders of magnitude below any real error (a wrong sign or a missing
term moves entries by their own size).
"""

from __future__ import annotations

import numpy as np
import pytest
import reference_rnn as ref
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnstab_cli import engine

FD_STEP = 1e-6
FD_RTOL = 1e-6


@st.composite
def problems(draw: st.DrawFn, losses: tuple[str, ...] = engine.LOSSES) -> dict:
    """A random small problem: shapes, activation, loss, mask, time reduction, initial state."""
    t = draw(st.integers(1, 6))
    b = draw(st.integers(1, 4))
    i = draw(st.integers(1, 3))
    h = draw(st.integers(1, 5))
    o = draw(st.integers(1, 4))
    activation = draw(st.sampled_from(engine.ACTIVATIONS))
    loss = draw(st.sampled_from(losses))
    seed = draw(st.integers(0, 2**32 - 1))
    x0_kind = draw(st.sampled_from(["zero", "given", "per-example", "learned"]))
    rng = np.random.default_rng(seed)
    # Weights of scale 0.6 keep the linear and ReLU models from exploding over 6 steps while
    # making every term of the gradient matter.
    params = engine.init_params(i, h, o, scale=0.6, seed=seed % 1000, learn_x0=x0_kind == "learned")
    params["b"] = rng.normal(0, 0.3, h)
    params["b_out"] = rng.normal(0, 0.3, o)
    if x0_kind == "learned":
        params["x0"] = rng.normal(0, 0.5, h)  # away from ReLU's kink at 0
    inputs = rng.normal(0, 1, (t, b, i))
    if loss == "softmax_ce":
        targets = rng.integers(0, o, (t, b)).astype(np.int64)
    elif loss == "mse":
        targets = rng.normal(0, 1, (t, b, o))
    else:
        targets = (rng.random((t, b, o)) < 0.4).astype(np.float64)
    mask = (rng.random((t, b)) < draw(st.sampled_from([0.3, 0.7, 1.0]))).astype(np.float64)
    x0 = None
    if x0_kind == "given":
        x0 = rng.normal(0, 0.5, h)
    elif x0_kind == "per-example":
        x0 = rng.normal(0, 0.5, (b, h))
    return {
        "params": params,
        "inputs": inputs,
        "targets": targets,
        "mask": mask,
        "activation": activation,
        "loss": loss,
        "time_reduction": draw(st.sampled_from(["sum", "mean"])),
        "x0": x0,
    }


def call(p: dict, params: dict | None = None, **kw: object) -> engine.LossAndGrads:
    return engine.loss_and_grads(
        params if params is not None else p["params"],
        p["inputs"],
        p["targets"],
        p["mask"],
        activation=p["activation"],
        loss=p["loss"],
        time_reduction=p["time_reduction"],
        x0=p["x0"],
        **kw,
    )


def reference(p: dict, omega_form: str) -> ref.Trace:
    """The independent numpy model on the same problem."""
    return ref.run(
        p["params"],
        p["inputs"],
        p["targets"],
        p["mask"],
        p["activation"],
        p["loss"],
        p["time_reduction"],
        omega_form,
        p["x0"],
    )


def finite_difference(f, params: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    out = {}
    for name, value in params.items():
        g = np.zeros_like(value)
        for idx in np.ndindex(value.shape):
            plus = {k: v.copy() for k, v in params.items()}
            minus = {k: v.copy() for k, v in params.items()}
            plus[name][idx] += FD_STEP
            minus[name][idx] -= FD_STEP
            g[idx] = (f(plus) - f(minus)) / (2 * FD_STEP)
        out[name] = g
    return out


def assert_close(got: np.ndarray, want: np.ndarray, what: str) -> None:
    tol = FD_RTOL * np.maximum(1.0, np.abs(want))
    bad = np.abs(got - want) > tol
    assert not bad.any(), f"{what}: max error {np.max(np.abs(got - want)):.3e}\n{got}\n{want}"


@settings(max_examples=150)
@given(problems())
def test_every_gradient_matches_finite_differences(p: dict) -> None:
    res = call(p)
    fd = finite_difference(lambda q: call(p, params=q).loss, p["params"])
    assert set(res.grads) == set(p["params"])
    for name in p["params"]:
        assert res.grads[name].shape == p["params"][name].shape
        assert_close(res.grads[name], fd[name], name)


@settings(max_examples=150)
@given(problems())
def test_loss_and_omega_match_the_reference_model(p: dict) -> None:
    form = "squared" if p["inputs"].shape[0] % 2 else "norm"
    res = call(p, omega_form=form)
    tr = reference(p, form)
    assert res.loss == pytest.approx(tr.loss, rel=1e-10, abs=1e-12)
    assert res.omega == pytest.approx(tr.omega, rel=1e-9, abs=1e-12)


@settings(max_examples=150)
@given(problems(), st.sampled_from(["norm", "squared"]), st.sampled_from([0.5, 2.0]))
def test_omega_immediate_gradient_matches_finite_differences(
    p: dict, form: str, alpha: float
) -> None:
    """Eq. (10): ∂⁺Ω/∂W_rec with g_{k+1} and x_k frozen, added to W_rec's gradient with weight α
    and nowhere else."""
    plain = call(p, omega_form=form)
    reg = call(p, alpha=alpha, omega_form=form)
    tr = reference(p, form)
    w = p["params"]["W_rec"]
    fd = finite_difference(
        lambda q: ref.omega_frozen(q["W_rec"], tr, p["activation"], form), {"W_rec": w}
    )["W_rec"]
    omega_grad = (reg.grads["W_rec"] - plain.grads["W_rec"]) / alpha
    # The difference of two gradients carries their rounding (~1e-15 each) divided by α.
    assert_close(omega_grad, fd, "dΩ/dW_rec")
    for name in p["params"]:
        if name != "W_rec":
            np.testing.assert_array_equal(reg.grads[name], plain.grads[name])
    assert reg.loss == plain.loss and reg.omega == plain.omega


def test_omega_gradient_is_not_trivially_zero() -> None:
    """Guards the property test above against vacuity: on a problem with long-range error
    signal, Ω's immediate gradient is large."""
    rng = np.random.default_rng(3)
    params = engine.init_params(2, 6, 3, scale=0.5, seed=3)
    inputs = rng.normal(0, 1, (8, 3, 2))
    targets = rng.integers(0, 3, (8, 3)).astype(np.int64)
    mask = np.zeros((8, 3))
    mask[-1] = 1
    plain = engine.loss_and_grads(params, inputs, targets, mask)
    reg = engine.loss_and_grads(params, inputs, targets, mask, alpha=1.0)
    assert plain.omega > 0.1
    assert np.abs(reg.grads["W_rec"] - plain.grads["W_rec"]).max() > 1e-2


@settings(max_examples=60)
@given(problems(), st.sampled_from([0.0, 1.0]))
def test_float32_agrees_with_float64(p: dict, alpha: float) -> None:
    res64 = call(p, alpha=alpha)
    p32 = dict(p)
    p32["params"] = {k: v.astype(np.float32) for k, v in p["params"].items()}
    p32["inputs"] = p["inputs"].astype(np.float32)
    p32["mask"] = p["mask"].astype(np.float32)
    if p["targets"].dtype != np.int64:
        p32["targets"] = p["targets"].astype(np.float32)
    if p["x0"] is not None:
        p32["x0"] = p["x0"].astype(np.float32)
    res32 = call(p32, alpha=alpha)
    # f32 keeps ~7 digits; a handful of steps of products and sums of ≤ 5 terms loses at most a
    # few more, so 1e-4 relative to the gradient's norm is a loose but meaningful bound.
    norm = np.sqrt(sum(float(np.sum(g**2)) for g in res64.grads.values()))
    assert res32.loss == pytest.approx(res64.loss, rel=1e-5, abs=1e-5)
    for name, g in res64.grads.items():
        assert res32.grads[name].dtype == np.float32
        assert np.abs(res32.grads[name] - g).max() <= 1e-4 * max(norm, 1.0), name
