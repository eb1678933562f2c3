"""Checkpoints of natural-task runs, written with the synthetic runs' atomic machinery
(:mod:`rnnstab_cli.training.checkpoint`): fresh tensor-file names, ``state.json`` replaced
last, sha256 of every tensor file recorded and checked.

Beyond the parameters and the optimiser state a natural checkpoint holds the carried hidden
state ``(B, H)`` when it was taken in the middle of a PTB epoch (truncated BPTT continues from
it) and the parameters of the best validation score so far (what ``rnnstab eval`` scores).
``state.json`` says ``"kind": "natural"`` and keeps PTB's vocabulary, so a checkpoint is never
scored on data with other symbol ids.

A finished run needs its last parameters only to be continued, and they are as large as the
best ones: :func:`drop_last_params` removes them (a campaign does so for every run it stores),
leaving a checkpoint that ``rnnstab eval`` and ``rnnstab export`` read as before but that can
no longer be continued or scored with ``--last``.
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
    CLIP_STATE,
    CLIP_STATE_DROPPED,
    CLIP_STEM,
    FORMAT,
    FORMAT_VERSION,
    STATE_FILE,
    check_tensors,
    config_in_state,
    damaged,
    drop_tensor_files,
    dropped_flag,
    incomplete,
    model_shapes,
    read_clip_state,
    read_named_tensors,
    read_optimizer_state,
    read_run_state,
    read_state,
    read_tensors,
    remove_tensor_files,
    write_checkpoint,
)
from rnnstab_cli.training.natural.config import NaturalConfig
from rnnstab_cli.training.natural.state import NaturalState

KIND: Final[str] = "natural"
#: The ``state.json`` key, true once :func:`drop_last_params` removed the last parameters.
LAST_PARAMS_DROPPED: Final[str] = "last_params_dropped"
#: The stem of the last parameters' tensor file (``params-<updates>-<tag>.safetensors``).
_PARAMS_STEM: Final[str] = "params"


@dataclass(frozen=True)
class NaturalCheckpoint:
    config: NaturalConfig
    #: The last parameters; None only for a finished run that kept just its best ones
    #: (:func:`drop_last_params`), which cannot be continued.
    params: dict[str, np.ndarray] | None
    optimizer_state: dict[str, np.ndarray] | None
    state: NaturalState
    vocab: list[str] | None = None  # PTB's symbols by id
    carry: np.ndarray | None = None  # (B, H): mid-epoch PTB state
    best_params: dict[str, np.ndarray] | None = None
    library_version: str = __version__
    #: The adaptive clipping rule's state (Trainer.clip_state); None for the rules that keep
    #: none (norm, value, none) and in checkpoints written before natural runs had the rules.
    clip_state: np.ndarray | None = None


def kept_only_best(directory: str | Path, consequence: str) -> CheckpointError:
    """The one-line error for asking a best-only checkpoint for what it no longer has."""
    return CheckpointError(
        f"checkpoint {str(directory)!r} is a finished run that kept only its best validation "
        f"parameters (its last ones were dropped): {consequence}"
    )


def scored_params(
    ckpt: NaturalCheckpoint, directory: str | Path, *, last: bool = False
) -> tuple[dict[str, np.ndarray], str]:
    """The parameters ``rnnstab eval`` scores and which they are, ``"best"`` or ``"last"``: the
    best validation score's unless ``last`` is asked or the run has none yet (it never got
    past the untrained model's evaluation). CheckpointError for ``last`` on a run that kept
    only its best parameters."""
    if ckpt.best_params is not None and not last:
        return ckpt.best_params, "best"
    if ckpt.params is None:
        raise kept_only_best(directory, "leave out --last to use the best ones")
    return ckpt.params, "last"


def continuable_params(ckpt: NaturalCheckpoint, directory: str | Path) -> dict[str, np.ndarray]:
    """The last parameters, which a continued run starts from; CheckpointError when the run
    kept only its best ones."""
    if ckpt.params is None:
        raise kept_only_best(directory, "it cannot be continued; train a new run")
    return ckpt.params


def check_continuable(directory: str | Path) -> None:
    """CheckpointError when the checkpoint in ``directory`` kept only its best parameters,
    from ``state.json`` alone: said before a continued run loads its data."""
    if _dropped(Path(directory), read_state(directory)):
        raise kept_only_best(directory, "it cannot be continued; train a new run")


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
    if ckpt.params is None:
        # Only a run that can continue is saved; a best-only one comes from drop_last_params.
        raise ValueError("a natural checkpoint is saved with its last parameters")
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
            CLIP_STEM: None if ckpt.clip_state is None else {CLIP_STATE: ckpt.clip_state},
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
    dropped = _dropped(d, state)
    run_state = read_run_state(d, state, NaturalState.from_json)
    params = None if dropped else read_named_tensors(d, state, _PARAMS_STEM, "parameter")
    opt_state = read_optimizer_state(d, state)
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
    if dropped and best is None:
        raise damaged(d, f"{STATE_FILE} says the run kept only its best parameters but has none")
    if params is not None:
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
        read_clip_state(d, state),
    )


def _dropped(d: Path, state: Mapping[str, Any]) -> bool:
    """Whether ``state.json`` says the last parameters were dropped (and so lists none)."""
    dropped = dropped_flag(d, state, LAST_PARAMS_DROPPED)
    files = state.get("files")
    if dropped and isinstance(files, Mapping) and _PARAMS_STEM in files:
        raise damaged(d, f"{STATE_FILE} lists the last parameters it says were dropped")
    return dropped


def drop_last_params(directory: str | Path) -> bool:
    """Make the natural checkpoint in ``directory`` keep only its best validation parameters,
    the ones every reported figure and ``rnnstab eval`` use: its last parameters, as large
    again, only serve to continue the run. Returns whether the checkpoint keeps only its best
    parameters now (dropped by this call or an earlier one).

    Only a finished run that has best parameters is changed: finished means that the run's
    patience or budgets, as the checkpoint's config records them, stop it
    (:meth:`NaturalState.outcome`), so a run interrupted part-way, or one that never got past
    the untrained model's evaluation, is left alone (False). Its best parameters are verified
    (sha256, shapes, finite values) before anything is removed; CheckpointError for a
    checkpoint that is damaged or cannot be written.

    ``state.json`` is replaced first, without the ``params`` file and with format version 2
    (:data:`~rnnstab_cli.training.checkpoint.BEST_ONLY_FORMAT_VERSION`) and
    :data:`LAST_PARAMS_DROPPED`; the file is removed after. A crash in between leaves a
    checkpoint that loads as best-only, with an unreferenced file that the next call removes.
    The adaptive clipping rule's state goes the same way (:data:`CLIP_STATE_DROPPED`). Every
    other file (best parameters, optimiser state, carried state, metrics log) is kept as it
    is.
    """
    d = Path(directory)
    ckpt = load_natural_checkpoint(d)
    drops: dict[str, str] = {}
    if ckpt.params is not None:
        if ckpt.best_params is None or ckpt.state.outcome(ckpt.config) is None:
            return False
        drops[_PARAMS_STEM] = LAST_PARAMS_DROPPED
    # The clipping rule's state, too, serves only to continue the run (and one rule's grows
    # with it); also from a best-only checkpoint written before rules' states were dropped.
    if ckpt.clip_state is not None:
        drops[CLIP_STEM] = CLIP_STATE_DROPPED
    if drops:
        drop_tensor_files(d, read_state(d), drops)
    # Every such file is unreferenced now, including one a crash left after state.json was
    # replaced (write_checkpoint removes old tensor files by the same prefix).
    for stem in (_PARAMS_STEM, CLIP_STEM):
        remove_tensor_files(d, stem)
    return True


def _check_params(
    d: Path, config: NaturalConfig, arrays: Mapping[str, np.ndarray], what: str
) -> None:
    # The data set is not read here, so its width comes from W_in (inputs = outputs here).
    w_in = arrays.get("W_in")
    n = 0 if w_in is None or w_in.ndim != 2 else w_in.shape[1]
    expected = model_shapes(config.hidden, n, n)
    check_tensors(d, arrays, expected, config.dtype, what, shapes_known=n != 0)
