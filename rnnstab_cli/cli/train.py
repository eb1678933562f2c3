"""``rnnstab train``: train an RNN on one of the paper's synthetic tasks and say, honestly,
whether it solved it; or, with ``--task music|ptb-char`` (or one of their presets), train on a
natural task epoch by epoch and report the table's metric (§4.2, Tables 1 and 2).

Exit codes: 0 solved, or a natural-task run that ended (there is no "solved" there); 10 update
budget exhausted without solving; 1 error (e.g. diverged with ``nonfinite = "error"``); 2 bad
usage; 3 data error; 4 checkpoint error; 130 interrupted (Ctrl-C; the checkpoint is saved first
when ``--out``/``--resume`` names one).
"""

from __future__ import annotations

import math
import tomllib
import typing
from pathlib import Path
from typing import Annotated, Any

import typer

from rnnstab_cli.cli.common import (
    EXIT_CODES_HELP,
    EXIT_INTERRUPTED,
    EXIT_NOT_SOLVED,
    EXIT_OK,
    emit_json,
    note_interrupt,
    warn_threads,
)
from rnnstab_cli.errors import UsageError
from rnnstab_cli.taskgen import SOLVED_ERROR_RATE
from rnnstab_cli.training.checkpoint import load_config
from rnnstab_cli.training.config import (
    RESUMABLE_KEYS,
    TrainConfig,
    normalise_layer,
    resolve_config,
)
from rnnstab_cli.training.loop import run_training
from rnnstab_cli.training.natural import (
    NATURAL_RESUMABLE_KEYS,
    EpochRecord,
    NaturalConfig,
    NaturalResult,
    is_natural_checkpoint,
    is_natural_selection,
    load_natural_config,
    resolve_natural_config,
    run_natural,
)
from rnnstab_cli.training.natural.metrics import UNITS
from rnnstab_cli.training.natural.progress import make_natural_progress
from rnnstab_cli.training.progress import make_progress
from rnnstab_cli.training.records import EvalRecord, RunResult, TrainingInterrupted

