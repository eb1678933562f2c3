"""Timing: updates per second of each implementation on each configuration, the matrix-product
ceiling, and the throughput of independent runs on all cores.

FLOPs per update are counted as 6·T·B·(H² + H·I): the forward product and the two backward
products (error signal and weight gradient) of the recurrent and input matrices, as the
project's performance targets count them.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np

from rnnstab_cli import engine
from rnnstab_cli.bench.peers import numpy_update, torch_update, torch_version

N_OUT = 4


@dataclass(frozen=True)
class BenchConfig:
    hidden: int
    inputs: int
    batch: int
    steps: int

    @property
    def flops(self) -> float:
        h, i = self.hidden, self.inputs
        return 6.0 * self.steps * self.batch * (h * h + h * i)

    def label(self) -> str:
        return f"H={self.hidden} I={self.inputs} B={self.batch} T={self.steps}"

    @classmethod
    def parse(cls, text: str) -> BenchConfig:
        """``H,I,B,T``."""
        parts = text.split(",")
        if len(parts) != 4 or not all(p.strip().isdigit() and int(p) > 0 for p in parts):
            from rnnstab_cli.errors import UsageError

            raise UsageError(f"--config takes H,I,B,T as four positive integers, got {text!r}")
        h, i, b, t = (int(p) for p in parts)
        return cls(h, i, b, t)


#: The configurations of the performance targets: the paper's temporal order and three larger.
PAPER_CONFIGS = (
    BenchConfig(50, 6, 20, 200),
    BenchConfig(100, 6, 64, 200),
    BenchConfig(256, 64, 64, 100),
    BenchConfig(512, 128, 128, 100),
)


@dataclass
class BenchRow:
    config: str
    implementation: str
    threads: int
    updates_per_s: float
    gflops: float
    pct_of_ceiling: float | None = None
    vs_numpy: float | None = None
    vs_torch: float | None = None
    note: str = ""

    def to_json(self) -> dict[str, object]:
        return asdict(self)


def rate(update: Callable[[], None], seconds: float, warmup: int = 2) -> float:
    """Updates per second of ``update``, timed for at least ``seconds`` after a warm-up."""
    for _ in range(warmup):
        update()
    n, start = 0, time.perf_counter()
    while True:
        update()
        n += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds and n >= 3:
            return n / elapsed


def engine_update(
    cfg: BenchConfig, threads: int, alpha: float, chunk: int = 20
) -> Callable[[], None]:
    """``chunk`` updates per call through Trainer.steps, as the training loop drives it; the
    returned callable reports one update per call by dividing afterwards (see engine_rate)."""
    rng = np.random.default_rng(0)
    params = engine.init_params(cfg.inputs, cfg.hidden, N_OUT, scale=0.1, dtype="float32")
    tr = engine.Trainer(
        params,
        activation="tanh",
        loss="softmax_ce",
        lr=0.001,
        clip="norm",
        clip_threshold=6.0,
        omega_alpha=alpha,
        threads=threads,
    )
    x = rng.normal(0, 1, (chunk, cfg.steps, cfg.batch, cfg.inputs)).astype(np.float32)
    y = rng.integers(0, N_OUT, (chunk, cfg.steps, cfg.batch)).astype(np.int64)
    m = np.zeros((chunk, cfg.steps, cfg.batch), np.float32)
    m[:, -1] = 1.0

    def update() -> None:
        tr.steps(x, y, m)

    return update


def engine_rate(
    cfg: BenchConfig, threads: int, alpha: float, seconds: float, chunk: int = 20
) -> float:
    return chunk * rate(engine_update(cfg, threads, alpha, chunk), seconds, warmup=1)


def _solo_worker(args: tuple[BenchConfig, float]) -> float:
    cfg, seconds = args
    return engine_rate(cfg, 1, 0.0, seconds)


def independent_runs_rate(cfg: BenchConfig, processes: int, seconds: float) -> float:
    """Total updates/s of ``processes`` independent single-threaded runs at once, one process
    each: what a sweep gets from the machine."""
    ctx = mp.get_context("spawn")
    with ctx.Pool(processes) as pool:
        return float(sum(pool.map(_solo_worker, [(cfg, seconds)] * processes)))


_CEILING_SNIPPET = """
import time, json, numpy as np
n = 3072
a = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
b = np.random.default_rng(1).standard_normal((n, n), dtype=np.float32)
a @ b
best = float("inf")
for _ in range(4):
    s = time.perf_counter()
    a @ b
    best = min(best, time.perf_counter() - s)
