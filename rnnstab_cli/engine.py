"""The engine's Python face: parameter initialisation, one-call loss and gradients, clipping,
evaluation, and the stateful :class:`Trainer`.

Everything heavy runs in Rust (``rnnstab_cli._engine``) with the GIL released; this module
only names things, checks arguments and wraps results. The dtype of the arrays (float32 or
float64) picks the engine's precision.

Parameters follow eq. (2) of Pascanu, Mikolov & Bengio (2013)::

    x_t = W_rec·σ(x_{t−1}) + W_in·u_t + b,    y_t = W_out·σ(x_t) + b_out
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping
from typing import Final, NamedTuple, Unpack, cast, get_type_hints

import numpy as np

from rnnstab_cli import _engine

# The engine's names and constants, re-exported where the engine's other settings are.
from rnnstab_cli.engine_names import ACTIVATIONS as ACTIVATIONS
from rnnstab_cli.engine_names import CLIP_MODES as CLIP_MODES
from rnnstab_cli.engine_names import GAMMA as GAMMA
from rnnstab_cli.engine_names import INITS as INITS
from rnnstab_cli.engine_names import LOSSES as LOSSES
from rnnstab_cli.engine_names import MAX_THREADS as MAX_THREADS
from rnnstab_cli.engine_names import NONFINITE_POLICIES as NONFINITE_POLICIES
from rnnstab_cli.engine_names import OPTIMIZERS as OPTIMIZERS
from rnnstab_cli.engine_options import TrainerOptions
from rnnstab_cli.errors import UsageError
from rnnstab_cli.resources import bptt_bytes, forward_bytes, require

# Kept here too, where the engine's other settings are (rnnstab_cli.simd_env checks them
# without loading the engine).
from rnnstab_cli.simd_env import SIMD_ENV as SIMD_ENV
from rnnstab_cli.simd_env import SIMD_LEVELS as SIMD_LEVELS
from rnnstab_cli.simd_env import check_simd_env as check_simd_env

Params = dict[str, np.ndarray]

PARAM_NAMES = ("W_rec", "W_in", "b", "W_out", "b_out", "x0")

#: The smallest factor the "shrink" policy multiplies W_rec by: the authors' 1 − 0.02·lr holds
#: down to it (lr ≤ 25); above, W_rec halves. Unbounded, the factor is negative for lr > 50
#: and larger than 1 in size for lr > 100, and repeated shrinks would grow W_rec to ±inf.
SHRINK_FLOOR: float = float(getattr(_engine, "SHRINK_FLOOR", 0.5))

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
    clip_threshold: float  # the rule's threshold in force at this update; NaN when none is


class StepsStats(NamedTuple):
    """K updates' statistics as arrays of length K."""

    loss: np.ndarray
    omega: np.ndarray
    grad_norm: np.ndarray
    clipped: np.ndarray
    skipped: np.ndarray
    omega_pairs: np.ndarray
    clip_threshold: np.ndarray


def _dtype(dtype: str | np.dtype | type) -> np.dtype:
    dt = np.dtype(dtype)
    if dt not in (np.float32, np.float64):
        raise UsageError(f"dtype must be float32 or float64, got {dt}")
    return dt


def check_threads(threads: object, name: str = "threads") -> int | None:
    """``threads`` as the engine takes it: None (one per core) or an integer in
    1..MAX_THREADS. The one check behind the API, the configs and the CLI."""
    if threads is None:
        return None
    if isinstance(threads, bool) or not isinstance(threads, int | np.integer):
        raise UsageError(f"{name} must be an integer or None, got {threads!r}")
    if not 1 <= threads <= MAX_THREADS:
        raise UsageError(f"{name} must be between 1 and {MAX_THREADS}, got {threads}")
    return int(threads)


def _count(name: str, value: object) -> int:
    """A count the engine takes as an unsigned integer: a negative or non-integer one is named
    here, not met as an opaque conversion error."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise UsageError(f"{name} must be an integer ≥ 1, got {value!r}")
    return int(value)


def check_alpha(alpha: object) -> float:
    """Ω's weight α: a finite number ≥ 0 (the engine checks it too; this names it for the API)."""
    if isinstance(alpha, bool) or not isinstance(alpha, int | float | np.floating | np.integer):
        raise UsageError(f"alpha must be a number, got {alpha!r}")
    a = float(alpha)
    if not np.isfinite(a) or a < 0:
        raise UsageError(f"alpha must be finite and ≥ 0, got {a}")
    return a


#: The trainer options checked here before the engine sees them (:meth:`Trainer.__init__`).
_OPTION_CHECKS: Final[dict[str, Callable[[str, object], object]]] = {
    "alpha": lambda _, v: check_alpha(v),
    "threads": lambda name, v: check_threads(v, name),
    "clip_window": _count,
    "clip_warmup": _count,
}
_FLOAT_OPTIONS: Final[frozenset[str]] = frozenset(
    k for k, t in get_type_hints(TrainerOptions).items() if t is float
)


