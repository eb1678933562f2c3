"""What ``rnnstab eval`` does once its options are parsed (cli/eval.py defines them): score a
synthetic-task checkpoint on fresh sequences per length, or a natural-task checkpoint on whole
splits.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from rnnstab_cli.cli.common import emit_json
from rnnstab_cli.errors import CheckpointError, UsageError
from rnnstab_cli.resources import forward_bytes, model_bytes, require
from rnnstab_cli.taskgen import SOLVED_ERROR_RATE, TEST_SEQUENCES, Task
from rnnstab_cli.training.checkpoint import load_checkpoint, read_state
from rnnstab_cli.training.config import MAX_TEST_SEQUENCES, TrainConfig
from rnnstab_cli.training.natural import (
    is_natural_checkpoint,
    load_natural_checkpoint,
    load_natural_data,
    score_split,
)
from rnnstab_cli.training.natural.checkpoint import scored_params
from rnnstab_cli.training.natural.data import SPLITS
from rnnstab_cli.training.synthetic.evaluate import EVAL_BATCH, eval_command_rng, measure_error


def _check_memory(cfg: TrainConfig, task: Task, length: int, n: int) -> None:
    """UsageError at once when one evaluation batch at ``length`` cannot fit in memory."""
    item = np.dtype(cfg.dtype).itemsize
    steps = (11 * length) // 10 + 20  # the tasks whose sequences outgrow T (see TrainConfig)
    h, i, o = cfg.hidden, task.n_in, task.n_out
    require(
        model_bytes(h, i, o, item) + forward_bytes(steps, min(n, EVAL_BATCH), h, i, o, item),
        f"evaluating at --len {length}",
        "lower --len",
    )


def run_eval(
    checkpoint: Path,
    *,
    lengths: list[int],
    n: int | None,
    seed: int,
    threads: int | None,
    json_lines: bool,
    splits: list[str],
    data: Path | None,
    last: bool,
) -> None:
    """What `rnnstab eval` does with its options (``n`` None: the paper's
    :data:`~rnnstab_cli.taskgen.TEST_SEQUENCES`)."""
    if threads is not None and threads < 0:
        raise UsageError(f"--threads must be ≥ 0, got {threads}")
    if is_natural_checkpoint(checkpoint):
        if lengths:
            raise UsageError("--len applies to synthetic-task checkpoints; use --split here")
        _eval_natural(checkpoint, splits or ["test"], data, threads or None, json_lines, last)
        return
    if n is None:
        n = TEST_SEQUENCES
    if splits or data is not None or last:
        read_state(checkpoint)  # a missing or damaged checkpoint is the first thing to say
        raise UsageError(
            "--split, --data and --last apply to natural-task checkpoints (music, ptb-char)"
        )
    if not 1 <= n <= MAX_TEST_SEQUENCES:
        raise UsageError(f"--n must be between 1 and {MAX_TEST_SEQUENCES:,}, got {n}")
    if seed < 0:
        raise UsageError(f"--seed must be ≥ 0, got {seed}")
    ckpt = load_checkpoint(checkpoint)
    cfg = ckpt.config
    task = cfg.make_task()
    todo = lengths or [cfg.eval_length]
    for length in todo:
        if length < task.min_length:
            raise UsageError(
                f"--len {length} is too short for task {cfg.task!r} (minimum {task.min_length})"
            )
        _check_memory(cfg, task, length, n)
    rows: list[dict[str, Any]] = []
    for length in todo:
        m = measure_error(
            ckpt.params,
            task,
            length=length,
            sequences=n,
            rng=eval_command_rng(seed, length),
            activation=cfg.activation,
            threads=threads or None,
        )
        row = {
            "event": "eval",
            "checkpoint": str(checkpoint),
            "task": cfg.label,
            "trained_len": str(cfg.length),
            "updates": ckpt.state.updates,
            "length": length,
            "sequences": m.sequences,
            "errors": m.errors,
            "error_rate": m.error_rate,
            "solved": m.within_criterion,
        }
        rows.append(row)
        if json_lines:
            emit_json(row)
    if json_lines:
        return
    table = Table(
        title=f"{cfg.label} · trained on len {cfg.length} · {ckpt.state.updates:,} updates",
        title_justify="left",
    )
    for col in ("length", "sequences", "errors", "error rate", "≤ 1%"):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(
            str(r["length"]),
            f"{r['sequences']:,}",
            f"{r['errors']:,}",
            f"{100 * r['error_rate']:.2f}%",
            "yes" if r["error_rate"] <= SOLVED_ERROR_RATE else "no",
        )
    Console(highlight=False).print(table)


def _eval_natural(
    checkpoint: Path,
    splits: list[str],
    data_path: Path | None,
    threads: int | None,
    json_lines: bool,
    last: bool,
) -> None:
    """The table's metric of a natural-task checkpoint on whole splits."""
    for split in splits:
        if split not in SPLITS:
            raise UsageError(f"unknown --split {split!r}; expected one of: {', '.join(SPLITS)}")
    ckpt = load_natural_checkpoint(checkpoint)
    params, which = scored_params(ckpt, checkpoint, last=last)  # before the data is loaded
    cfg = ckpt.config if data_path is None else ckpt.config.replace(data=str(data_path))
    data = load_natural_data(cfg)
    if data.vocab != ckpt.vocab:
        raise CheckpointError(
            f"checkpoint {str(checkpoint)!r} was trained on other symbols than {data.source}"
        )
    st = ckpt.state
    epoch = st.stopping.best_epoch if which == "best" else st.epochs_done
    rows: list[dict[str, Any]] = []
    for split in splits:
        score = score_split(cfg, params, data, split, threads)
        row = {
            "event": "eval",
            "checkpoint": str(checkpoint),
            "task": cfg.task,
            "dataset": cfg.dataset,
            "preset": cfg.preset,
            "method": cfg.method,
            "params": which,
            "epoch": epoch,
            "updates": st.updates,
            "split": split,
            "metric": score.metric,
            "unit": score.unit,
            "value": score.value,
            "nats": score.nats,
            "predictions": score.count,
        }
        rows.append(row)
        if json_lines:
            emit_json(row)
    if json_lines:
        return
    name = "NLL per time step" if cfg.metric == "nll" else "entropy"
    table = Table(
        title=f"{cfg.label} · {cfg.method} · {which} parameters (epoch {epoch}) · "
        f"{st.updates:,} updates",
        title_justify="left",
    )
    for col in ("split", name, "unit", "predictions"):
        table.add_column(col, justify="left" if col == "split" else "right")
    for r in rows:
        table.add_row(r["split"], f"{r['value']:.4f}", r["unit"], f"{r['predictions']:,}")
    console = Console(highlight=False)
    if not console.is_terminal:  # a pipe or file gets the whole title, not 80 columns
        console = Console(highlight=False, width=120)
    console.print(table)