_TASK = "Task"
_METHOD = "Method (paper §3, §4.1)"
_MODEL = "Model"
_RUN = "Run"
_OUT = "Output and checkpoints"
_NATURAL = "Natural tasks (music, ptb-char: §4.2)"


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    m, s = divmod(round(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}h {m:02d}m {s:02d}s" if h else f"{m}m {s:02d}s"


def summary_text(result: RunResult) -> str:
    """The human verdict printed at the end (stdout)."""
    c = result.config
    verdict = "SOLVED" if result.solved else "NOT SOLVED"
    if result.test_error is None or not math.isfinite(result.test_error):
        error = "no test error measured"
    else:
        lengths = f"length {c.eval_length}" if c.length.fixed else f"lengths {c.length}"
        sample = f"{result.test_sequences:,} fresh sequences of {lengths}"
        error = f"test error {100 * result.test_error:.2f}% on {sample}"
    lines = [
        f"{verdict}: {c.label} (len {c.length}) with {c.method}: {error} "
        f"(solved means ≤ {100 * SOLVED_ERROR_RATE:g}%), after {result.updates:,} updates "
        f"in {_duration(result.wall_time)}."
    ]
    if not result.solved:
        more = (
            f"continue with --resume {result.out_dir} --max-updates N"
            if result.out_dir is not None
            else "keep a checkpoint with --out DIR to be able to continue"
        )
        lines.append(f"The update budget (--max-updates {c.max_updates}) is exhausted; {more}.")
    if result.out_dir is not None:
        lines.append(f"Checkpoint: {result.out_dir}")
    return "\n".join(lines)


_OUTCOME_TEXT = {
    "epochs_done": "the epoch budget (--epochs {epochs}) is used up",
    "max_updates": "the update budget (--max-updates {max_updates}) is used up",
    "early_stopped": "early stop: {patience} epochs without a better validation score",
}


def _score(x: float | None) -> str:
    return "–" if x is None or not math.isfinite(x) else f"{x:.4f}"


def natural_summary_text(result: NaturalResult) -> str:
    """The human summary of a natural-task run (stdout)."""
    c = result.config
    unit = UNITS[c.metric]
    name = "NLL" if c.metric == "nll" else "entropy"
    stop = _OUTCOME_TEXT[result.outcome].format(
        epochs=c.epochs, max_updates=c.max_updates, patience=c.patience
    )
    lines = [
        f"{c.label} with {c.method}: validation {name} {_score(result.valid)} {unit} "
        f"(untrained {_score(result.untrained_valid)}; best {_score(result.best_valid)} after "
        f"epoch {result.best_epoch if result.best_epoch is not None else '–'}), after "
        f"{result.epochs_done} complete epoch(s), {result.updates:,} updates in "
        f"{_duration(result.wall_time)}; {stop}.",
    ]
    if result.out_dir is not None:
        lines.append(
            f"Checkpoint: {result.out_dir} (score it: rnnstab eval {result.out_dir} --split test)"
        )
    return "\n".join(lines)


def parse_settings(items: list[str]) -> dict[str, Any]:
    """``["lr=0.1", "method=sgd"]`` → ``{"lr": 0.1, "method": "sgd"}``: each VALUE is read as a
    TOML value, and as a plain string when it is not one (so ``method=sgd`` needs no quotes)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise UsageError(f"--set expects KEY=VALUE, got {item!r}")
        try:
            value = tomllib.loads(f"v = {raw.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw.strip()
        out[key] = value
    return out


def _resumed_config(resume: Path, flags: dict[str, Any]) -> TrainConfig:
    """The checkpoint's config with the options a resumed run may change."""
    saved = load_config(resume)
    given = normalise_layer(
        {k: v for k, v in flags.items() if v is not None}, source="command line"
    )
    changes: dict[str, Any] = {}
    for key, value in given.items():
        current = {
            "len": saved.length,
            "task": saved.preset or saved.task,
        }.get(key, getattr(saved, key, None))
        if key in RESUMABLE_KEYS:
            changes[key] = value
        elif value != current and not (key == "task" and value == saved.task):
            raise UsageError(
                f"--{key.replace('_', '-')} cannot change when resuming "
                f"(the checkpoint has {current!s}); only "
                + ", ".join(f"--{k.replace('_', '-')}" for k in RESUMABLE_KEYS if k in flags)
                + " may"
            )
    return saved.replace(**changes) if changes else saved


def _resumed_natural_config(resume: Path, flags: dict[str, Any]) -> NaturalConfig:
    """A natural checkpoint's config with the options a resumed run may change."""
    saved = load_natural_config(resume)
    given = normalise_layer(
        {k: v for k, v in flags.items() if v is not None}, source="command line"
    )
    if "len" in given:
        given["seq_len"] = given.pop("len").lo
    changes: dict[str, Any] = {}
    for key, value in given.items():
        if key in NATURAL_RESUMABLE_KEYS:
            changes[key] = value
            continue
        current = getattr(saved, key, None)
        same_task = key == "task" and value in (saved.task, saved.preset)
        if value != current and not same_task:
            raise UsageError(
                f"--{key.replace('_', '-')} cannot change when resuming (the checkpoint has "
                f"{current!s}); only "
                + ", ".join(f"--{k.replace('_', '-')}" for k in NATURAL_RESUMABLE_KEYS)
                + " may"
            )
    return saved.replace(**changes) if changes else saved


def _train_natural(
    cfg: NaturalConfig, out: Path | None, resume: bool, json_lines: bool, quiet: bool
) -> None:
    """Run a natural task; exit 0 at its end (there is no "solved" notion)."""
    warn_threads(cfg.threads)

    def on_epoch(record: EpochRecord) -> None:
        if json_lines:
            emit_json(record.to_json())

    try:
        result = run_natural(
            cfg,
            out_dir=out,
            resume=resume,
            on_epoch=on_epoch,
            progress=make_natural_progress(quiet, plain=json_lines),
        )
    except TrainingInterrupted as stop:
        _interrupted(stop, json_lines, natural=True)
    if json_lines:
        emit_json(result.to_json())
    else:
        print(natural_summary_text(result), flush=True)
    raise typer.Exit(EXIT_OK)


def _interrupted(
    stop: TrainingInterrupted, json_lines: bool, natural: bool = False
) -> typing.NoReturn:
    if json_lines:
        saved = str(stop.checkpoint) if stop.checkpoint else None
        solved = {} if natural else {"solved": False}  # natural tasks have no "solved"
        emit_json(
            {
                "event": "summary",
                **solved,
                "outcome": "interrupted",
                "updates": stop.updates,
                "checkpoint": saved,
            }
        )
    where = (
        f"; checkpoint saved, continue with --resume {stop.checkpoint}"
        if stop.checkpoint
        else "; no checkpoint (use --out DIR to keep one)"
    )
    note_interrupt(f"Interrupted at {stop.updates:,} updates{where}.")
    raise typer.Exit(EXIT_INTERRUPTED) from None


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
    extra = parse_settings(settings or [])
    both = sorted(k for k in extra if flags.get(k) is not None)
    if both:
        raise UsageError(f"{both[0]} is given both as a flag and with --set")
    flags = extra | {k: v for k, v in flags.items() if v is not None}
    if resume is not None and config is not None:
        raise UsageError(
            "--config cannot be combined with --resume: the checkpoint holds the config"
        )
    if resume is not None and out is not None and out.resolve() != resume.resolve():
        raise UsageError("--resume continues in its own directory; leave out --out")
    if resume is not None and is_natural_checkpoint(resume):
        cfg_n = _resumed_natural_config(resume, flags)
        _train_natural(cfg_n, resume, True, json_lines, quiet)
    if resume is None and is_natural_selection(flags, config):
        _train_natural(resolve_natural_config(flags, config), out, False, json_lines, quiet)
    if resume is not None:
        cfg = _resumed_config(resume, flags)
        out = resume
    else:
        cfg = resolve_config(flags, config)

    warn_threads(cfg.threads)

    def on_eval(record: EvalRecord) -> None:
        if json_lines:
            emit_json(record.to_json())

    try:
        result = run_training(
            cfg,
            out_dir=out,
            resume=resume is not None,
            on_eval=on_eval,
            progress=make_progress(quiet, plain=json_lines),
        )
    except TrainingInterrupted as stop:
        _interrupted(stop, json_lines)

    if json_lines:
        emit_json(result.to_json())
    else:
        print(summary_text(result), flush=True)
    raise typer.Exit(EXIT_OK if result.solved else EXIT_NOT_SOLVED)


TRAIN_HELP = "\n\n".join(
    [
        "Train on a synthetic task until it is solved or the update budget runs out.",
        "Solved means at most 1% errors on 10,000 fresh test sequences (the paper's criterion). "
        "Every evaluation first screens 1,000 sequences and measures the full 10,000 only when "
        "the screen is at or below 1%; solved is only ever declared on the full 10,000. For a "
        "length range (--len 50:200) the test sequences' lengths are drawn from the whole range, "
        "as in training, so solved means solved at every length.",
        "Settings: preset (tasks/NAME.toml) < --config FILE < flags.",
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
