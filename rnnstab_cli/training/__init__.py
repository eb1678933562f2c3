"""Training runs for the paper's synthetic tasks, independent of the command line.

The public face: :func:`run_training` (one run, in-process), :class:`TrainConfig` and
:func:`resolve_config` (presets < config file < overrides, with the paper's method names), the
records a run reports, and checkpoint reading for evaluation.
"""

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
