"""What ``rnnstab train`` does once its options are parsed (cli/train.py defines them): resolve
the config (preset, file, flags, or a checkpoint to resume), run the synthetic or natural
training loop, and say the outcome on stdout.
"""

from __future__ import annotations

import math
import tomllib
import typing
from pathlib import Path
from typing import Any

import typer

from rnnstab_cli.cli.common import (
    EXIT_INTERRUPTED,
    EXIT_NOT_SOLVED,
    EXIT_OK,
    emit_json,
    note_interrupt,
    warn_threads,
)
from rnnstab_cli.errors import UsageError
from rnnstab_cli.taskgen import SOLVED_ERROR_RATE
from rnnstab_cli.training.config import (
    resolve_config,
)
from rnnstab_cli.training.natural import (
    EpochRecord,
    NaturalConfig,
    NaturalResult,
    is_natural_checkpoint,
    is_natural_selection,
    resolve_natural_config,
    run_natural,
)
from rnnstab_cli.training.natural.metrics import UNITS
from rnnstab_cli.training.natural.progress import make_natural_progress
from rnnstab_cli.training.progress import make_progress
from rnnstab_cli.training.records import EvalRecord, RunResult, TrainingInterrupted
from rnnstab_cli.training.resume import resumed_config, resumed_natural_config
from rnnstab_cli.training.synthetic.loop import run_training


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
    "converged": "converged: validation stalled again while the learning rate was halving",
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


def run_train(
    flags: dict[str, Any],
    *,
    settings: list[str],
    config: Path | None,
    resume: Path | None,
    out: Path | None,
    json_lines: bool,
    quiet: bool,
) -> typing.NoReturn:
    """What `rnnstab train` does with its options (``flags``: the config keys given as flags,
    ``None`` where not given); ends with ``typer.Exit`` carrying the exit code."""
    extra = parse_settings(settings)
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
        cfg_n = resumed_natural_config(resume, flags)
        _train_natural(cfg_n, resume, True, json_lines, quiet)
    if resume is None and is_natural_selection(flags, config):
        _train_natural(resolve_natural_config(flags, config), out, False, json_lines, quiet)
    if resume is not None:
        cfg = resumed_config(resume, flags)
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
