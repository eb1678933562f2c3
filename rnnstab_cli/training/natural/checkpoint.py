"""Checkpoints of natural-task runs, written with the synthetic runs' atomic machinery
(:mod:`rnnstab_cli.training.checkpoint`): fresh tensor-file names, ``state.json`` replaced
last, sha256 of every tensor file recorded and checked.

Beyond the parameters and the optimiser state a natural checkpoint holds the carried hidden
state ``(B, H)`` when it was taken in the middle of a PTB epoch (truncated BPTT continues from
it) and the parameters of the best validation score so far (what ``rnnstab eval`` scores).
``state.json`` says ``"kind": "natural"`` and keeps PTB's vocabulary, so a checkpoint is never
scored on data with other symbol ids.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np

from rnnstab_cli import __version__
from rnnstab_cli.errors import CheckpointError
from rnnstab_cli.training.checkpoint import (
    FORMAT,
    FORMAT_VERSION,
    STATE_FILE,
    check_tensors,
    config_in_state,
    damaged,
    incomplete,
    model_shapes,
    read_state,
    read_tensors,
    read_training_state,
    write_checkpoint,
)
from rnnstab_cli.training.natural.config import NaturalConfig
from rnnstab_cli.training.natural.state import NaturalState

KIND: Final[str] = "natural"


@dataclass(frozen=True)
class NaturalCheckpoint:
    config: NaturalConfig
    params: dict[str, np.ndarray]
    optimizer_state: dict[str, np.ndarray] | None
    state: NaturalState
    vocab: list[str] | None = None  # PTB's symbols by id
    carry: np.ndarray | None = None  # (B, H): mid-epoch PTB state
    best_params: dict[str, np.ndarray] | None = None
    library_version: str = __version__


def is_natural_checkpoint(directory: str | Path) -> bool:
    """Whether ``directory`` holds a natural-task checkpoint (False when it holds none or a
    synthetic one; a damaged one raises CheckpointError)."""
    d = Path(directory)
    if not (d / STATE_FILE).exists():
        return False
    return read_state(d).get("kind") == KIND


def save_natural_checkpoint(
    directory: str | Path, ckpt: NaturalCheckpoint, metrics: Sequence[Mapping[str, Any]]
) -> None:
    """Write ``ckpt`` and the full metrics log; CheckpointError if the directory cannot be
    written. A crash at any point leaves the previous checkpoint intact."""
    state = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "kind": KIND,
        "library_version": ckpt.library_version,
        "dtype": ckpt.config.dtype,
        "config": ckpt.config.to_dict(),
        "run_state": ckpt.state.to_json(),
        "vocab": ckpt.vocab,
    }
    write_checkpoint(
        directory,
        updates=ckpt.state.updates,
        tensors={
            "params": ckpt.params,
            "optimizer": ckpt.optimizer_state,
            "carry": None if ckpt.carry is None else {"x": ckpt.carry},
            "best": ckpt.best_params,
        },
        meta={"format": FORMAT, "kind": KIND, "dtype": ckpt.config.dtype},
        state=state,
        metrics=metrics,
    )


def load_natural_config(directory: str | Path) -> NaturalConfig:
    """The config a natural checkpoint was trained with (no tensors read)."""
    d = Path(directory)
    state = read_state(d)
    if state.get("kind") != KIND:
        raise CheckpointError(f"checkpoint {str(d)!r} is not a natural-task (music/ptb) run")
    return config_in_state(d, state, NaturalConfig.from_dict)


def load_natural_checkpoint(directory: str | Path) -> NaturalCheckpoint:
    """Read and verify a natural checkpoint; CheckpointError (one line) if anything is off."""
    d = Path(directory)
    config = load_natural_config(d)
    state = read_state(d)
    run_state, params, opt_state = read_training_state(d, state, NaturalState.from_json)
    try:
        files = state["files"]
        carry = read_tensors(d, files["carry"], "carried-state")["x"] if "carry" in files else None
        best = read_tensors(d, files["best"], "best-parameter") if "best" in files else None
        vocab = state.get("vocab")
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise incomplete(d, e) from None
    if vocab is not None and not (
        isinstance(vocab, list) and all(isinstance(v, str) for v in vocab)
    ):
        raise damaged(d, f"{STATE_FILE}: vocab must be a list of strings")
    _check_params(d, config, params, "parameter")
    if carry is not None:
        h = config.hidden
        if carry.ndim != 2 or carry.shape[1] != h or carry.dtype != np.dtype(config.dtype):
            raise damaged(
                d, f"the carried state is {carry.dtype}{list(carry.shape)}, expected (B, {h})"
            )
        if not np.isfinite(carry).all():
            raise damaged(d, "the carried state holds NaN or infinite values")
    if best is not None:
        _check_params(d, config, best, "best-parameter")
    return NaturalCheckpoint(
        config,
        params,
        opt_state,
        run_state,
        vocab,
        carry,
        best,
        str(state.get("library_version")),
    )


def _check_params(
    d: Path, config: NaturalConfig, arrays: Mapping[str, np.ndarray], what: str
) -> None:
    # The data set is not read here, so its width comes from W_in (inputs = outputs here).
    w_in = arrays.get("W_in")
    n = 0 if w_in is None or w_in.ndim != 2 else w_in.shape[1]
    expected = model_shapes(config.hidden, n, n)
    check_tensors(d, arrays, expected, config.dtype, what, shapes_known=n != 0)
