# Types of the native module built from rust/python (pyo3): what the type checker sees of it.
# Keep in step with rust/python/src/{lib,trainer,gpu}.rs; tests/test_engine_stub.py checks that
# every name here exists in the built module with the same parameters.

from typing import Any

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[Any]
Params = dict[str, npt.NDArray[np.floating[Any]]]
#: loss, Ω, ‖∇‖ before clipping, clipped, skipped, Ω pairs, the clipping threshold in force
#: (NaN when none bounds the norm)
Stats = tuple[float, float, float, bool, bool, int, float]

ACTIVATION_GAMMA: dict[str, float]
CLIP_MODES: tuple[str, ...]
NONFINITE_POLICIES: tuple[str, ...]
HAS_GPU: bool
LOSSES: tuple[str, ...]
OPTIMIZERS: tuple[str, ...]
MAX_THREADS: int
SHRINK_FLOOR: float
__version__: str

def loss_and_grads(
    params: Params,
    inputs: Array,
    targets: Array,
    mask: Array,
    activation: str,
    loss: str,
    alpha: float,
    omega_form: str,
    time_reduction: str,
    x0: Array | None = None,
    threads: int | None = None,
    full_length: bool = False,
) -> tuple[float, float, Params, int, Array]: ...
def forward(
    params: Params,
    inputs: Array,
    activation: str,
    x0: Array | None = None,
    threads: int | None = None,
) -> tuple[Array, Array]: ...
def clip_norm(grads: Params, threshold: float) -> tuple[Params, float]: ...
def clip_value(grads: Params, threshold: float) -> Params: ...
def simd_level() -> str: ...
def gpu_adapters() -> list[tuple[str, str, str, str]]: ...

class Trainer:
    def __init__(
        self,
        params: Params,
        *,
        activation: str = "tanh",
        loss: str = "softmax_ce",
        optimizer: str = "sgd",
        lr: float = 0.01,
        clip_mode: str = "norm",
        clip: float = 6.0,
        alpha: float = 0.0,
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
        clip_window: int = 100,
        clip_factor: float = 2.0,
        clip_percentile: float = 10.0,
        clip_z: float = 2.5,
        clip_beta: float = 0.97,
        clip_warmup: int = 25,
        clip_lambda: float = 0.01,
    ) -> None: ...
    def step(
        self, inputs: Array, targets: Array, mask: Array, x0: Array | None = None
    ) -> Stats: ...
    def steps(self, inputs: Array, targets: Array, mask: Array) -> list[Stats]: ...
    @property
    def params(self) -> Params: ...
    def set_params(self, params: Params) -> None: ...
    @property
    def grads(self) -> Params: ...
    @property
    def lr(self) -> float: ...
    @lr.setter
    def lr(self, lr: float) -> None: ...
    @property
    def alpha(self) -> float: ...
    @alpha.setter
    def alpha(self, alpha: float) -> None: ...
    def optimizer_state(self) -> Params | None: ...
    def set_optimizer_state(self, state: Params) -> None: ...
    def clip_state(self) -> Array: ...
    def set_clip_state(self, state: Array) -> None: ...
    def final_state(self) -> Array: ...
    def reset_state(self) -> None: ...
    def error_signal_profile(self) -> Array: ...
    @property
    def threads(self) -> int: ...
    @property
    def dtype(self) -> str: ...
    @property
    def device(self) -> str: ...
