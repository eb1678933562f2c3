"""Training runs for the paper's synthetic tasks, independent of the command line.

The public face: :func:`run_training` (one run, in-process), :class:`TrainConfig` and
:func:`resolve_config` (presets < config file < overrides, with the paper's method names), the
records a run reports, and checkpoint reading for evaluation.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rnnstab_cli.training.checkpoint import Checkpoint, load_checkpoint, load_config
    from rnnstab_cli.training.config import (
        CONFIG_KEYS,
        METHODS,
        LengthRange,
        TrainConfig,
        parse_length,
        preset_names,
        resolve_config,
    )
    from rnnstab_cli.training.loop import TrainingDiverged, run_training
    from rnnstab_cli.training.records import (
        ChunkReport,
        EvalRecord,
        ProgressSink,
        RunResult,
        TrainingInterrupted,
    )

#: Where each public name lives. They are imported on first use, so that importing one
#: submodule (the presets' config, say) does not load the training loop and checkpoints too.
_EXPORTS: dict[str, str] = {
    "Checkpoint": "checkpoint",
    "load_checkpoint": "checkpoint",
    "load_config": "checkpoint",
    "CONFIG_KEYS": "config",
    "METHODS": "config",
    "LengthRange": "config",
    "TrainConfig": "config",
    "parse_length": "config",
    "preset_names": "config",
    "resolve_config": "config",
    "TrainingDiverged": "loop",
    "run_training": "loop",
    "ChunkReport": "records",
    "EvalRecord": "records",
    "ProgressSink": "records",
    "RunResult": "records",
    "TrainingInterrupted": "records",
}

__all__ = [
    "CONFIG_KEYS",
    "METHODS",
    "Checkpoint",
    "ChunkReport",
    "EvalRecord",
    "LengthRange",
    "ProgressSink",
    "RunResult",
    "TrainConfig",
    "TrainingDiverged",
    "TrainingInterrupted",
    "load_checkpoint",
    "load_config",
    "parse_length",
    "preset_names",
    "resolve_config",
    "run_training",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
