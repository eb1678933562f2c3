"""Threads or processes for local sweeps? A measurement, runnable as::

    python scripts/bench_sweep_pool.py [--pairs 6] [--updates 3000] [--len 50]

The workload is the paper's temporal-order config (preset ``temporal-order``: 50 tanh units,
batch 20, lr 0.001, SGD-CR) at one fixed length, ``threads = 1`` per run, a fixed budget with
the usual evaluations. It measures:

1. one run alone: its wall time and the share of it spent inside the engine's update calls,
   where the GIL is released (the rest — sampling data, evaluating, Python — can contend for
   the GIL when two runs share a process);
2. the start-up cost of a spawn process pool (a sweep pays it once);
3. steady-state throughput: ``--pairs`` trials of ``jobs`` runs at once on an already started
   thread pool and on an already started process pool, interleaved (thread, process, process,
   thread, …) so that the load of a shared machine hits both alike; the paired ratios and
   the medians are printed.

What it showed on the development machine, and the choice it led to, is in
docs/decisions/sweep-workers-processes.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Sequence
from concurrent.futures import Executor, wait
from typing import Any

from rnnstab_cli.sweep.local import _CONTEXT, _make_executor, default_jobs
from rnnstab_cli.sweep.spec import run_id
from rnnstab_cli.sweep.worker import RunTask
from rnnstab_cli.training.config import TrainConfig, resolve_config
from rnnstab_cli.training.records import ChunkReport, EvalRecord
from rnnstab_cli.training.synthetic.loop import run_training


def make_tasks(runs: int, updates: int, length: int, seed0: int = 0) -> list[RunTask]:
    tasks = []
    for seed in range(seed0, seed0 + runs):
        cfg = resolve_config(
            {
                "task": "temporal-order",
                "len": length,
                "method": "sgd-cr",
                "seed": seed,
                "threads": 1,
                "max_updates": updates,
                "eval_every": 1000,
            }
        )
        tasks.append(RunTask(run_id(cfg), cfg.to_dict(), None, "bench"))
    return tasks


class _EngineTime:
    """A progress sink summing the wall time of the engine's update calls (the GIL is released
    inside them; everything else in a run holds it at least part of the time)."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def start(self, config: TrainConfig, updates: int, wall_time: float) -> None:
        pass

    def chunk(self, report: ChunkReport) -> None:
        self.seconds += report.seconds

    def evaluation(self, record: EvalRecord) -> None:
        pass

    def finish(self) -> None:
        pass


def engine_share(task: RunTask) -> tuple[float, float]:
    """(run wall seconds, fraction of them inside the engine's update calls) for one run."""
    sink = _EngineTime()
    t0 = time.perf_counter()
    run_training(TrainConfig.from_dict(task.config), progress=sink)
    wall = time.perf_counter() - t0
    return wall, sink.seconds / wall


def _trial(pool: Executor, kind: str, tasks: Sequence[RunTask]) -> float:
    from rnnstab_cli.sweep.local import _execute_in_process
    from rnnstab_cli.sweep.worker import execute_run

    call: Any = _execute_in_process if kind == "process" else execute_run
    t0 = time.perf_counter()
    futures = [pool.submit(call, t) for t in tasks]
    wait(futures)
    elapsed = time.perf_counter() - t0
    bad = [f.result() for f in futures if f.result()["outcome"] not in ("solved", "unsolved")]
    if bad:
        raise SystemExit(f"benchmark runs failed: {bad}")
    return elapsed


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--pairs", type=int, default=6, help="trials per pool")
    ap.add_argument("--updates", type=int, default=3000)
    ap.add_argument("--len", type=int, default=50, dest="length")
    ap.add_argument("--jobs", type=int, default=default_jobs())
    args = ap.parse_args(argv)
    jobs = args.jobs
    tasks = make_tasks(jobs, args.updates, args.length)
    print(
        f"temporal-order len {args.length}, sgd-cr, 50 units, {args.updates} updates per run, "
        f"threads=1 per run, {jobs} runs at a time; load average {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    wall, share = engine_share(tasks[0])
    print(
        f"one run alone: {wall:.2f} s; {100 * share:.1f}% inside the engine's update calls "
        f"(GIL released), {100 * (1 - share):.1f}% outside (data, evaluation, Python)",
        flush=True,
    )
    stop = _CONTEXT.Event()
    t0 = time.perf_counter()
    procs = _make_executor("process", jobs, stop)
    wait([procs.submit(os.getpid) for _ in range(jobs)])
    print(f"process pool start-up ({jobs} spawned workers): {time.perf_counter() - t0:.2f} s")
    threads = _make_executor("thread", jobs, stop)
    pools = {"process": procs, "thread": threads}
    times: dict[str, list[float]] = {"thread": [], "process": []}
    try:
        for i in range(args.pairs):
            order = ["thread", "process"] if i % 2 == 0 else ["process", "thread"]
            for kind in order:
                seconds = _trial(pools[kind], kind, tasks)
                times[kind].append(seconds)
                print(
                    f"  trial {i + 1} {kind:>7}: {seconds:6.2f} s = {jobs / seconds:.3f} runs/s"
                    f"  (load {os.getloadavg()[0]:.1f})",
                    flush=True,
                )
    finally:
        procs.shutdown()
        threads.shutdown()
    ratios = [t / p for t, p in zip(times["thread"], times["process"], strict=True)]
    for kind, ts in times.items():
        med = statistics.median(ts)
        print(f"{kind:>7}: median {med:.2f} s = {jobs / med:.3f} runs/s (best {min(ts):.2f} s)")
    print(
        f"thread/process time ratio per pair: median {statistics.median(ratios):.3f} "
        f"(min {min(ratios):.3f}, max {max(ratios):.3f}; > 1 means processes are faster)"
    )


if __name__ == "__main__":
    main()
