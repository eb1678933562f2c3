"""Timing: updates per second of each implementation on each configuration, the matrix-product
ceiling, and the throughput of independent runs on all cores.

FLOPs per update are counted as 6·T·B·(H² + H·I), plus 6·T·B·H·O where every step is scored:
the forward product and the two backward products (error signal and weight gradient) of the
recurrent and input matrices, and of the read-out where it runs at every step, as the
project's performance targets count them.
"""

from __future__ import annotations

import functools
import itertools
import json
import multiprocessing as mp
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from rnnstab_cli import engine
from rnnstab_cli.bench.peers import numpy_update, torch_update, torch_version
from rnnstab_cli.simd_env import peer_caps

N_OUT = 4

#: Seconds of rest after the peers' measurements, before the engine's (see _measure_config).
_PEERS_SPIN_DOWN_S = 1.0


#: What an update scores, as ``--config`` names it after H,I,B,T: ``last`` (the synthetic
#: problems: softmax cross-entropy at the last step, N_OUT classes), ``every`` (next-symbol
#: prediction, Table 2: softmax cross-entropy at every step over I classes), ``bce`` (next-frame
#: prediction, Table 1: a sigmoid cross-entropy per note at every step, I notes).
SCORING = ("last", "every", "bce")


@dataclass(frozen=True)
class BenchConfig:
    hidden: int
    inputs: int
    batch: int
    steps: int
    scoring: str = "last"
    #: The final state of one update starts the next (Table 2's segments of one long text).
    carry: bool = False
    #: What the configuration stands for, shown after its shape ("Table 1").
    name: str = ""

    @property
    def outputs(self) -> int:
        """Read-out width: the last-step problems' classes, else one per input symbol."""
        return N_OUT if self.scoring == "last" else self.inputs

    @property
    def every_step(self) -> bool:
        return self.scoring != "last"

    @property
    def loss(self) -> str:
        return "bce" if self.scoring == "bce" else "softmax_ce"

    @property
    def flops(self) -> float:
        h, i = self.hidden, self.inputs
        per_step = h * h + h * i + (h * self.outputs if self.every_step else 0)
        return 6.0 * self.steps * self.batch * per_step

    def label(self) -> str:
        shape = f"H={self.hidden} I={self.inputs} B={self.batch} T={self.steps}"
        extra = [s for s in (self.scoring if self.every_step else "", "carry" * self.carry) if s]
        text = " ".join([shape, *extra])
        return f"{text} ({self.name})" if self.name else text

    @classmethod
    def parse(cls, text: str) -> BenchConfig:
        """``H,I,B,T`` and optionally a scoring (``every``, ``bce``) and ``carry``."""
        from rnnstab_cli.errors import UsageError

        parts = [p.strip() for p in text.split(",")]
        shape, flags = parts[:4], parts[4:]
        if len(shape) != 4 or not all(p.isdigit() and int(p) > 0 for p in shape):
            raise UsageError(
                f"--config takes H,I,B,T as four positive integers, then optionally "
                f"'every' or 'bce' and 'carry'; got {text!r}"
            )
        unknown = [f for f in flags if f not in (*SCORING, "carry")]
        scorings = [f for f in flags if f in SCORING]
        if unknown or len(scorings) > 1 or len(set(flags)) != len(flags):
            raise UsageError(
                f"--config H,I,B,T may be followed by one of {', '.join(SCORING)} and by "
                f"'carry', each once; got {text!r}"
            )
        h, i, b, t = (int(p) for p in shape)
        return cls(h, i, b, t, scorings[0] if scorings else "last", "carry" in flags)


#: The configurations of the performance targets: the paper's temporal order, a large model,
#: and the models of the natural tasks (the appendix's sizes with one batch shape each).
PAPER_CONFIGS = (
    BenchConfig(50, 6, 20, 200, name="Fig. 7"),
    BenchConfig(512, 128, 128, 100, name="large"),
    BenchConfig(500, 50, 32, 200, "every", carry=True, name="Table 2"),
    BenchConfig(300, 88, 1, 200, "bce", name="Table 1"),
    BenchConfig(400, 88, 1, 200, "bce", name="Table 1, MuseData"),
)

