"""Hyper-parameter sweeps: a TOML grid of training runs, run in parallel (locally or on Ray),
stored in SQLite, resumable, and summarised as the paper's Fig. 7 success rates.

    spec.py         TOML spec → validated grid of resolved runs with stable ids
    store.py        the SQLite result store
    worker.py       one run, wherever it executes
    local.py        local worker processes (and why processes)
    ray_backend.py  Ray tasks
    run.py          the driver: plan, skip what is stored, run, store
    report.py       success-rate tables
    plot.py         Fig. 7
"""

from rnnstab_cli.sweep.run import SweepPlan, SweepSummary, default_runs_dir, plan_sweep, run_sweep
from rnnstab_cli.sweep.spec import PlannedRun, SweepSpec, expand, load_spec, run_id
from rnnstab_cli.sweep.store import ResultStore, RunRow

__all__ = [
    "PlannedRun",
    "ResultStore",
    "RunRow",
    "SweepPlan",
    "SweepSpec",
    "SweepSummary",
    "default_runs_dir",
    "expand",
    "load_spec",
    "plan_sweep",
    "run_id",
    "run_sweep",
]
