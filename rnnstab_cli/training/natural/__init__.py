"""The paper's natural tasks (§4.2, Tables 1 and 2): polyphonic music and character-level
Penn Treebank, trained epoch by epoch with truncated BPTT and the appendix's schedules.

The public face: :func:`run_natural` (one run, in-process), :class:`NaturalConfig` and
:func:`resolve_natural_config` (presets < config file < overrides), :func:`score_split` and
the checkpoint readers used by ``rnnstab eval``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rnnstab_cli.lazy_exports import lazy_exports

if TYPE_CHECKING:
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

#: Where each public name lives, imported on first use (:mod:`rnnstab_cli.lazy_exports`): the
#: presets' config (:mod:`.config`) is read by every command that resolves a preset, which
#: needs neither the loop, the data loaders nor the checkpoints.
_EXPORTS: dict[str, str] = {
    "NaturalCheckpoint": "checkpoint",
    "is_natural_checkpoint": "checkpoint",
    "load_natural_checkpoint": "checkpoint",
    "load_natural_config": "checkpoint",
    "NATURAL_RESUMABLE_KEYS": "config",
    "NaturalConfig": "config",
    "is_natural_selection": "config",
    "natural_preset_config": "config",
    "resolve_natural_config": "config",
    "load_natural_data": "data",
    "score_split": "data",
    "run_natural": "loop",
    "Score": "metrics",
    "EpochRecord": "records",
    "NaturalResult": "records",
}

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

__getattr__ = lazy_exports(__name__, _EXPORTS)
