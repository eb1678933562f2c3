"""Training runs, independent of the command line.

The top level holds what every kind of run shares: the settings (:mod:`.model_settings`,
:mod:`.value_checks`, and :mod:`.config` with the presets, config files and the synthetic
tasks' :class:`TrainConfig`), the session around a loop (:mod:`.run_session`), checkpoint I/O
(:mod:`.checkpoint`, :mod:`.resume`, :mod:`.transfer`), and the records and progress display.
:mod:`.synthetic` trains the paper's synthetic (pathological) tasks update by update;
:mod:`.natural` trains its natural tasks epoch by epoch.

The public face, for the synthetic tasks: :func:`run_training` (one run, in-process),
:class:`TrainConfig` and :func:`resolve_config` (presets < config file < overrides, with the
paper's method names), the records a run reports, and checkpoint reading for evaluation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rnnstab_cli.lazy_exports import lazy_exports

if TYPE_CHECKING:
    from rnnstab_cli.training.checkpoint import Checkpoint, load_checkpoint, load_config
    from rnnstab_cli.training.config import (
        METHODS,
        LengthRange,
        TrainConfig,
        all_config_keys,
        parse_length,
        preset_names,
        resolve_config,
    )
    from rnnstab_cli.training.records import (
        ChunkReport,
        EvalRecord,
        ProgressSink,
        RunResult,
        TrainingInterrupted,
    )
    from rnnstab_cli.training.synthetic.loop import TrainingDiverged, run_training

#: Where each public name lives. They are imported on first use, so that importing one
#: submodule (the presets' config, say) does not load the training loop and checkpoints too.
_EXPORTS: dict[str, str] = {
    "Checkpoint": "checkpoint",
    "load_checkpoint": "checkpoint",
    "load_config": "checkpoint",
    "all_config_keys": "config",
    "METHODS": "config",
    "LengthRange": "config",
    "TrainConfig": "config",
    "parse_length": "config",
    "preset_names": "config",
    "resolve_config": "config",
    "TrainingDiverged": "synthetic.loop",
    "run_training": "synthetic.loop",
    "ChunkReport": "records",
    "EvalRecord": "records",
    "ProgressSink": "records",
    "RunResult": "records",
    "TrainingInterrupted": "records",
}

__all__ = [
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
    "all_config_keys",
    "load_checkpoint",
    "load_config",
    "parse_length",
    "preset_names",
    "resolve_config",
    "run_training",
]


__getattr__ = lazy_exports(__name__, _EXPORTS)
