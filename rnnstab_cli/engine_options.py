"""The keyword options of the engine's trainer, declared once for the native class
(``rnnstab_cli/_engine.pyi``) and the checking wrapper around it
(:class:`rnnstab_cli.engine.Trainer`): their names and types. Their defaults are the engine's
own, in its pyo3 signature (rust/python/src/trainer.rs); a config passes them all
(:func:`rnnstab_cli.training.settings.engine_arguments`), so a run never meets them.

A new option is one line here and one in that signature; tests/test_engine_stub.py checks that
the two name the same options in the same order, with defaults of these types.
"""

from __future__ import annotations

from typing import TypedDict


class TrainerOptions(TypedDict, total=False):
    activation: str
    loss: str
    optimizer: str
    lr: float
    clip_mode: str
    clip: float
    alpha: float
    omega_form: str
    time_reduction: str
    momentum: float
    rho: float
    eps: float
    nonfinite: str
    threads: int | None
    carry_state: bool
    train_biases: bool
    device: str
    clip_window: int
    clip_factor: float
    clip_percentile: float
    clip_z: float
    clip_beta: float
    clip_warmup: int
    clip_lambda: float