#: Seconds one timed call should take at most: calls are chunks of updates, and a window
#: needs three of them, so a large model runs one update per call (see :func:`chunk_for`).
_CALL_S = 0.1

#: A rate guess for sizing chunks before anything is measured (GFLOP/s; any core does more).
_GUESS_GFLOPS = 10.0


def chunk_for(cfg: BenchConfig) -> int:
    """Updates per timed call: up to 20 (so the call overhead is shared), fewer where an update
    is long, so that the three windows of three calls each stay near ``--seconds``."""
    return max(1, min(20, int(_CALL_S * _GUESS_GFLOPS * 1e9 / cfg.flops)))


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


#: A timing window during which the host stole more than this share of the CPU time is
#: retried (see :func:`rate`).
QUIET_STEAL = 0.02


def rate(update: Callable[[], None], seconds: float, warmup: int = 2, windows: int = 3) -> float:
    """Updates per second of ``update`` after a warm-up: the best of ``windows`` timing windows
    that share ``seconds`` (each at least 3 calls). On a shared or virtual machine a window can
    lose a core to something else for a while; the best window is the implementation's own
    speed, which is what the comparisons are about. Where the kernel reports steal (time the
    virtual machine's host ran something else), windows with more than :data:`QUIET_STEAL` of
    it count only if no quiet one comes in up to ``windows`` more tries."""
    return rates([update], seconds, warmup, windows)[0]


def rates(
    updates: Sequence[Callable[[], None]], seconds: float, warmup: int = 2, windows: int = 3
) -> list[float]:
    """:func:`rate` of each of ``updates`` (``seconds`` each), measured in turns: the first
    window of every one, then the second of every one, and so on. The speed of a virtual
    machine drifts over tens of seconds; taken in turns, the updates meet the same drift, so
    their ratios (two threads against one, Ω's cost) are those of the code, not of the
    minute each was measured in."""
    for update in updates:
        for _ in range(warmup):
            update()
    measured: list[list[tuple[float, float | None]]] = [[] for _ in updates]
    for tried in range(2 * windows):
        if tried >= windows and all(any(_quiet(st) for _, st in m) for m in measured):
            break
        for update, m in zip(updates, measured, strict=True):
            m.append(_window(update, seconds / windows))
    return [_best(m) for m in measured]


def _window(update: Callable[[], None], seconds: float) -> tuple[float, float | None]:
    """(calls per second, steal fraction) of one window of at least ``seconds`` and 3 calls."""
    n, start, steal_start = 0, time.perf_counter(), cpu_steal()
    while True:
        update()
        n += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds and n >= 3:
            break
    return n / elapsed, steal_fraction(steal_start, cpu_steal())


def _quiet(stolen: float | None) -> bool:
    return stolen is None or stolen <= QUIET_STEAL


def _best(measured: list[tuple[float, float | None]]) -> float:
    """The fastest of the (rate, steal fraction) windows with little steal, else of them all."""
    quiet = [r for r, stolen in measured if _quiet(stolen)]
    return max(quiet or [r for r, _ in measured])


def engine_update(
    cfg: BenchConfig, threads: int, alpha: float, chunk: int = 20, device: str = "cpu"
) -> Callable[[], None]:
    """``chunk`` updates per call through Trainer.steps, as the training loop drives it; the
    returned callable reports one update per call by dividing afterwards (see engine_rate)."""
    rng = np.random.default_rng(0)
    params = engine.init_params(cfg.inputs, cfg.hidden, cfg.outputs, scale=0.1, dtype="float32")
    tr = engine.Trainer(
        params,
        activation="tanh",
        loss=cfg.loss,
        lr=0.001,
        clip_mode="norm",
        clip=6.0,
        alpha=alpha,
        time_reduction="mean" if cfg.every_step else "sum",
        threads=threads,
        carry_state=cfg.carry,
        device=device,
    )
    lead = (chunk, cfg.steps, cfg.batch)
    x = rng.normal(0, 1, (*lead, cfg.inputs)).astype(np.float32)
    y: np.ndarray
    if cfg.loss == "bce":
        y = (rng.random((*lead, cfg.outputs)) < 0.1).astype(np.float32)
    else:
        y = rng.integers(0, cfg.outputs, lead).astype(np.int64)
    m = np.zeros(lead, np.float32)
    if cfg.every_step:
        m[:] = 1.0
    else:
        m[:, -1] = 1.0

    def update() -> None:
        tr.steps(x, y, m)

    return update


