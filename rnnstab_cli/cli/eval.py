"""``rnnstab eval``: score a trained checkpoint on fresh sequences of other lengths (the
paper's generalisation test: models trained up to length 200 still solve length 400).

Exit codes: 0 measured (whatever the error rate); 2 bad usage; 4 checkpoint error; 130 Ctrl-C.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

from rnnstab_cli.cli.common import emit_json
from rnnstab_cli.errors import UsageError
from rnnstab_cli.taskgen import SOLVED_ERROR_RATE, TEST_SEQUENCES
from rnnstab_cli.training.checkpoint import load_checkpoint
from rnnstab_cli.training.evaluate import STREAM_EVAL_COMMAND, measure_error

EVAL_HELP = "\n\n".join(
    [
        "Error rate of a trained model on N fresh sequences per length.",
        "A length counts as solved when at most 1% of the sequences are errors (the paper's "
        "criterion, on 10,000 sequences by default). The paper's models generalise to "
        "sequences twice as long as those they were trained on.",
        "Example: rnnstab eval runs/to-200 --len 200 --len 400",
        "Exit codes: 0 measured (whatever the error rate) · 2 bad usage · 4 checkpoint error · "
        "130 interrupted.",
    ]
)


def eval_command(
    checkpoint: Annotated[Path, typer.Argument(help="Checkpoint directory (from train --out).")],
    lengths: Annotated[
        list[int] | None,
        typer.Option(
            "--len",
            help="Sequence length to test; repeat for several. Default: the training maximum.",
        ),
    ] = None,
    n: Annotated[
        int, typer.Option("--n", help="Fresh test sequences per length.")
    ] = TEST_SEQUENCES,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the test sequences.")] = 0,
    threads: Annotated[
        int | None, typer.Option("--threads", help="Engine threads (0: one per core).")
    ] = None,
    json_lines: Annotated[bool, typer.Option("--json", help="One JSON object per length.")] = False,
) -> None:
    """Error rate of a trained model on N fresh sequences per length (``--help``: EVAL_HELP)."""
    if n < 1:
        raise UsageError(f"--n must be ≥ 1, got {n}")
    if seed < 0:
        raise UsageError(f"--seed must be ≥ 0, got {seed}")
    if threads is not None and threads < 0:
        raise UsageError(f"--threads must be ≥ 0, got {threads}")
    ckpt = load_checkpoint(checkpoint)
    cfg = ckpt.config
    task = cfg.make_task()
    todo = lengths or [cfg.eval_length]
    for length in todo:
        if length < task.min_length:
            raise UsageError(
                f"--len {length} is too short for task {cfg.task!r} (minimum {task.min_length})"
            )
    rows = []
    for length in todo:
        m = measure_error(
            ckpt.params,
            task,
            length=length,
            sequences=n,
            rng=np.random.default_rng([seed, STREAM_EVAL_COMMAND, length]),
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