print(json.dumps({"gflops": 2 * n**3 / best / 1e9}))
"""


def matmul_ceiling() -> float:
    """The machine's practical f32 ceiling: numpy's (OpenBLAS's) large matrix product on all
    cores. Measured in a child process with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset, since
    some machines set them to an older core type, which would understate the ceiling."""
    env = {
        k: v for k, v in os.environ.items() if k not in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
    }
    out = subprocess.run(
        [sys.executable, "-c", _CEILING_SNIPPET],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    return float(json.loads(out.stdout)["gflops"])


def run_benchmark(
    configs: list[BenchConfig],
    *,
    seconds: float = 1.5,
    threads: int | None = None,
    peers: bool = True,
    sweep_row: bool = True,
    on_row: Callable[[BenchRow], None] | None = None,
) -> tuple[list[BenchRow], dict[str, object]]:
    """Measures every configuration; returns the rows and facts about the run (ceiling, cores,
    peer versions)."""
    cores = os.cpu_count() or 1
    threads = threads or cores
    ceiling = matmul_ceiling()
    facts: dict[str, object] = {
        "ceiling_gflops": ceiling,
        "cores": cores,
        "numpy": np.__version__,
        "torch": torch_version(),
    }
    rows: list[BenchRow] = []

    def add(row: BenchRow) -> None:
        rows.append(row)
        if on_row is not None:
            on_row(row)

    for cfg in configs:
        for row in _measure_config(cfg, seconds, threads, cores, ceiling, peers, sweep_row):
            add(row)
    return rows, facts


def _measure_config(
    cfg: BenchConfig,
    seconds: float,
    threads: int,
    cores: int,
    ceiling: float,
    peers: bool,
    sweep_row: bool,
) -> list[BenchRow]:
    ref_np = (
        rate(numpy_update(cfg.hidden, cfg.inputs, N_OUT, cfg.batch, cfg.steps), seconds)
        if peers
        else None
    )
    tu = (
        torch_update(cfg.hidden, cfg.inputs, N_OUT, cfg.batch, cfg.steps, threads)
        if peers
        else None
    )
    ref_torch = rate(tu, seconds) if tu is not None else None
    gf = cfg.flops / 1e9

    def row(impl: str, thr: int, ups: float, note: str = "") -> BenchRow:
        return BenchRow(
            cfg.label(),
            impl,
            thr,
            ups,
            ups * gf,
            100.0 * ups * gf / ceiling,
            ups / ref_np if ref_np else None,
            ups / ref_torch if ref_torch else None,
            note,
        )

    rows = []
    base = engine_rate(cfg, threads, 0.0, seconds)
    rows.append(row("rnnstab", threads, base, "SGD-C"))
    if threads > 1:
        one = engine_rate(cfg, 1, 0.0, seconds)
        rows.append(row("rnnstab", 1, one, f"SGD-C; {threads} threads give {base / one:.2f}×"))
    with_omega = engine_rate(cfg, threads, 2.0, seconds)
    omega_cost = 100 * (base / with_omega - 1)
    rows.append(row("rnnstab", threads, with_omega, f"SGD-CR: Ω costs {omega_cost:+.1f}%"))
    if sweep_row and cores > 1:
        total = independent_runs_rate(cfg, cores, seconds)
        rows.append(row("rnnstab ×runs", cores, total, f"{cores} independent 1-thread runs, total"))
    if ref_np is not None:
        rows.append(row("numpy BPTT", 0, ref_np, "hand-written, OpenBLAS"))
    if ref_torch is not None:
        rows.append(row("PyTorch nn.RNN", threads, ref_torch, "torch, CPU"))
    return rows
