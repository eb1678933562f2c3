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

import contextlib
import json
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
from safetensors.numpy import save as st_save

from rnnstab_cli import __version__
from rnnstab_cli.errors import CheckpointError, RnnstabError
from rnnstab_cli.training.checkpoint import (
    FORMAT,
    FORMAT_VERSION,
    METRICS_FILE,
    STATE_FILE,
    _fsync_dir,
    _json_line,
    _read_tensors,
    _sha256,
    _write_atomic,
    read_state,
)
from rnnstab_cli.training.natural.config import NaturalConfig
from rnnstab_cli.training.natural.state import NaturalState

KIND: Final[str] = "natural"
_FILES: Final[tuple[str, ...]] = ("params", "optimizer", "carry", "best")


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
    d = Path(directory)
    tensors: dict[str, dict[str, np.ndarray] | None] = {
        "params": ckpt.params,
        "optimizer": ckpt.optimizer_state or {},
        "carry": None if ckpt.carry is None else {"x": ckpt.carry},
        "best": ckpt.best_params,
    }
    try:
        d.mkdir(parents=True, exist_ok=True)
        tag = f"{ckpt.state.updates:010d}-{secrets.token_hex(4)}"
        meta = {"format": FORMAT, "kind": KIND, "dtype": ckpt.config.dtype}
        files: dict[str, Any] = {}
        for name, arrays in tensors.items():
            if arrays is None:
                continue
            data = st_save({k: np.ascontiguousarray(v) for k, v in arrays.items()}, metadata=meta)
            fname = f"{name}-{tag}.safetensors"
            _write_atomic(d / fname, data)
            files[name] = {"name": fname, "sha256": _sha256(data)}
        files["optimizer"]["empty"] = ckpt.optimizer_state is None
        _write_atomic(d / METRICS_FILE, "".join(_json_line(m) + "\n" for m in metrics).encode())
        state = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "kind": KIND,
            "library_version": ckpt.library_version,
            "dtype": ckpt.config.dtype,
            "config": ckpt.config.to_dict(),
            "run_state": ckpt.state.to_json(),
            "vocab": ckpt.vocab,
            "files": files,
            "metrics_records": len(metrics),
        }
        _write_atomic(d / STATE_FILE, (json.dumps(state, indent=2) + "\n").encode())
        _fsync_dir(d)
        keep = {f["name"] for f in files.values()}
        for old in d.iterdir():
            if old.name.startswith(tuple(f"{n}-" for n in _FILES)) and old.name not in keep:
                with contextlib.suppress(FileNotFoundError):
                    old.unlink()
    except OSError as e:
        raise CheckpointError(f"cannot write checkpoint to {str(d)!r}: {e.strerror or e}") from e


def _damaged(d: Path, why: str) -> CheckpointError:
    return CheckpointError(f"checkpoint {str(d)!r} is damaged: {why}")


def load_natural_config(directory: str | Path) -> NaturalConfig:
    """The config a natural checkpoint was trained with (no tensors read)."""
    d = Path(directory)
    state = read_state(d)
    if state.get("kind") != KIND:
        raise CheckpointError(f"checkpoint {str(d)!r} is not a natural-task (music/ptb) run")
    try:
        return NaturalConfig.from_dict(state["config"], source=str(d / STATE_FILE))
    except (KeyError, TypeError) as e:
        raise _damaged(d, f"{STATE_FILE} has no usable config ({e})") from None
    except RnnstabError as e:
        raise CheckpointError(f"checkpoint {str(d)!r} has an incompatible config: {e}") from None


def load_natural_checkpoint(directory: str | Path) -> NaturalCheckpoint:
    """Read and verify a natural checkpoint; CheckpointError (one line) if anything is off."""
    d = Path(directory)
    config = load_natural_config(d)
    state = read_state(d)
    try:
        files = state["files"]
        run_state = NaturalState.from_json(state["run_state"])
        params = _read_tensors(d, files["params"], "parameter")
        opt = _read_tensors(d, files["optimizer"], "optimizer")
        carry = _read_tensors(d, files["carry"], "carried-state")["x"] if "carry" in files else None
        best = _read_tensors(d, files["best"], "best-parameter") if "best" in files else None
        vocab = state.get("vocab")
    except (KeyError, TypeError, ValueError) as e:
        raise _damaged(d, f"{STATE_FILE} is incomplete ({e})") from None
    _check_params(d, config, params, "parameter")
    if best is not None:
        _check_params(d, config, best, "best-parameter")
    return NaturalCheckpoint(
        config,
        params,
        None if files["optimizer"].get("empty") else opt,
        run_state,
        vocab,
        carry,
        best,
        str(state.get("library_version")),
    )


def _check_params(
    d: Path, config: NaturalConfig, arrays: Mapping[str, np.ndarray], what: str
) -> None:
    h = config.hidden
    w_in = arrays.get("W_in")
    n = 0 if w_in is None or w_in.ndim != 2 else w_in.shape[1]  # inputs = outputs here
    expected = {"W_rec": (h, h), "W_in": (h, n), "b": (h,), "W_out": (n, h), "b_out": (n,)}
    for name, shape in expected.items():
        a = arrays.get(name)
        if a is None:
            raise CheckpointError(f"checkpoint {str(d)!r}: {what} tensor {name} is missing")
        if n == 0 or a.shape != shape or a.dtype != np.dtype(config.dtype):
            raise CheckpointError(
                f"checkpoint {str(d)!r}: {what} tensor {name} is {a.dtype}{list(a.shape)}, "
                f"expected {config.dtype}{list(shape)} for its config"
            )
