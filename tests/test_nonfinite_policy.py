"""No non-finite-gradient policy ever produces non-finite weights.

Whatever the learning rate (up to absurd ones), activation, dtype, optimiser, clipping and
policy, every parameter and every optimiser state entry stays finite after every update; the
"shrink" policy (the authors' W_rec ← (1 − 0.02·lr)·W_rec, bounded to a factor in [0.5, 1])
never grows W_rec nor flips a sign; "error" stops with FloatingPointError and leaves the weights
as they were. On the GPU backend too, where the GPU tests run (see tests/test_gpu.py).
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnstab_cli import engine

LEARNING_RATES = st.one_of(
    st.sampled_from([0.01, 1.0, 25.0, 50.0, 60.0, 100.0, 150.0, 1e9, 1e30, 1e38, 1e300]),
    st.floats(min_value=1e-4, max_value=1e30, allow_nan=False, allow_infinity=False),
)
SETTINGS = {
    "lr": LEARNING_RATES,
    "activation": st.sampled_from(engine.ACTIVATIONS),
    "optimizer": st.sampled_from(engine.OPTIMIZERS),
    "nonfinite": st.sampled_from(engine.NONFINITE_POLICIES),
    "clip": st.sampled_from(engine.CLIP_MODES),
    "radius": st.sampled_from([0.5, 1.0, 3.0, 100.0, 1e4]),
    "seed": st.integers(0, 2**16),
}


def problem(seed: int, radius: float, dtype: str, t: int = 40, b: int = 3, h: int = 6):
    params = engine.init_params(
        3, h, 4, scale=1.0, seed=seed, dtype=dtype, spectral_radius_target=radius
    )
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 3, (t, b, 3)).astype(dtype)
    y = rng.integers(0, 4, (t, b)).astype(np.int64)
    m = np.ones((t, b), dtype)
    return params, x, y, m


def all_finite(arrays: dict[str, np.ndarray] | None) -> bool:
    return arrays is None or all(np.isfinite(a).all() for a in arrays.values())


def check_updates(
    tr: engine.Trainer,
    x: np.ndarray,
    y: np.ndarray,
    m: np.ndarray,
    lr: float,
    nonfinite: str,
    steps: int = 6,
) -> None:
    for _ in range(steps):
        before = tr.params
        try:
            st_ = tr.step(x, y, m)
        except FloatingPointError:
            assert nonfinite == "error"
            for k, v in tr.params.items():
                np.testing.assert_array_equal(v, before[k])
            return
        after = tr.params
        assert all_finite(after), f"non-finite weights (lr {lr}, {nonfinite})"
        assert all_finite(tr.optimizer_state()), f"non-finite optimiser state (lr {lr})"
        if st_.skipped and nonfinite == "shrink":
            w0, w1 = before["W_rec"].astype(np.float64), after["W_rec"].astype(np.float64)
            assert np.all(np.abs(w1) <= np.abs(w0)), "the shrink grew W_rec"
            assert np.all(np.sign(w0) * np.sign(w1) >= 0), "the shrink flipped a sign of W_rec"
            nz = w0 != 0
            ratio = w1[nz] / w0[nz]
            assert np.all(ratio >= engine.SHRINK_FLOOR - 1e-6), ratio.min()
        elif st_.skipped:
            for k, v in after.items():
                np.testing.assert_array_equal(v, before[k])


@settings(max_examples=150 if os.environ.get("CI") else 60)
@given(dtype=st.sampled_from(["float32", "float64"]), **SETTINGS)
def test_no_policy_makes_cpu_weights_non_finite(
    dtype: str,
    lr: float,
    activation: str,
    optimizer: str,
    nonfinite: str,
    clip: str,
    radius: float,
    seed: int,
) -> None:
    params, x, y, m = problem(seed, radius, dtype)
    tr = engine.Trainer(
        params,
        activation=activation,
        optimizer=optimizer,
        lr=lr,
        clip_mode=clip,
        clip=1.0,
        nonfinite=nonfinite,
        threads=1,
    )
    check_updates(tr, x, y, m, lr, nonfinite)


def test_the_reported_shrink_blow_up_stays_finite_and_shrinks() -> None:
    # lr = 1e9, no clipping, f32: the unbounded factor 1 − 0.02·lr made W_rec ±inf in 5 updates.
    params, x, y, m = problem(0, 1e4, "float32")
    tr = engine.Trainer(params, activation="linear", lr=1e9, clip_mode="none", nonfinite="shrink")
    skipped = 0
    for _ in range(20):
        before = np.abs(tr.params["W_rec"]).max()
        st_ = tr.step(x, y, m)
        assert all_finite(tr.params)
        if st_.skipped:
            skipped += 1
            after = np.abs(tr.params["W_rec"]).max()
            assert after == pytest.approx(before * engine.SHRINK_FLOOR, rel=1e-6)
    assert skipped >= 10


def test_an_overflowing_update_is_reported_by_the_error_policy() -> None:
    params, x, y, m = problem(1, 1.0, "float32")
    tr = engine.Trainer(params, activation="tanh", lr=1e38, clip_mode="none", nonfinite="error")
    with pytest.raises(FloatingPointError, match=r"learning rate|non-finite gradient"):
        for _ in range(3):
            tr.step(x, y, m)
    assert all_finite(tr.params)


def _gpu_reason() -> str | None:
    if not engine.has_gpu_backend():
        return "this build has no GPU backend"
    if not engine.gpu_adapters():
        return "wgpu sees no GPU adapter (install mesa-vulkan-drivers for lavapipe)"
    return None


_GPU = _gpu_reason()
if _GPU is not None and os.environ.get("RNNSTAB_REQUIRE_GPU") == "1":
    raise RuntimeError(f"RNNSTAB_REQUIRE_GPU=1 but {_GPU}")


@pytest.mark.skipif(_GPU is not None, reason=_GPU or "")
@settings(max_examples=25)
@given(**SETTINGS)
def test_no_policy_makes_gpu_weights_non_finite(
    lr: float,
    activation: str,
    optimizer: str,
    nonfinite: str,
    clip: str,
    radius: float,
    seed: int,
) -> None:
    params, x, y, m = problem(seed, radius, "float32")
    tr = engine.Trainer(
        params,
        activation=activation,
        optimizer=optimizer,
        lr=lr,
        clip_mode=clip,
        clip=1.0,
        nonfinite=nonfinite,
        device="gpu",
    )
    check_updates(tr, x, y, m, lr, nonfinite, steps=4)
