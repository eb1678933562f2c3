"""The engine's vocabulary: the names it accepts for each choice and the constants its rules
use, read from the native module itself (``rnnstab_cli._engine``, whose error messages quote
the same lists) so that no list is written twice.

Importable without numpy: the settings' declarations and the command line's help read these
names, and ``rnnstab --help`` must answer at once.
"""

from __future__ import annotations

from typing import Final

from rnnstab_cli import _engine

#: γ, the bound on |σ'| of §2.1, per activation the engine has (its names, in its order).
GAMMA: Final[dict[str, float]] = dict(_engine.ACTIVATION_GAMMA)
ACTIVATIONS: Final[tuple[str, ...]] = tuple(GAMMA)
LOSSES: Final[tuple[str, ...]] = _engine.LOSSES
OPTIMIZERS: Final[tuple[str, ...]] = _engine.OPTIMIZERS
#: Clipping rules (rnnstab_engine::clip_rules): Algorithm 1 ("norm"), element-wise ("value"),
#: and the adaptive ones, each defined in the engine's clip_rules module and in the README.
CLIP_MODES: Final[tuple[str, ...]] = _engine.CLIP_MODES
#: What a NaN/inf gradient does (rnnstab_engine::NonFinitePolicy).
NONFINITE_POLICIES: Final[tuple[str, ...]] = _engine.NONFINITE_POLICIES
#: The initialisations :func:`rnnstab_cli.engine.init_params` draws (numpy-side: the engine
#: takes parameters, not an initialisation).
INITS: Final[tuple[str, ...]] = ("normal", "sparse", "identity", "orthogonal")
#: The most engine threads a trainer or a call may use (the engine refuses more).
MAX_THREADS: Final[int] = int(_engine.MAX_THREADS)