def engine_rate(
    cfg: BenchConfig,
    threads: int,
    alpha: float,
    seconds: float,
    chunk: int | None = None,
    device: str = "cpu",
) -> float:
    return engine_rates(cfg, [(threads, alpha)], seconds, chunk, device)[0]


def engine_rates(
    cfg: BenchConfig,
    settings: Sequence[tuple[int, float]],
    seconds: float,
    chunk: int | None = None,
    device: str = "cpu",
) -> list[float]:
    """Updates/s of the engine for each (threads, α) in ``settings``, measured in turns (see
    :func:`rates`); ``chunk`` updates per call, by default :func:`chunk_for`."""
    chunk = chunk or chunk_for(cfg)
    updates = [engine_update(cfg, threads, alpha, chunk, device) for threads, alpha in settings]
    return [chunk * r for r in rates(updates, seconds, warmup=1)]


class _ChunkMarks:
    """A progress sink that keeps, at the end of every training chunk, the updates done, the
    run's wall time and the host's steal counters."""

    def __init__(self) -> None:
        self.marks: list[tuple[int, float, tuple[int, int] | None]] = []

    def start(self, config: object, updates: int, wall_time: float) -> None:
        pass

    def chunk(self, report: Any) -> None:
        self.marks.append((report.updates, report.wall_time, cpu_steal()))

    def evaluation(self, record: object) -> None:
        pass

    def finish(self) -> None:
        pass


def train_rate(cfg: BenchConfig, threads: int, seconds: float, base: float) -> float | None:
    """Updates/s of ``rnnstab train`` itself on the temporal order problem at this size (SGD-C,
    one evaluation at the end, which is not timed): data generation, chunking and Python
    included. None when the configuration's input width is not the task's (6).

    The run lasts about ``seconds`` at the engine's rate ``base`` and at least four chunks. As
    in :func:`rate`, the result is the best of three windows, here stretches of whole chunks
    measured from the end of the first chunk: that chunk's data is drawn before training
    starts, once per run, while a real run's hundreds of thousands of updates are all
    steady state."""
    from rnnstab_cli.training.config import DEFAULT_CHUNK, resolve_config
    from rnnstab_cli.training.synthetic.loop import run_training

    if cfg.inputs != 6:
        return None
    windows = 3
    updates = max(int(base * seconds), (windows + 1) * DEFAULT_CHUNK)
    config = resolve_config(
        {
            "task": "temporal-order",
            "len": str(cfg.steps),
            "hidden": cfg.hidden,
            "batch": cfg.batch,
            "method": "sgd-c",
            "max_updates": updates,
            "eval_every": updates,
            "threads": threads,
            "diagnostics": False,
        }
    )
    sink = _ChunkMarks()
    run_training(config, progress=sink)
    marks = sink.marks
    cuts = [round(j * (len(marks) - 1) / windows) for j in range(windows + 1)]
    measured = []
    for a, b in itertools.pairwise(cuts):
        (u0, t0, s0), (u1, t1, s1) = marks[a], marks[b]
        measured.append(((u1 - u0) / (t1 - t0), steal_fraction(s0, s1)))
    return _best(measured)


