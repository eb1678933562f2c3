"""``$RNNSTAB_SIMD``, the variable that caps the engine's instruction set, checked without
loading the engine (the command line checks it before every command, ``--help`` included)."""

from __future__ import annotations

import os
from typing import Final

from rnnstab_cli.errors import UsageError

#: The instruction sets the engine's kernels exist for, least capable first, and the variable
#: that caps the one they use (to measure on one machine what a machine without AVX-512 gets).
SIMD_LEVELS: Final[tuple[str, ...]] = ("portable", "avx2", "avx512")
SIMD_ENV: Final[str] = "RNNSTAB_SIMD"


def check_simd_env() -> None:
    """UsageError when ``$RNNSTAB_SIMD`` names no instruction set (the engine would ignore it)."""
    value = os.environ.get(SIMD_ENV, "").strip()
    if value and value not in SIMD_LEVELS:
        raise UsageError(
            f"{SIMD_ENV}={value!r} is not an instruction set; use one of {', '.join(SIMD_LEVELS)}"
        )


#: The settings that cap the peers' libraries at a capped level of the engine (OpenBLAS for
#: numpy and the ceiling, MKL and oneDNN for PyTorch), so that `RNNSTAB_SIMD=avx2 rnnstab bench`
#: compares what a machine without AVX-512 gets on both sides.
PEER_CAPS: Final[dict[str, dict[str, str]]] = {
    "avx2": {
        "OPENBLAS_CORETYPE": "Haswell",
        "MKL_ENABLE_INSTRUCTIONS": "AVX2",
        "ONEDNN_MAX_CPU_ISA": "AVX2",
    },
    "portable": {
        "OPENBLAS_CORETYPE": "Nehalem",
        "MKL_ENABLE_INSTRUCTIONS": "SSE4_2",
        "ONEDNN_MAX_CPU_ISA": "SSE41",
    },
}


def peer_caps() -> dict[str, str]:
    """The peer libraries' settings for the level ``$RNNSTAB_SIMD`` caps the engine at (none
    when it is not set); they must be in the environment before those libraries load."""
    return dict(PEER_CAPS.get(os.environ.get(SIMD_ENV, "").strip(), {}))
