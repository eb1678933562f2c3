"""The GPU backend through the Python API and the CLI, against the CPU engine.

These run wherever wgpu finds an adapter — in CI, Mesa's software Vulkan (lavapipe), which
scripts/setup.sh installs. Without one they skip with the reason, unless RNNSTAB_REQUIRE_GPU=1
(CI sets it), in which case the missing adapter is a failure, never a silent skip.

Tolerance: the GPU computes in f32 with its own reduction order (per-parameter sums over T·B
rows, per-row dot products in invocation order), the CPU in f32 with its own; after one update
each parameter differs by a few f32 ulps of the update's size, so 1e-5 absolute on O(0.1)
weights, and loss curves agree to 1e-3 relative over short runs (the rust/gpu tests justify
the per-kernel bounds in detail).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from rnnstab_cli import engine
from rnnstab_cli.cli import main

REQUIRE = os.environ.get("RNNSTAB_REQUIRE_GPU") == "1"


def _adapter_reason() -> str | None:
    if not engine.has_gpu_backend():
        return "this build has no GPU backend"
    if not engine.gpu_adapters():
        return "wgpu sees no GPU adapter (install mesa-vulkan-drivers for lavapipe)"
    return None


_REASON = _adapter_reason()
if _REASON is not None and REQUIRE:
    raise RuntimeError(f"RNNSTAB_REQUIRE_GPU=1 but {_REASON}")
pytestmark = pytest.mark.skipif(_REASON is not None, reason=_REASON or "")


def batches(k: int, t: int = 12, b: int = 6, i: int = 3, o: int = 4, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, (k, t, b, i)).astype(np.float32)
    y = rng.integers(0, o, (k, t, b)).astype(np.int64)
    m = np.zeros((k, t, b), np.float32)
    m[:, -1] = 1
    return x, y, m


def trainers(**kw: object) -> tuple[engine.Trainer, engine.Trainer]:
    params = engine.init_params(3, 16, 4, scale=0.3, seed=1, dtype="float32")
    cfg = {"lr": 0.05, "clip_mode": "norm", "clip": 1.0, "alpha": 1.0} | kw
    return engine.Trainer(params, device="cpu", **cfg), engine.Trainer(params, device="gpu", **cfg)


def test_the_gpu_trainer_reports_its_adapter() -> None:
    _, gpu = trainers()
    assert gpu.device == engine.gpu_adapters()[0]["name"] or gpu.device in {
        a["name"] for a in engine.gpu_adapters()
    }
    assert gpu.dtype == "float32"


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "rmsprop"])
def test_one_step_matches_the_cpu(optimizer: str) -> None:
    cpu, gpu = trainers(optimizer=optimizer)
    x, y, m = batches(1)
    sc, sg = cpu.step(x[0], y[0], m[0]), gpu.step(x[0], y[0], m[0])
    assert sg.loss == pytest.approx(sc.loss, rel=1e-5)
    assert sg.omega == pytest.approx(sc.omega, rel=1e-4, abs=1e-6)
    assert sg.grad_norm == pytest.approx(sc.grad_norm, rel=1e-4)
    assert (sg.clipped, sg.skipped, sg.omega_pairs) == (sc.clipped, sc.skipped, sc.omega_pairs)
    for k, v in cpu.params.items():
        np.testing.assert_allclose(gpu.params[k], v, atol=1e-5, err_msg=k)


def test_a_short_training_run_follows_the_cpu_loss_curve() -> None:
    cpu, gpu = trainers()
    x, y, m = batches(1, seed=3)
    # One batch, 25 times: the loss must fall, so the comparison is of a run that learns.
    x, y, m = (np.repeat(a, 25, axis=0) for a in (x, y, m))
    lc = cpu.steps(x, y, m).loss
    lg = gpu.steps(x, y, m).loss
    np.testing.assert_allclose(lg, lc, rtol=1e-3)
    assert lc[-1] < lc[0]  # it is training, not standing still


@pytest.mark.parametrize("rule", ["auto", "percentile", "zscore", "skip", "agc"])
def test_every_adaptive_clipping_rule_follows_the_cpu(rule: str) -> None:
    """The host's rule state feeds the GPU the same threshold as the CPU step by step; skip
    and AGC act in the update kernel as the CPU does."""
    rules = {"clip_window": 2, "clip_factor": 1.05, "clip_percentile": 40.0, "clip_z": 0.5,
             "clip_beta": 0.5, "clip_warmup": 2, "clip_lambda": 0.05}  # fmt: skip
    cpu, gpu = trainers(clip_mode=rule, optimizer="momentum", lr=0.2, **rules)
    x, y, m = batches(8, seed=5)
    acted = 0
    for k in range(8):
        sc, sg = cpu.step(x[k], y[k], m[k]), gpu.step(x[k], y[k], m[k])
        if np.isnan(sc.clip_threshold):
            assert np.isnan(sg.clip_threshold)
        else:
            assert sg.clip_threshold == pytest.approx(sc.clip_threshold, rel=1e-4)
        assert (sg.clipped, sg.skipped) == (sc.clipped, sc.skipped), f"step {k}"
        acted += int(sc.clipped or sc.skipped)
        for name, v in cpu.params.items():
            np.testing.assert_allclose(gpu.params[name], v, atol=1e-5, err_msg=f"{name} {k}")
    assert acted > 0
    np.testing.assert_allclose(gpu.clip_state(), cpu.clip_state(), rtol=1e-4)


def test_unsupported_requests_are_clear_errors() -> None:
    p64 = engine.init_params(3, 8, 4, dtype="float64")
    with pytest.raises(ValueError, match="--device cpu"):
        engine.Trainer(p64, device="gpu")
    p32 = engine.init_params(3, 8, 4, dtype="float32")
    with pytest.raises(ValueError, match="--device cpu"):
        engine.Trainer(p32, device="gpu", carry_state=True)
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        engine.Trainer(p32, device="tpu")


def test_train_on_the_gpu_from_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "train",
            "--task",
            "temporal-order",
            "--len",
            "10",
            "--hidden",
            "8",
            "--batch",
            "4",
            "--max-updates",
            "20",
            "--eval-every",
            "10",
            "--set",
            "eval_sequences=100",
            "--set",
            "screen_sequences=0",
            "--device",
            "gpu",
            "--json",
            "-q",
        ]
    )
    assert code == 10
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert lines[-1]["updates"] == 20
    assert main(["info", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["gpu_backend"] and info["gpu_adapters"]


def test_float64_on_the_gpu_is_a_one_line_cli_error(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "train",
            "--task",
            "temporal-order",
            "--len",
            "10",
            "--device",
            "gpu",
            "--dtype",
            "float64",
            "--max-updates",
            "5",
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "--device cpu" in err[0]


def test_benchmark_has_a_gpu_row() -> None:
    from rnnstab_cli.bench import BenchConfig, run_benchmark

    rows, facts = run_benchmark(
        [BenchConfig(8, 2, 4, 10)], seconds=0.05, threads=1, peers=False, sweep_row=False, gpu=True
    )
    gpu = [r for r in rows if r.implementation == "rnnstab GPU"]
    assert len(gpu) == 1 and gpu[0].updates_per_s > 0
    assert facts["gpu"] and str(facts["gpu"]) in gpu[0].note


def test_the_vulkan_loaders_noise_stays_off_stderr() -> None:
    # libwayland-client, loaded by Mesa's Vulkan drivers, prints a line when XDG_RUNTIME_DIR is
    # unset (every headless machine); a fresh process, since the loader runs once per process.
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "XDG_RUNTIME_DIR"}
    for argv in (
        ["info"],
        [
            "train",
            "--task",
            "temporal-order",
            "--len",
            "12",
            "--hidden",
            "4",
            "--max-updates",
            "2",
            "--eval-every",
            "2",
            "--device",
            "gpu",
            "--set",
            "eval_sequences=10",
            "--set",
            "screen_sequences=10",
            "-q",
        ],
    ):
        run = subprocess.run(
            [
                sys.executable,
                "-c",
                "import sys; from rnnstab_cli.cli import main; sys.exit(main())",
                *argv,
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert run.returncode in (0, 10), run.stderr
        assert "XDG_RUNTIME_DIR" not in run.stderr, run.stderr
