"""The engine's Python face: parameter initialisation, one-call loss and gradients, clipping,
evaluation, and the stateful :class:`Trainer`.

Everything heavy runs in Rust (``rnnstab_cli._engine``) with the GIL released; this module
only names things, checks arguments and wraps results. The dtype of the arrays (float32 or
float64) picks the engine's precision.

Parameters follow eq. (2) of Pascanu, Mikolov & Bengio (2013)::

    x_t = W_rec·σ(x_{t−1}) + W_in·u_t + b,    y_t = W_out·σ(x_t) + b_out
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import NamedTuple

import numpy as np

from rnnstab_cli import _engine
from rnnstab_cli.errors import UsageError

Params = dict[str, np.ndarray]

ACTIVATIONS = ("tanh", "sigmoid", "relu", "linear")
LOSSES = ("softmax_ce", "mse", "bce")
OPTIMIZERS = ("sgd", "momentum", "nesterov", "rmsprop", "adagrad")
INITS = ("normal", "sparse", "identity", "orthogonal")
CLIP_MODES = ("none", "norm", "value")
NONFINITE_POLICIES = ("skip", "shrink", "error")
PARAM_NAMES = ("W_rec", "W_in", "b", "W_out", "b_out", "x0")

#: Non-zero incoming recurrent weights per unit in the authors' sparse initialisation.
SPARSE_CONNECTIONS = 15
#: Spectral radius the sparse initialisation is rescaled to (the authors' code).
SPARSE_RADIUS = 0.95


class LossAndGrads(NamedTuple):
    loss: float
    omega: float
    grads: Params


class StepStats(NamedTuple):
    """What one update did. ``grad_norm`` is measured before clipping."""

    loss: float
    omega: float
    grad_norm: float
    clipped: bool
    skipped: bool
    omega_pairs: int


class StepsStats(NamedTuple):
    """K updates' statistics as arrays of length K."""

    loss: np.ndarray
    omega: np.ndarray
    grad_norm: np.ndarray
    clipped: np.ndarray
    skipped: np.ndarray
    omega_pairs: np.ndarray


def _dtype(dtype: str | np.dtype | type) -> np.dtype:
    dt = np.dtype(dtype)
    if dt not in (np.float32, np.float64):
        raise UsageError(f"dtype must be float32 or float64, got {dt}")
    return dt


#: The instruction sets the engine's kernels exist for, least capable first, and the variable
#: that caps the one they use (to measure on one machine what a machine without AVX-512 gets).
SIMD_LEVELS = ("portable", "avx2", "avx512")
SIMD_ENV = "RNNSTAB_SIMD"


def check_simd_env() -> None:
    """UsageError when ``$RNNSTAB_SIMD`` names no instruction set (the engine would ignore it)."""
    value = os.environ.get(SIMD_ENV, "").strip()
    if value and value not in SIMD_LEVELS:
        raise UsageError(
            f"{SIMD_ENV}={value!r} is not an instruction set; use one of {', '.join(SIMD_LEVELS)}"
        )


def simd_level() -> str:
    """The instruction set the engine's kernels run: the CPU's best, capped by $RNNSTAB_SIMD."""
    return str(_engine.simd_level())


def has_gpu_backend() -> bool:
    """Whether this build includes the wgpu backend (``device="gpu"``)."""
    return bool(getattr(_engine, "HAS_GPU", False))


def gpu_adapters() -> list[dict[str, str]]:
    """The GPU adapters wgpu can see (name, backend, device type, driver); empty without the
    GPU backend or without a driver."""
    if not has_gpu_backend():
        return []
    keys = ("name", "backend", "device_type", "driver")
    return [dict(zip(keys, a, strict=True)) for a in _engine.gpu_adapters()]


def spectral_radius(w: np.ndarray) -> float:
    """ρ(W), the largest |eigenvalue|: the paper's λ₁ (§2.1)."""
    return float(np.max(np.abs(np.linalg.eigvals(np.asarray(w, dtype=np.float64)))))


