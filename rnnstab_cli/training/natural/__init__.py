"""The paper's natural tasks (§4.2, Tables 1 and 2): polyphonic music and character-level
Penn Treebank, trained epoch by epoch with truncated BPTT and the appendix's schedules.

The public face: :func:`run_natural` (one run, in-process), :class:`NaturalConfig` and
:func:`resolve_natural_config` (presets < config file < overrides), :func:`score_split` and
the checkpoint readers used by ``rnnstab eval``.
"""

from rnnstab_cli.training.natural.checkpoint import (
    NaturalCheckpoint,
    is_natural_checkpoint,
    load_natural_checkpoint,
    load_natural_config,
)
from rnnstab_cli.training.natural.config import (
    NATURAL_RESUMABLE_KEYS,
    NaturalConfig,
    is_natural_selection,
    natural_preset_config,
    resolve_natural_config,
)
from rnnstab_cli.training.natural.data import load_natural_data, score_split
from rnnstab_cli.training.natural.loop import run_natural
from rnnstab_cli.training.natural.metrics import Score
from rnnstab_cli.training.natural.records import EpochRecord, NaturalResult

__all__ = [
    "NATURAL_RESUMABLE_KEYS",
    "EpochRecord",
    "NaturalCheckpoint",
    "NaturalConfig",
    "NaturalResult",
    "Score",
    "is_natural_checkpoint",
    "is_natural_selection",
    "load_natural_checkpoint",
    "load_natural_config",
    "load_natural_data",
    "natural_preset_config",
    "resolve_natural_config",
    "run_natural",
    "score_split",
]
