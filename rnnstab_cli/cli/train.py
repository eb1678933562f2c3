"""``rnnstab train``: train an RNN on one of the paper's synthetic tasks and say, honestly,
whether it solved it; or, with ``--task music|ptb-char`` (or one of their presets), train on a
natural task epoch by epoch and report the table's metric (§4.2, Tables 1 and 2).

Exit codes: 0 solved, or a natural-task run that ended (there is no "solved" there); 10 update
budget exhausted without solving; 1 error (e.g. diverged with ``nonfinite = "error"``); 2 bad
usage; 3 data error; 4 checkpoint error; 130 interrupted (Ctrl-C; the checkpoint is saved first
when ``--out``/``--resume`` names one).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from rnnstab_cli.cli.common import EXIT_CODES_HELP

# What the command does lives in cli/train_run.py, imported when it runs: defining the options
# (and `rnnstab --help`) then needs neither numpy nor the engine.

_TASK = "Task"
_METHOD = "Method (paper §3, §4.1)"
_MODEL = "Model"
_RUN = "Run"
_OUT = "Output and checkpoints"
_NATURAL = "Natural tasks (music, ptb-char: §4.2)"


def train(
    task: Annotated[
        str | None,
        typer.Option(
            "--task", "-t", help="Task or preset (see `rnnstab tasks`).", rich_help_panel=_TASK
        ),
    ] = None,
    length: Annotated[
        str | None,
        typer.Option(
            "--len",
            help=(
                "Sequence length N, or MIN:MAX for a length drawn per batch "
                "(one model for all lengths)."
            ),
            rich_help_panel=_TASK,
        ),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="TOML file with the same keys (preset < file < flags).",
            rich_help_panel=_TASK,
        ),
    ] = None,
    method: Annotated[
        str | None,
        typer.Option(
            "--method",
            help=(
                "sgd (no clipping, α=0) | sgd-c (norm clipping) | "
                "sgd-cr (clipping + Ω with the preset's α)."
            ),
            rich_help_panel=_METHOD,
        ),
    ] = None,
    clip: Annotated[
        float | None, typer.Option("--clip", help="Clipping threshold.", rich_help_panel=_METHOD)
    ] = None,
    clip_mode: Annotated[
        str | None,
        typer.Option(
            "--clip-mode",
            help=(
                "none | norm | value | auto | percentile | zscore | skip | agc: overrides the "
                "method's clipping. The adaptive rules take their parameters with --set, e.g. "
                "--set clip_window=100 --set clip_factor=2 (see the README)."
            ),
            rich_help_panel=_METHOD,
        ),
    ] = None,
    alpha: Annotated[
        float | None,
        typer.Option(
            "--alpha", help="Weight α of the Ω regulariser (sgd-cr).", rich_help_panel=_METHOD
        ),
    ] = None,
    lr: Annotated[
        float | None, typer.Option("--lr", help="Learning rate.", rich_help_panel=_METHOD)
    ] = None,
    optimizer: Annotated[
        str | None,
        typer.Option(
            "--optimizer",
            help="sgd | momentum | nesterov | rmsprop | adagrad.",
            rich_help_panel=_METHOD,
        ),
    ] = None,
    hidden: Annotated[
        int | None, typer.Option("--hidden", help="Hidden units.", rich_help_panel=_MODEL)
    ] = None,
    activation: Annotated[
        str | None,
        typer.Option(
            "--activation", help="tanh | sigmoid | relu | linear.", rich_help_panel=_MODEL
        ),
    ] = None,
    init: Annotated[
        str | None,
        typer.Option(
            "--init", help="normal | sparse | identity | orthogonal.", rich_help_panel=_MODEL
        ),
    ] = None,
    init_scale: Annotated[
        float | None,
        typer.Option(
            "--init-scale", help="Std of the normal initialisation.", rich_help_panel=_MODEL
        ),
    ] = None,
    batch: Annotated[
        int | None, typer.Option("--batch", help="Sequences per update.", rich_help_panel=_RUN)
    ] = None,
    seed: Annotated[
        int | None, typer.Option("--seed", help="Random seed.", rich_help_panel=_RUN)
    ] = None,
    max_updates: Annotated[
        int | None, typer.Option("--max-updates", help="Update budget.", rich_help_panel=_RUN)
    ] = None,
    eval_every: Annotated[
        int | None,
        typer.Option(
            "--eval-every",
            help="Updates between evaluations (and checkpoints).",
            rich_help_panel=_RUN,
        ),
    ] = None,
    threads: Annotated[
        int | None,
        typer.Option("--threads", help="Engine threads (0: one per core).", rich_help_panel=_RUN),
    ] = None,
    dtype: Annotated[
        str | None,
        typer.Option("--dtype", help="float32 (default, faster) | float64.", rich_help_panel=_RUN),
    ] = None,
    device: Annotated[
        str | None, typer.Option("--device", help="cpu | gpu.", rich_help_panel=_RUN)
    ] = None,
    dataset: Annotated[
        str | None,
        typer.Option(
            "--dataset",
            help="jsb | nottingham | piano-midi | musedata (with --task music) | ptb-char.",
            rich_help_panel=_NATURAL,
        ),
    ] = None,
    data: Annotated[
        Path | None,
        typer.Option(
            "--data",
            help="The data file or folder (default: the folder in $RNNSTAB_DATA).",
            rich_help_panel=_NATURAL,
        ),
    ] = None,
    epochs: Annotated[
        int | None,
        typer.Option("--epochs", help="Epoch budget.", rich_help_panel=_NATURAL),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Keep a checkpoint in this directory.", rich_help_panel=_OUT),
    ] = None,
    resume: Annotated[
        Path | None,
        typer.Option(
            "--resume",
            help=(
                "Continue the checkpoint in this directory (bit-identical to an uninterrupted run)."
            ),
            rich_help_panel=_OUT,
        ),
    ] = None,
    json_lines: Annotated[
        bool,
        typer.Option(
            "--json",
            help="JSON lines on stdout: one per evaluation, then a summary.",
            rich_help_panel=_OUT,
        ),
    ] = False,
    diagnostics: Annotated[
        bool | None,
        typer.Option(
            "--diagnostics/--no-diagnostics",
            help=(
                "Gradient-flow diagnostics at every evaluation (on by default; ~0.1% of the "
                "time): ‖∂E/∂x_k‖ against the "
                "lag T−k, ρ(W_rec) and σ_max(W_rec) against 1/γ, Ω's pairs (in --json lines and "
                "the checkpoint's metrics log; `rnnstab plot RUN_DIR` draws them)."
            ),
            rich_help_panel=_OUT,
        ),
    ] = None,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="No progress on stderr.", rich_help_panel=_OUT)
    ] = False,
    settings: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            help=(
                "KEY=VALUE for any config-file key without its own flag, VALUE in TOML "
                "(e.g. --set momentum=0.5 --set 'task_options={pattern_length=10}'); repeatable."
            ),
            rich_help_panel=_RUN,
        ),
    ] = None,
) -> None:
    """Train on a synthetic task until it is solved or the update budget runs out (see
    :data:`TRAIN_HELP`, which is also the ``--help`` text)."""
    flags: dict[str, Any] = {
        "task": task, "len": length, "method": method, "clip": clip, "clip_mode": clip_mode,
        "alpha": alpha, "lr": lr, "optimizer": optimizer, "hidden": hidden,
        "activation": activation, "init": init, "init_scale": init_scale, "batch": batch,
        "seed": seed, "max_updates": max_updates, "eval_every": eval_every, "threads": threads,
        "dtype": dtype, "device": device, "diagnostics": diagnostics, "dataset": dataset,
        "data": str(data) if data is not None else None, "epochs": epochs,
    }  # fmt: skip
    from rnnstab_cli.cli.train_run import run_train

    run_train(
        flags,
        settings=settings or [],
        config=config,
        resume=resume,
        out=out,
        json_lines=json_lines,
        quiet=quiet,
    )


TRAIN_HELP = "\n\n".join(
    [
        "Train on a synthetic task until it is solved or the update budget runs out.",
        "Solved means at most 1% errors on 10,000 fresh test sequences (the paper's criterion). "
        "Every evaluation first screens 1,000 sequences and measures the full 10,000 only when "
        "the screen is at or below 1%; solved is only ever declared on the full 10,000. For a "
        "length range (--len 50:200) the test sequences' lengths are drawn from the whole range, "
        "as in training, so solved means solved at every length.",
        "Settings: preset (see `rnnstab tasks`) < --config FILE < flags.",
        "Example: rnnstab train --task temporal-order --len 200 --method sgd-cr",
        "Natural tasks (§4.2): --task music --dataset jsb|nottingham|piano-midi|musedata "
        "(Table 1, NLL per time step) or --task ptb-char (Table 2, bits per character; the "
        "preset ptb-char-5ahead predicts the 5th character ahead), epoch by epoch, data from "
        "--data PATH or $RNNSTAB_DATA; --json prints one line per epoch. Such a run exits 0 "
        "when its budget (--epochs, --max-updates) or its patience ends.",
        "Example: rnnstab train --task music --dataset nottingham --method sgd-cr --epochs 5",
        EXIT_CODES_HELP,
    ]
)