def _check_option(name: str, value: object) -> object:
    """One trainer option as the engine takes it: checked where a check names the mistake
    better than the engine would, numbers as Python floats (numpy scalars included)."""
    check = _OPTION_CHECKS.get(name)
    if check is not None:
        return check(name, value)
    if name in _FLOAT_OPTIONS and isinstance(value, int | float | np.floating | np.integer):
        return float(value)
    return value


#: Lines that system libraries print on stderr while the GPU backend starts and that say
#: nothing about rnnstab: libwayland-client, which Mesa's Vulkan drivers load, complains when
#: XDG_RUNTIME_DIR is unset (every headless machine), though no window is ever opened.
_LOADER_NOISE = re.compile(r"^error: XDG_RUNTIME_DIR is invalid or not set in the environment\.$")


@contextlib.contextmanager
def _gpu_loader_stderr() -> Iterator[None]:
    """Catch what native code writes to file descriptor 2 while the GPU backend starts, and
    pass on every line but the loader's known noise. The libraries write to the descriptor,
    not to ``sys.stderr``, so the descriptor itself is redirected for the duration."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):
        yield  # no usable descriptor 2 (e.g. an embedding host): nothing to filter
        return
    with tempfile.TemporaryFile() as caught:
        os.dup2(caught.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            caught.seek(0)
            text = caught.read().decode(errors="replace")
            kept = [ln for ln in text.splitlines() if not _LOADER_NOISE.match(ln)]
            if kept:
                sys.stderr.write("\n".join(kept) + "\n")
                sys.stderr.flush()


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
    with _gpu_loader_stderr():
        adapters = _engine.gpu_adapters()
    return [dict(zip(keys, a, strict=True)) for a in adapters]


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
    # W_rec is drawn in float64 and then converted: two (H, H) arrays at once.
    require(
        8 * 2 * n_hidden * (n_hidden + n_in + n_out + 2),
        f"init_params (n_hidden {n_hidden})",
        "use fewer hidden units",
    )
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


def _check_like(new: Params, current: Params, what: str) -> None:
    """Each array of ``new`` shaped like the trainer's own, naming the first that is not: the
    engine alone would infer H from W_rec and blame whichever array disagreed with it."""
    for name, arr in new.items():
        cur = current.get(name)
        shape = getattr(arr, "shape", None)
        if cur is not None and shape is not None and tuple(shape) != cur.shape:
            raise UsageError(
                f"{what}[{name!r}] has shape {tuple(shape)}, the trainer's is {cur.shape}"
            )


#: Calls whose buffers need less than this are not checked against the memory available: the
#: check reads /proc, and small calls (most of them) cannot fail.
CHECK_MEMORY_ABOVE: int = 256 * 2**20


def _model_dims(params: Mapping[str, np.ndarray]) -> tuple[int, int, int] | None:
    """(H, O, bytes per element) of a parameter dict, or None when it is malformed (the
    engine then says what is wrong)."""
    if not isinstance(params, Mapping):
        return None
    w_rec, w_out = params.get("W_rec"), params.get("W_out")
    if not isinstance(w_rec, np.ndarray) or not isinstance(w_out, np.ndarray):
        return None
    if w_rec.ndim != 2 or w_out.ndim != 2:
        return None
    return int(w_rec.shape[0]), int(w_out.shape[0]), int(w_rec.dtype.itemsize)


def _require_memory(
    dims: tuple[int, int, int] | None, inputs: object, what: str, *, backward: bool = True
) -> None:
    """UsageError before a call whose buffers (the engine's (B, T+1, H) states and error
    signals, or the outputs) cannot fit in memory. Malformed arguments are left to the engine,
    which names them."""
    shape = getattr(inputs, "shape", None)
    if dims is None or shape is None or len(shape) < 3:
        return
    t, b, i = (int(d) for d in shape[-3:])
    h, o, item = dims
    need = bptt_bytes(t, b, h, i, o, item) if backward else forward_bytes(t, b, h, i, o, item)
    if need > CHECK_MEMORY_ABOVE:
        require(need, f"{what} on inputs of shape {tuple(shape)}", "use shorter or fewer sequences")


def loss_and_grads(
    params: Mapping[str, np.ndarray],
    inputs: np.ndarray,
    targets: np.ndarray,
    mask: np.ndarray,
    activation: str = "tanh",
    loss: str = "softmax_ce",
    alpha: float = 0.0,
    omega_form: str = "norm",
    time_reduction: str = "sum",
    x0: np.ndarray | None = None,
    threads: int | None = None,
) -> LossAndGrads:
    """E, Ω (eq. 9) and the gradient of E + α·Ω for one batch.

    ``inputs (T, B, I)``, ``targets (T, B)`` int64 classes or ``(T, B, O)`` values, ``mask
    (T, B)``. Ω's gradient is its immediate partial with respect to W_rec (eq. 10), weighted by
    ``alpha``; Ω's value is reported whatever α is.
    """
    _require_memory(_model_dims(params), inputs, "loss_and_grads")
    loss_v, omega, grads, _, _ = _engine.loss_and_grads(
        _params_dict(params),
        inputs,
        targets,
        mask,
        activation,
        loss,
        check_alpha(alpha),
        omega_form,
        time_reduction,
        x0,
        check_threads(threads),
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
    keys = ("activation", "loss", "alpha", "omega_form", "time_reduction", "threads")
    unknown = set(settings) - set(keys)
    if unknown:
        raise TypeError(f"unexpected settings: {', '.join(sorted(unknown))}")
    s = {
        "activation": "tanh",
        "loss": "softmax_ce",
        "alpha": 0.0,
        "omega_form": "norm",
        "time_reduction": "sum",
        "threads": None,
    } | settings
    _require_memory(_model_dims(params), inputs, "loss_grads_and_state")
    loss_v, omega, grads, _, final = _engine.loss_and_grads(
        _params_dict(params),
        inputs,
        targets,
        mask,
        cast(str, s["activation"]),  # the engine checks the type
        cast(str, s["loss"]),  # the engine checks the type
        check_alpha(s["alpha"]),
        cast(str, s["omega_form"]),  # the engine checks the type
        cast(str, s["time_reduction"]),  # the engine checks the type
        x0,
        check_threads(s["threads"]),
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
    _require_memory(_model_dims(params), inputs, "forward", backward=False)
    y, final = _engine.forward(_params_dict(params), inputs, activation, x0, check_threads(threads))
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
    ...              clip_mode="norm", clip=6.0, alpha=0.0)  # doctest: +SKIP
    >>> st = tr.step(inputs, targets, mask)                           # doctest: +SKIP
    """

    def __init__(self, params: Mapping[str, np.ndarray], **options: Unpack[TrainerOptions]) -> None:
        """``options``: :class:`~rnnstab_cli.engine_options.TrainerOptions`, each left out
        taking the engine's default. The ones a user gets wrong most (α, the thread count, the
        rules' counts) are named here when they are bad; the engine checks the rest."""
        checked = cast(TrainerOptions, {k: _check_option(k, v) for k, v in options.items()})
        gpu = options.get("device", "cpu") != "cpu"
        starting = _gpu_loader_stderr() if gpu else contextlib.nullcontext()
        with starting:
            self._native = _engine.Trainer(_params_dict(params), **checked)
        self._dims = _model_dims(params)
        self._checked: tuple[int, ...] | None = None

    def _require_memory(self, inputs: object) -> None:
        """The memory check of a batch shape, once per shape (the workspace is reused)."""
        shape = getattr(inputs, "shape", None)
        if shape is not None and tuple(shape) != self._checked:
            _require_memory(self._dims, inputs, "Trainer.step")
            self._checked = tuple(shape)

    def step(
        self,
        inputs: np.ndarray,
        targets: np.ndarray,
        mask: np.ndarray,
        x0: np.ndarray | None = None,
    ) -> StepStats:
        self._require_memory(inputs)
        return StepStats(*self._native.step(inputs, targets, mask, x0))

    def steps(self, inputs: np.ndarray, targets: np.ndarray, mask: np.ndarray) -> StepsStats:
        """K updates from arrays with a leading K axis: ``inputs (K, T, B, I)`` etc."""
        self._require_memory(inputs)
        rows = self._native.steps(inputs, targets, mask)
        cols = list(zip(*rows, strict=True)) if rows else [()] * 7
        kinds = (np.float64, np.float64, np.float64, bool, bool, np.int64, np.float64)
        return StepsStats(*(np.array(c, dtype=k) for c, k in zip(cols, kinds, strict=True)))

    @property
    def params(self) -> Params:
        return self._native.params

    @params.setter
    def params(self, params: Mapping[str, np.ndarray]) -> None:
        new = _params_dict(params)
        _check_like(new, self._native.params, "params")
        self._native.set_params(new)

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
    def alpha(self) -> float:
        return self._native.alpha

    @alpha.setter
    def alpha(self, value: float) -> None:
        self._native.alpha = check_alpha(value)

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
        new = _params_dict(state)
        current = self._native.optimizer_state()
        if current is not None:
            _check_like(new, current, "optimizer state")
        self._native.set_optimizer_state(new)

    def clip_state(self) -> np.ndarray:
        """The clipping rule's state (the norms it has seen, its moving statistics) as float64
        numbers, for a checkpoint: a resumed run given it back clips exactly as before."""
        return self._native.clip_state()

    def set_clip_state(self, state: np.ndarray) -> None:
        """Restore :meth:`clip_state`'s output; ValueError when it belongs to another rule."""
        self._native.set_clip_state(np.ascontiguousarray(state, dtype=np.float64))

    def final_state(self) -> np.ndarray:
        """x_T ``(B, H)`` of the last step."""
        return self._native.final_state()

    def reset_state(self) -> None:
        """Forget the carried state (with ``carry_state=True``)."""
        self._native.reset_state()

    def error_signal_profile(self) -> np.ndarray:
        """Mean ‖∂E/∂x_t‖ over the batch for t = 0..T of the last step."""
        return self._native.error_signal_profile()
