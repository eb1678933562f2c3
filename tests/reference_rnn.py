"""An independent, deliberately plain numpy implementation of the paper's RNN (eq. 2), its
loss, BPTT (eqs. 3-5) and Ω (eq. 9), used as the reference the engine is tested against.

Loops over examples and steps, no tricks: slow and obviously right. Shapes follow the engine:
inputs (T, B, I), class targets (T, B) or value targets (T, B, O), mask (T, B).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

OMEGA_MIN_SIGNAL = 1e-20


def act(name: str, x: np.ndarray) -> np.ndarray:
    if name == "tanh":
        return np.tanh(x)
    if name == "sigmoid":
        return 1.0 / (1.0 + np.exp(-x))
    if name == "relu":
        return np.maximum(x, 0.0)
    return x.copy()


def act_prime(name: str, x: np.ndarray) -> np.ndarray:
    if name == "tanh":
        return 1.0 - np.tanh(x) ** 2
    if name == "sigmoid":
        s = 1.0 / (1.0 + np.exp(-x))
        return s * (1.0 - s)
    if name == "relu":
        return (x > 0).astype(float)
    return np.ones_like(x)


def step_loss(loss: str, y: np.ndarray, target: np.ndarray | int) -> tuple[float, np.ndarray]:
    """ℓ and ∂ℓ/∂y for one (step, example)."""
    if loss == "softmax_ce":
        z = y - y.max()
        p = np.exp(z) / np.exp(z).sum()
        d = p.copy()
        d[int(target)] -= 1.0
        return float(-np.log(p[int(target)])), d
    if loss == "mse":
        e = y - target
        return float(e @ e), 2.0 * e
    p = 1.0 / (1.0 + np.exp(-y))
    ll = np.sum(np.logaddexp(0.0, y) - target * y)
    return float(ll), p - target


@dataclass
class Trace:
    loss: float
    xs: np.ndarray  # (T+1, B, H) pre-activation states x_0..x_T
    gs: np.ndarray  # (T+1, B, H) g_t = ∂E/∂x_t; row 0 is ∂E/∂x_0
    omega: float
    pairs: list[tuple[int, int]]  # the (k, b) pairs that enter Ω


def run(
    params: dict[str, np.ndarray],
    inputs: np.ndarray,
    targets: np.ndarray,
    mask: np.ndarray,
    activation: str,
    loss: str,
    time_reduction: str = "sum",
    omega_form: str = "norm",
    x0: np.ndarray | None = None,
) -> Trace:
    w, w_in, b = params["W_rec"], params["W_in"], params["b"]
    w_out, b_out = params["W_out"], params["b_out"]
    steps, batch, _ = inputs.shape
    h = w.shape[0]
    xs = np.zeros((steps + 1, batch, h))
    if "x0" in params:
        xs[0] = params["x0"]
    elif x0 is not None:
        xs[0] = x0
    for t in range(1, steps + 1):
        for e in range(batch):
            xs[t, e] = w @ act(activation, xs[t - 1, e]) + w_in @ inputs[t - 1, e] + b
    total = 0.0
    dys = np.zeros((steps + 1, batch, w_out.shape[0]))
    for e in range(batch):
        scored = mask[:, e].sum()
        scale = 1.0 / batch
        if time_reduction == "mean":
            scale = scale / scored if scored > 0 else 0.0
        for t in range(1, steps + 1):
            m = mask[t - 1, e]
            if m == 0:
                continue
            y = w_out @ act(activation, xs[t, e]) + b_out
            tgt = targets[t - 1, e]
            ll, d = step_loss(loss, y, tgt)
            total += scale * m * ll
            dys[t, e] = scale * m * d
    gs = np.zeros_like(xs)
    for e in range(batch):
        nxt = np.zeros(h)
        for t in range(steps, -1, -1):
            dh = w_out.T @ dys[t, e] + w.T @ nxt if t > 0 else w.T @ nxt
            gs[t, e] = dh * act_prime(activation, xs[t, e])
            nxt = gs[t, e]
    terms, pairs = [], []
    for e in range(batch):
        for k in range(steps):
            a = gs[k + 1, e]
            a2 = float(a @ a)
            if a2 < OMEGA_MIN_SIGNAL:
                continue
            v = (w.T @ a) * act_prime(activation, xs[k, e])
            ratio2 = float(v @ v) / a2
            terms.append(
                (np.sqrt(ratio2) - 1.0) ** 2 if omega_form == "norm" else (ratio2 - 1.0) ** 2
            )
            pairs.append((k, e))
    omega = float(np.mean(terms)) if terms else 0.0
    return Trace(total, xs, gs, omega, pairs)


def omega_frozen(w: np.ndarray, trace: Trace, activation: str, omega_form: str = "norm") -> float:
    """Ω of eq. (9) as a function of W_rec alone, with g_{k+1} and x_k held at the values in
    ``trace``: the quantity whose derivative eq. (10) defines."""
    terms = []
    for k, e in trace.pairs:
        a = trace.gs[k + 1, e]
        v = (w.T @ a) * act_prime(activation, trace.xs[k, e])
        ratio2 = float(v @ v) / float(a @ a)
        terms.append((np.sqrt(ratio2) - 1.0) ** 2 if omega_form == "norm" else (ratio2 - 1.0) ** 2)
    return float(np.mean(terms)) if terms else 0.0
