"""The instruction-set cap ($RNNSTAB_SIMD): the engine runs the kernels it names, they compute
the same model, and a name the engine does not know is a one-line usage error
(rust/engine/src/kernels.rs::simd_level, rnnstab_cli/engine.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rnnstab_cli.cli.common import EXIT_USAGE

_FLAGS = next(
    (line.split(":", 1)[1].split() for line in Path("/proc/cpuinfo").read_text().splitlines()
     if line.startswith("flags")),
    [],
) if Path("/proc/cpuinfo").exists() else []  # fmt: skip
DETECTED = (
    "avx512" if {"avx512f", "avx512vl"} <= set(_FLAGS)
    else "avx2" if {"avx2", "fma"} <= set(_FLAGS) else "portable"
)  # fmt: skip
ORDER = ("portable", "avx2", "avx512")

#: One f64 forward/backward pass on fixed data; prints the loss and the gradient norms.
_PROBE = """
import json, numpy as np
from rnnstab_cli import engine
p = engine.init_params(n_in=6, n_hidden=20, n_out=4, init="normal", scale=0.3, seed=1,
                       dtype="float64")
rng = np.random.default_rng(0)
x = rng.normal(size=(30, 5, 6))
t = rng.integers(0, 4, (30, 5)).astype(np.int64)
m = np.zeros((30, 5)); m[-1] = 1
r = engine.loss_and_grads(p, x, t, m, activation="tanh", loss="softmax_ce", alpha=2.0)
print(json.dumps({"level": engine.simd_level(), "loss": r.loss, "omega": r.omega,
                  "grads": {k: v.tolist() for k, v in r.grads.items()}}))
"""


def _probe(level: str | None) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "RNNSTAB_SIMD"}
    if level is not None:
        env["RNNSTAB_SIMD"] = level
    out = subprocess.run(
        [sys.executable, "-c", _PROBE], env=env, capture_output=True, text=True, check=True
    ).stdout
    return json.loads(out)


def test_default_is_the_cpus_best() -> None:
    assert _probe(None)["level"] == DETECTED


@pytest.mark.parametrize("cap", ["portable", "avx2"])
def test_a_cap_selects_a_lower_instruction_set_with_the_same_results(cap: str) -> None:
    best, capped = _probe(None), _probe(cap)
    # A cap never raises the level above what the CPU has.
    assert capped["level"] == min(cap, DETECTED, key=ORDER.index)
    # f64 throughout: the kernels differ only in whether a·b + c is fused (one rounding or
    # two) and in the order of a few partial sums, each ≤ 1 ulp (1.1e-16 relative) per
    # operation, over 30 steps of 20-term sums: far below 1e-10 relative.
    assert capped["loss"] == pytest.approx(best["loss"], rel=1e-10)
    assert capped["omega"] == pytest.approx(best["omega"], rel=1e-10, abs=1e-14)
    for name, g in best["grads"].items():
        np.testing.assert_allclose(capped["grads"][name], g, rtol=1e-9, atol=1e-13)


def test_an_unknown_instruction_set_is_a_usage_error() -> None:
    env = {**os.environ, "RNNSTAB_SIMD": "sse9"}
    proc = subprocess.run(
        [sys.executable, "-c", "import sys; from rnnstab_cli.cli import main; sys.exit(main())",
         "info"],
        env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == EXIT_USAGE
    assert proc.stderr.strip().splitlines() == [
        "Error: RNNSTAB_SIMD='sse9' is not an instruction set; use one of portable, avx2, avx512"
    ]
