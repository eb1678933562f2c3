"""The rules for continuing a run from its checkpoint: the checkpoint holds the config, and only
the settings that do not change the run's trajectory so far (the budget, evaluation cadence,
threads, …: ``RESUMABLE_KEYS``, ``NATURAL_RESUMABLE_KEYS``) may be given again with new values.
``flags`` are the options as the command line gave them (None for an option not given); a
message names a setting as its option, ``--key-name``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rnnstab_cli.errors import UsageError
from rnnstab_cli.training.checkpoint import load_config
from rnnstab_cli.training.config import RESUMABLE_KEYS, TrainConfig, normalise_layer
from rnnstab_cli.training.natural import (
    NATURAL_RESUMABLE_KEYS,
    NaturalConfig,
    load_natural_config,
)

__all__ = ["resumed_config", "resumed_natural_config"]


def resumed_config(resume: Path, flags: dict[str, Any]) -> TrainConfig:
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


def resumed_natural_config(resume: Path, flags: dict[str, Any]) -> NaturalConfig:
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