def _status_bytes(field: str) -> int:
    """A ``kB`` field of /proc/self/status (VmRSS: resident now, VmHWM: its peak)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise OSError(f"/proc/self/status has no {field}")


def _memory_worker(cfg: BenchConfig) -> tuple[int, int]:
    # A tiny update first: what the process sets up once, on its first update of any size
    # (the binding's Python types, the allocator's arena for the engine's thread; ~250 KiB
    # measured), is not memory an update needs.
    engine_update(BenchConfig(4, 2, 2, 3), 1, 2.0, chunk=1)()
    update = engine_update(cfg, 1, 2.0, chunk=1)
    # Writing 5 to clear_refs resets VmHWM to the current RSS (Linux ≥ 4.0), so the peak
    # read afterwards belongs to the updates alone, not to start-up or imports.
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    before = _status_bytes("VmRSS")
    for _ in range(3):
        update()
    return before, _status_bytes("VmHWM")


def update_memory(cfg: BenchConfig) -> tuple[float, float]:
    """(measured, needed) bytes of one update. Measured: the peak RSS growth over three updates
    in a fresh process, after the parameters and the batch exist (Linux only). Needed: what
    BPTT as the engine does it must hold — h_t and g_t for every step and example (the weight
    gradients are products over all of them at the end), the inputs and output gradients, and
    the parameters' gradient; with every step scored, v_t too, which the engine keeps for Ω's
    gradient (the measurement trains with Ω) instead of recomputing it."""
    ctx = mp.get_context("spawn")
    with ctx.Pool(1) as pool:
        before, peak = pool.apply(_memory_worker, (cfg,))
    h, i, b, s = cfg.hidden, cfg.inputs, cfg.batch, cfg.steps + 1
    o = cfg.outputs
    n_params = h * h + h * i + h + o * h + o
    states = 3 if cfg.every_step else 2  # h_t, g_t, and v_t where it is kept
    needed = 4 * (states * b * s * h + b * s * (i + o) + n_params)
    return float(max(peak - before, 0)), float(needed)


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
    some machines set them to an older core type, which would understate the ceiling; where
    the engine is capped at a lower instruction set, OpenBLAS is capped at the same one (see
    :func:`rnnstab_cli.simd_env.peer_caps`)."""
    env = {
        k: v for k, v in os.environ.items() if k not in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
    }
    env.update(peer_caps())
    out = subprocess.run(
        [sys.executable, "-c", _CEILING_SNIPPET],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    return float(json.loads(out.stdout)["gflops"])


def cpu_steal(stat: str = "/proc/stat") -> tuple[int, int] | None:
    """(steal, total) CPU time of all cores so far, in clock ticks, from Linux's ``/proc/stat``;
    None where it is not available. Steal is time a virtual machine's cores were runnable but
    its host ran something else: while it lasts, every rate measured is below the machine's
    own, and a multi-threaded run waits at each join for the core that was taken away."""
    try:
        with open(stat) as f:
            fields = f.readline().split()
    except OSError:
        return None
    if len(fields) < 9 or fields[0] != "cpu":
        return None
    # user nice system idle iowait irq softirq steal [guest guest_nice]: guest time is already
    # part of user time, so the total is the first eight.
    ticks = [int(v) for v in fields[1:9]]
    return ticks[7], sum(ticks)


def steal_fraction(start: tuple[int, int] | None, end: tuple[int, int] | None) -> float | None:
    """The share of CPU time stolen by the host between two :func:`cpu_steal` readings."""
    if start is None or end is None or end[1] <= start[1]:
        return None
    return (end[0] - start[0]) / (end[1] - start[1])


def run_benchmark(
    configs: list[BenchConfig],
    *,
    seconds: float = 1.5,
    threads: int | None = None,
    peers: bool = True,
    sweep_row: bool = True,
    gpu: bool = False,
    on_row: Callable[[BenchRow], None] | None = None,
) -> tuple[list[BenchRow], dict[str, object]]:
    """Measures every configuration; returns the rows and facts about the run (ceiling, cores,
    peer versions)."""
    cores = os.cpu_count() or 1
    threads = threads or cores
    steal_start = cpu_steal()
    ceiling = matmul_ceiling()
    facts: dict[str, object] = {
        "ceiling_gflops": ceiling,
        "cores": cores,
        "simd": engine.simd_level(),
        "peer_caps": peer_caps() or None,
        "numpy": np.__version__,
        "torch": torch_version(),
        "gpu": _gpu_name() if gpu else None,
    }
    rows: list[BenchRow] = []

    def add(row: BenchRow) -> None:
        rows.append(row)
        if on_row is not None:
            on_row(row)

    for cfg in configs:
        for row in _measure_config(cfg, seconds, threads, cores, ceiling, peers, sweep_row, gpu):
            add(row)
    facts["steal_fraction"] = steal_fraction(steal_start, cpu_steal())
    return rows, facts


def _measure_config(
    cfg: BenchConfig,
    seconds: float,
    threads: int,
    cores: int,
    ceiling: float,
    peers: bool,
    sweep_row: bool,
    gpu: bool,
) -> list[BenchRow]:
    # OpenBLAS's and OpenMP's worker threads spin for a while after their last call; whatever
    # is timed next would share its cores with them (seen: "2 threads give 0.68×"), so each
    # peer's measurement is followed by a rest.
    ref_np = ref_torch = None
    # PyTorch on one thread, the peer of the engine's one-thread row.
    ref_torch_1: float | None = None
    if peers:
        # The numpy peer is written for the last-step problems only.
        if not cfg.every_step:
            nu = numpy_update(cfg.hidden, cfg.inputs, N_OUT, cfg.batch, cfg.steps)
            ref_np = rate(nu, seconds)
            time.sleep(_PEERS_SPIN_DOWN_S)
        shape = (cfg.hidden, cfg.inputs, cfg.outputs, cfg.batch, cfg.steps)
        tus = [
            torch_update(*shape, n, scoring=cfg.scoring, carry=cfg.carry)
            for n in sorted({threads, 1}, reverse=True)
        ]
        if all(tu is not None for tu in tus):
            measured = [rate(tu, seconds) for tu in tus if tu is not None]
            ref_torch, ref_torch_1 = measured[0], measured[-1]
            time.sleep(_PEERS_SPIN_DOWN_S)
    gf = cfg.flops / 1e9

    def row(impl: str, thr: int, ups: float, note: str = "") -> BenchRow:
        # A one-thread row is compared with PyTorch on one thread.
        torch_ref = ref_torch_1 if thr == 1 else ref_torch
        return BenchRow(
            cfg.label(),
            impl,
            thr,
            ups,
            ups * gf,
            100.0 * ups * gf / ceiling,
            ups / ref_np if ref_np else None,
            ups / torch_ref if torch_ref else None,
            note,
        )

    rows = []
    # SGD-C, SGD-CR and SGD-C on one thread in turns: the rows compared with each other.
    settings = [(threads, 0.0), (threads, 2.0), *([(1, 0.0)] if threads > 1 else [])]
    base, with_omega, *one = engine_rates(cfg, settings, seconds)
    used, needed = update_memory(cfg)
    memory = f"memory {used / 2**20:.1f} MiB = {used / needed:.2f}× the {needed / 2**20:.1f} needed"
    rows.append(row("rnnstab", threads, base, f"SGD-C; {memory}"))
    if one:
        gain = f"SGD-C; {threads} threads give {base / one[0]:.2f}×"
        rows.append(row("rnnstab", 1, one[0], gain))
    omega_cost = 100 * (base / with_omega - 1)
    rows.append(row("rnnstab", threads, with_omega, f"SGD-CR: Ω costs {omega_cost:+.1f}%"))
    e2e = train_rate(cfg, threads, seconds, base)
    if e2e is not None:
        rows.append(row("rnnstab train", threads, e2e, f"end to end: {100 * e2e / base:.0f}%"))
    if sweep_row and cores > 1:
        total = independent_runs_rate(cfg, cores, seconds)
        rows.append(row("rnnstab ×runs", cores, total, f"{cores} independent 1-thread runs, total"))
    if gpu:
        # A couple of updates per call: on a software adapter one update can take seconds.
        on_gpu = engine_rate(cfg, threads, 0.0, seconds, chunk=2, device="gpu")
        rows.append(row("rnnstab GPU", 0, on_gpu, f"SGD-C on {_gpu_name()}"))
    if ref_np is not None:
        rows.append(row("numpy BPTT", 0, ref_np, "hand-written, OpenBLAS"))
    if ref_torch is not None:
        rows.append(row("PyTorch nn.RNN", threads, ref_torch, "torch, CPU"))
    if ref_torch_1 is not None and threads > 1:
        rows.append(row("PyTorch nn.RNN", 1, ref_torch_1, "torch, CPU, one thread"))
    return rows


@functools.cache
def _gpu_name() -> str:
    """The adapter the GPU backend opens (it prefers real GPUs to software ones)."""
    params = engine.init_params(1, 1, 1, dtype="float32")
    return engine.Trainer(params, loss="softmax_ce", device="gpu").device