def init_params(
    n_in: int,
    n_hidden: int,
    n_out: int,
    init: str = "normal",
    scale: float = 0.1,
    seed: int = 0,
    dtype: str = "float64",
    spectral_radius_target: float | None = None,
    learn_x0: bool = False,
) -> Params:
    """Fresh parameters, deterministic from ``seed``.

    - ``normal``: every weight N(0, scale²), as in the paper's synthetic tasks (scale 0.1).
    - ``sparse``: the authors' "smart" init: each unit gets 15 non-zero N(0, 1) incoming
      recurrent weights, then W_rec is rescaled to spectral radius 0.95; W_in and W_out are
      N(0, scale²).
    - ``identity``: W_rec = I (IRNN, Le et al. 2015); W_in and W_out N(0, scale²).
    - ``orthogonal``: W_rec a random orthogonal matrix (QR of a Gaussian, signs fixed so the
      distribution is uniform); W_in and W_out N(0, scale²).

    ``spectral_radius_target`` rescales W_rec of any init to that spectral radius. Biases start
    at zero; with ``learn_x0`` the initial state x0 is a parameter, starting at zero.
    """
    for name, v in (("n_in", n_in), ("n_hidden", n_hidden), ("n_out", n_out)):
        if not isinstance(v, int | np.integer) or v < 1:
            raise UsageError(f"{name} must be a positive integer, got {v!r}")
    if init not in INITS:
        raise UsageError(f"unknown init '{init}'; expected one of: {', '.join(INITS)}")
    if not np.isfinite(scale) or scale < 0:
        raise UsageError(f"scale must be finite and ≥ 0, got {scale}")
    dt = _dtype(dtype)
    rng = np.random.default_rng(seed)
    h = n_hidden
    if init == "normal":
        w_rec = rng.normal(0.0, scale, (h, h))
    elif init == "sparse":
        w_rec = np.zeros((h, h))
        k = min(SPARSE_CONNECTIONS, h)
        for i in range(h):
            cols = rng.choice(h, size=k, replace=False)
            w_rec[i, cols] = rng.normal(0.0, 1.0, k)
        rho = spectral_radius(w_rec)
        if rho > 0:
            w_rec *= SPARSE_RADIUS / rho
    elif init == "identity":
        w_rec = np.eye(h)
    else:  # orthogonal
        q, r = np.linalg.qr(rng.normal(0.0, 1.0, (h, h)))
        w_rec = q * np.sign(np.diag(r))
    if spectral_radius_target is not None:
        if not np.isfinite(spectral_radius_target) or spectral_radius_target < 0:
            raise UsageError(
                f"spectral radius must be finite and ≥ 0, got {spectral_radius_target}"
            )
        rho = spectral_radius(w_rec)
        if rho == 0:
            raise UsageError("cannot rescale a W_rec whose spectral radius is 0")
        w_rec = w_rec * (spectral_radius_target / rho)
    params = {
        "W_rec": w_rec,
        "W_in": rng.normal(0.0, scale, (h, n_in)),
        "b": np.zeros(h),
        "W_out": rng.normal(0.0, scale, (n_out, h)),
        "b_out": np.zeros(n_out),
    }
    if learn_x0:
        params["x0"] = np.zeros(h)
    return {k: np.ascontiguousarray(v, dtype=dt) for k, v in params.items()}


def _params_dict(params: Mapping[str, np.ndarray]) -> Params:
    if not isinstance(params, Mapping):
        raise TypeError(f"params must be a dict of numpy arrays, got {type(params).__name__}")
    return dict(params)


def loss_and_grads(
    params: Mapping[str, np.ndarray],
    inputs: np.ndarray,
    targets: np.ndarray,
    mask: np.ndarray,
    activation: str = "tanh",
    loss: str = "softmax_ce",
    omega_alpha: float = 0.0,
    omega_form: str = "norm",
    time_reduction: str = "sum",
    x0: np.ndarray | None = None,
    threads: int | None = None,
) -> LossAndGrads:
    """E, Ω (eq. 9) and the gradient of E + α·Ω for one batch.

    ``inputs (T, B, I)``, ``targets (T, B)`` int64 classes or ``(T, B, O)`` values, ``mask
    (T, B)``. Ω's gradient is its immediate partial with respect to W_rec (eq. 10), weighted by
    ``omega_alpha``; Ω's value is reported whatever α is.
    """
    loss_v, omega, grads, _, _ = _engine.loss_and_grads(
        _params_dict(params),
        inputs,
        targets,
        mask,
        activation,
        loss,
        float(omega_alpha),
        omega_form,
        time_reduction,
        x0,
        threads,
    )
    return LossAndGrads(loss_v, omega, grads)


def loss_grads_and_state(
    params: Mapping[str, np.ndarray],
    inputs: np.ndarray,
    targets: np.ndarray,
    mask: np.ndarray,
    x0: np.ndarray | None = None,
    **settings: object,
) -> tuple[LossAndGrads, np.ndarray]:
    """As :func:`loss_and_grads`, running all T steps, and also x_T ``(B, H)``: the state to
    carry into the next segment of a stream (truncated BPTT)."""
    keys = ("activation", "loss", "omega_alpha", "omega_form", "time_reduction", "threads")
    unknown = set(settings) - set(keys)
    if unknown:
        raise TypeError(f"unexpected settings: {', '.join(sorted(unknown))}")
    s = {
        "activation": "tanh",
        "loss": "softmax_ce",
        "omega_alpha": 0.0,
        "omega_form": "norm",
        "time_reduction": "sum",
        "threads": None,
    } | settings
    loss_v, omega, grads, _, final = _engine.loss_and_grads(
        _params_dict(params),
        inputs,
        targets,
        mask,
        s["activation"],
        s["loss"],
        float(s["omega_alpha"]),
        s["omega_form"],
        s["time_reduction"],
        x0,
        s["threads"],
        True,
    )
    return LossAndGrads(loss_v, omega, grads), final


