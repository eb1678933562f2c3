"""The implementations rnnstab is measured against, each doing the same training update:
forward over T steps of a tanh RNN, the cost (softmax cross-entropy at the last step, or at
every step, or a sigmoid cross-entropy per output at every step), BPTT, global-norm clipping,
one SGD step."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Update = Callable[[], None]


class NumpyBptt:
    """A batched numpy BPTT written the way a careful researcher would: matrix products over the
    batch, states kept for the backward pass, the W_rec gradient as one product at the end.
    Calling it performs one update; ``params`` holds the current weights and ``loss`` the last
    update's cost."""

    def __init__(self, h: int, i: int, o: int, b: int, t: int, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        f32 = np.float32
        self.params = {
            "W_rec": rng.normal(0, 0.1, (h, h)).astype(f32),
            "W_in": rng.normal(0, 0.1, (h, i)).astype(f32),
            "b": np.zeros(h, f32),
            "W_out": rng.normal(0, 0.1, (o, h)).astype(f32),
            "b_out": np.zeros(o, f32),
        }
        self.x = rng.normal(0, 1, (t, b, i)).astype(f32)  # (T, B, I)
        self.y = rng.integers(0, o, b)
        self.hs = np.zeros((t + 1, b, h), f32)  # (T+1, B, H)
        self.gs = np.zeros((t, b, h), f32)  # (T, B, H)
        self.lr, self.clip = 0.001, 6.0
        self.loss = float("nan")

    def __call__(self) -> None:
        p, x, hs, gs = self.params, self.x, self.hs, self.gs
        t, b, i = x.shape
        h = hs.shape[2]
        xin = (x.reshape(t * b, i) @ p["W_in"].T).reshape(t, b, h) + p["b"]
        for s in range(t):
            hs[s + 1] = np.tanh(hs[s] @ p["W_rec"].T + xin[s])
        logits = hs[t] @ p["W_out"].T + p["b_out"]
        z = logits - logits.max(axis=1, keepdims=True)
        prob = np.exp(z)
        prob /= prob.sum(axis=1, keepdims=True)
        self.loss = float(-np.log(prob[np.arange(b), self.y]).mean())
        prob[np.arange(b), self.y] -= 1
        dy = prob / b
        grads = {"W_out": dy.T @ hs[t], "b_out": dy.sum(axis=0)}
        g = (dy @ p["W_out"]) * (1 - hs[t] ** 2)
        for s in range(t - 1, -1, -1):
            gs[s] = g
            if s:
                g = (g @ p["W_rec"]) * (1 - hs[s] ** 2)
        flat_g = gs.reshape(t * b, h)
        grads["W_rec"] = flat_g.T @ hs[:t].reshape(t * b, h)
        grads["W_in"] = flat_g.T @ x.reshape(t * b, i)
        grads["b"] = flat_g.sum(axis=0)
        norm = float(np.sqrt(sum(float(np.sum(q * q)) for q in grads.values())))
        scale = min(1.0, self.clip / norm) if norm > 0 else 1.0
        for k, gk in grads.items():
            p[k] = p[k] - np.float32(self.lr * scale) * gk


def numpy_update(h: int, i: int, o: int, b: int, t: int, seed: int = 0) -> Update:
    return NumpyBptt(h, i, o, b, t, seed)


def torch_update(
    h: int,
    i: int,
    o: int,
    b: int,
    t: int,
    threads: int,
    seed: int = 0,
    scoring: str = "last",
    carry: bool = False,
) -> Update | None:
    """PyTorch's nn.RNN on the CPU, or None when torch is not installed. ``scoring`` as the
    engine's benchmark names it: ``last`` (cross-entropy at the last step), ``every``
    (cross-entropy at every step, averaged) or ``bce`` (a sigmoid cross-entropy per output at
    every step); with ``carry`` the final state starts the next update, detached as truncated
    BPTT does."""
    try:
        import torch
    except ImportError:
        return None
    torch.manual_seed(seed)
    rnn = torch.nn.RNN(i, h, nonlinearity="tanh")
    head = torch.nn.Linear(h, o)
    params = list(rnn.parameters()) + list(head.parameters())
    opt = torch.optim.SGD(params, lr=0.001)
    x = torch.randn(t, b, i)
    f = torch.nn.functional
    if scoring == "bce":
        y = (torch.rand(t, b, o) < 0.1).float()
    else:
        y = torch.randint(0, o, (t, b) if scoring == "every" else (b,))
    state: list[torch.Tensor | None] = [None]

    def cost(out: torch.Tensor) -> torch.Tensor:
        if scoring == "last":
            return f.cross_entropy(head(out[-1]), y)
        logits = head(out)
        if scoring == "bce":
            return f.binary_cross_entropy_with_logits(logits, y)
        return f.cross_entropy(logits.reshape(t * b, o), y.reshape(t * b))

    def update() -> None:
        # Subnormals flushed to zero, as the engine does: a tanh RNN's vanishing error signal
        # is full of them, and without this the comparison would time the CPU's slow path for
        # subnormal arithmetic (3× slower here at the paper's sizes) rather than the framework.
        # Like the engine, only for the duration of the update: the setting is the thread's.
        torch.set_flush_denormal(True)
        # The thread count is torch's global setting: set it for each update, since the
        # benchmark times updates made with different counts in turns.
        torch.set_num_threads(threads)
        try:
            out, last = rnn(x, state[0])
            loss = cost(out)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 6.0)
            opt.step()
            if carry:
                state[0] = last.detach()
        finally:
            torch.set_flush_denormal(False)

    return update


def torch_version() -> str | None:
    try:
        import torch
    except ImportError:
        return None
    return str(torch.__version__)