def forward(
    params: Mapping[str, np.ndarray],
    inputs: np.ndarray,
    activation: str = "tanh",
    x0: np.ndarray | None = None,
    threads: int | None = None,
    return_state: bool = False,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Outputs y_t ``(T, B, O)`` (logits or raw values) for evaluation; with ``return_state``
    also x_T ``(B, H)``."""
    y, final = _engine.forward(_params_dict(params), inputs, activation, x0, threads)
    return (y, final) if return_state else y


def clip_norm(grads: Mapping[str, np.ndarray], threshold: float) -> tuple[Params, float]:
    """Algorithm 1: rescale when the global L2 norm exceeds ``threshold``. Returns the clipped
    gradients and the norm before clipping."""
    return _engine.clip_norm(_params_dict(grads), float(threshold))


def clip_value(grads: Mapping[str, np.ndarray], threshold: float) -> Params:
    """Element-wise clipping to ±threshold (Mikolov, 2012)."""
    return _engine.clip_value(_params_dict(grads), float(threshold))


class Trainer:
    """Owns parameters and optimiser state in Rust; one call per update or per K updates.

    >>> tr = Trainer(params, activation="tanh", loss="softmax_ce", optimizer="sgd", lr=0.01,
    ...              clip="norm", clip_threshold=6.0, omega_alpha=0.0)  # doctest: +SKIP
    >>> st = tr.step(inputs, targets, mask)                           # doctest: +SKIP
    """

    def __init__(
        self,
        params: Mapping[str, np.ndarray],
        activation: str = "tanh",
        loss: str = "softmax_ce",
        optimizer: str = "sgd",
        lr: float = 0.01,
        clip: str = "norm",
        clip_threshold: float = 6.0,
        omega_alpha: float = 0.0,
        omega_form: str = "norm",
        time_reduction: str = "sum",
        momentum: float = 0.9,
        rho: float = 0.9,
        eps: float = 1e-8,
        nonfinite: str = "skip",
        threads: int | None = None,
        carry_state: bool = False,
        train_biases: bool = True,
        device: str = "cpu",
    ) -> None:
        self._native = _engine.Trainer(
            _params_dict(params),
            activation,
            loss,
            optimizer,
            float(lr),
            clip,
            float(clip_threshold),
            float(omega_alpha),
            omega_form,
            time_reduction,
            float(momentum),
            float(rho),
            float(eps),
            nonfinite,
            threads,
            carry_state,
            train_biases,
            device,
        )
        self.activation = activation
        self.loss = loss

    def step(
        self,
        inputs: np.ndarray,
        targets: np.ndarray,
        mask: np.ndarray,
        x0: np.ndarray | None = None,
    ) -> StepStats:
        return StepStats(*self._native.step(inputs, targets, mask, x0))

    def steps(self, inputs: np.ndarray, targets: np.ndarray, mask: np.ndarray) -> StepsStats:
        """K updates from arrays with a leading K axis: ``inputs (K, T, B, I)`` etc."""
        rows = self._native.steps(inputs, targets, mask)
        cols = list(zip(*rows, strict=True)) if rows else [()] * 6
        kinds = (np.float64, np.float64, np.float64, bool, bool, np.int64)
        return StepsStats(*(np.array(c, dtype=k) for c, k in zip(cols, kinds, strict=True)))

    @property
    def params(self) -> Params:
        return self._native.params

    @params.setter
    def params(self, params: Mapping[str, np.ndarray]) -> None:
        self._native.set_params(_params_dict(params))

    @property
    def grads(self) -> Params:
        """The gradient of the last step, after clipping."""
        return self._native.grads

    @property
    def lr(self) -> float:
        return self._native.lr

    @lr.setter
    def lr(self, value: float) -> None:
        self._native.lr = float(value)

    @property
    def omega_alpha(self) -> float:
        return self._native.omega_alpha

    @omega_alpha.setter
    def omega_alpha(self, value: float) -> None:
        self._native.omega_alpha = float(value)

    @property
    def threads(self) -> int:
        return self._native.threads

    @property
    def dtype(self) -> str:
        return self._native.dtype

    @property
    def device(self) -> str:
        """``"cpu"`` or the name of the GPU adapter the trainer runs on."""
        return self._native.device

    def optimizer_state(self) -> Params | None:
        return self._native.optimizer_state()

    def set_optimizer_state(self, state: Mapping[str, np.ndarray]) -> None:
        self._native.set_optimizer_state(_params_dict(state))

    def final_state(self) -> np.ndarray:
        """x_T ``(B, H)`` of the last step."""
        return self._native.final_state()

    def reset_state(self) -> None:
        """Forget the carried state (with ``carry_state=True``)."""
        self._native.reset_state()

    def error_signal_profile(self) -> np.ndarray:
        """Mean ‖∂E/∂x_t‖ over the batch for t = 0..T of the last step."""
        return self._native.error_signal_profile()
