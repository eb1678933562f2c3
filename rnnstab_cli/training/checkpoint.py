"""Checkpoints: everything needed to continue a run bit for bit, written so that a crash at any
moment leaves the previous checkpoint intact.

A checkpoint directory holds::

    params-<updates>-<tag>.safetensors     the model (eq. 2 parameters)
    optimizer-<updates>-<tag>.safetensors  optimiser state (velocities, squares; may be empty)
    metrics.jsonl                          one JSON object per evaluation
    state.json                             counters, resolved config, dtype, library version,
                                           and the sha256 of both tensor files

Every file is written under a temporary name and moved into place with ``os.replace``; the
tensor files get fresh names each time and ``state.json`` is replaced last, so ``state.json``
always names a complete, earlier-written pair. The recorded sha256 catches a file damaged
afterwards (a torn copy, a truncated transfer). Old tensor files are removed once the new
``state.json`` is in place.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load as st_load
from safetensors.numpy import save as st_save

from rnnstab_cli import __version__
from rnnstab_cli.errors import CheckpointError, RnnstabError
from rnnstab_cli.training.config import TrainConfig

FORMAT: Final[str] = "rnnstab-checkpoint"
FORMAT_VERSION: Final[int] = 1
STATE_FILE: Final[str] = "state.json"
METRICS_FILE: Final[str] = "metrics.jsonl"
_TENSOR_PREFIXES: Final[tuple[str, ...]] = ("params-", "optimizer-")


@dataclass(frozen=True)
class PeriodTotals:
    """Sums over the updates since the last evaluation, kept in the checkpoint so that an
    evaluation's averages are the same whether or not the run was interrupted in between."""

    updates: int = 0
    finite: int = 0  # updates whose loss and gradient were finite
    loss_sum: float = 0.0
    grad_norm_sum: float = 0.0
    omega_sum: float = 0.0
    clipped: int = 0
    skipped: int = 0
    omega_pairs_sum: float = 0.0  # (k, example) pairs that carried error signal (eq. 9)

    def add(
        self,
        loss: np.ndarray,
        grad_norm: np.ndarray,
        omega: np.ndarray,
        clipped: np.ndarray,
        skipped: np.ndarray,
        omega_pairs: np.ndarray | None = None,
    ) -> PeriodTotals:
        ok = ~skipped & np.isfinite(loss) & np.isfinite(grad_norm)  # (K,)
        return PeriodTotals(
            updates=self.updates + len(loss),
            finite=self.finite + int(ok.sum()),
            loss_sum=self.loss_sum + float(loss[ok].sum()),
            grad_norm_sum=self.grad_norm_sum + float(grad_norm[ok].sum()),
            omega_sum=self.omega_sum + float(omega[ok].sum()),
            clipped=self.clipped + int(clipped.sum()),
            skipped=self.skipped + int(skipped.sum()),
            omega_pairs_sum=self.omega_pairs_sum
            + (float(omega_pairs[ok].sum()) if omega_pairs is not None else 0.0),
        )

    def mean(self, name: str) -> float:
        return getattr(self, f"{name}_sum") / self.finite if self.finite else math.nan

    def rate(self, name: str) -> float:
        return getattr(self, name) / self.updates if self.updates else math.nan


@dataclass(frozen=True)
class RunState:
    """Where a run stands: the counters that, with the config, fix everything that follows."""

    updates: int = 0
    eval_index: int = 0  # evaluations done = records in the metrics log
    wall_time: float = 0.0  # seconds spent training, summed over sessions
    period: PeriodTotals = field(default_factory=PeriodTotals)
    solved: bool = False
    last_eval_updates: int | None = None
    last_test_error: float | None = None
    last_test_sequences: int | None = None
    last_test_full: bool = False
    last_spectral_radius: float | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RunState:
        d = dict(data)
        d["period"] = PeriodTotals(**d.get("period", {}))
        return cls(**d)


@dataclass(frozen=True)
class Checkpoint:
    config: TrainConfig
    params: dict[str, np.ndarray]
    optimizer_state: dict[str, np.ndarray] | None
    state: RunState
    library_version: str = __version__


def has_checkpoint(directory: str | os.PathLike[str]) -> bool:
    return (Path(directory) / STATE_FILE).exists()


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that ``path`` is either the old file or all of the new."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _fsync_dir(directory: Path) -> None:
    # Makes the renames durable; not every platform can open a directory, hence the guard.
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _json_line(record: Mapping[str, Any]) -> str:
    return json.dumps(record, allow_nan=False, separators=(",", ":"))


def save_checkpoint(
    directory: str | os.PathLike[str],
    ckpt: Checkpoint,
    metrics: Sequence[Mapping[str, Any]],
) -> None:
    """Write ``ckpt`` into ``directory`` with the full metrics log ``metrics`` (one record per
    evaluation so far). Raises CheckpointError when the directory cannot be written."""
    d = Path(directory)
    try:
        d.mkdir(parents=True, exist_ok=True)
        tag = f"{ckpt.state.updates:010d}-{secrets.token_hex(4)}"
        params_name = f"params-{tag}.safetensors"
        opt_name = f"optimizer-{tag}.safetensors"
        meta = {"format": FORMAT, "dtype": ckpt.config.dtype}
        params_bytes = st_save(_contiguous(ckpt.params), metadata=meta)
        opt_bytes = st_save(_contiguous(ckpt.optimizer_state or {}), metadata=meta)
        _write_atomic(d / params_name, params_bytes)
        _write_atomic(d / opt_name, opt_bytes)
        lines = "".join(_json_line(m) + "\n" for m in metrics)
        _write_atomic(d / METRICS_FILE, lines.encode())
        state = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "library_version": ckpt.library_version,
            "dtype": ckpt.config.dtype,
            "counters": {
                "updates": ckpt.state.updates,
                "chunk_index": ckpt.state.updates // ckpt.config.chunk,
                "chunk_offset": ckpt.state.updates % ckpt.config.chunk,
                "eval_index": ckpt.state.eval_index,
            },
            "run_state": ckpt.state.to_json(),
            "config": ckpt.config.to_dict(),
            "files": {
                "params": {"name": params_name, "sha256": _sha256(params_bytes)},
                "optimizer": {
                    "name": opt_name,
                    "sha256": _sha256(opt_bytes),
                    "empty": ckpt.optimizer_state is None,
                },
            },
            "metrics_records": len(metrics),
        }
        _write_atomic(d / STATE_FILE, (json.dumps(state, indent=2) + "\n").encode())
        _fsync_dir(d)
        keep = {params_name, opt_name}
        for old in d.iterdir():
            if old.name.startswith(_TENSOR_PREFIXES) and old.name not in keep:
                with contextlib.suppress(FileNotFoundError):
                    old.unlink()
    except OSError as e:
        raise CheckpointError(f"cannot write checkpoint to {str(d)!r}: {e.strerror or e}") from e


def _contiguous(arrays: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {k: np.ascontiguousarray(v) for k, v in arrays.items()}


def _damaged(d: Path, why: str) -> CheckpointError:
    return CheckpointError(f"checkpoint {str(d)!r} is damaged: {why}")


def _read_tensors(d: Path, entry: Mapping[str, Any], what: str) -> dict[str, np.ndarray]:
    name = entry.get("name")
    if not isinstance(name, str) or "/" in name or name.startswith("."):
        raise _damaged(d, f"bad {what} file entry in {STATE_FILE}")
    try:
        data = (d / name).read_bytes()
    except FileNotFoundError:
        raise _damaged(d, f"{what} file {name} is missing") from None
    except OSError as e:
        raise _damaged(d, f"cannot read {name}: {e.strerror or e}") from None
    if _sha256(data) != entry.get("sha256"):
        raise _damaged(d, f"{name} does not match the sha256 recorded in {STATE_FILE}")
    try:
        return dict(st_load(data))
    except SafetensorError as e:
        raise _damaged(d, f"{name} is not a valid safetensors file ({e})") from None


def read_state(directory: str | os.PathLike[str]) -> dict[str, Any]:
    """``state.json`` of a checkpoint, checked for format and version."""
    d = Path(directory)
    if not d.is_dir():
        raise CheckpointError(f"no checkpoint at {str(d)!r}: not a directory")
    try:
        state = json.loads((d / STATE_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CheckpointError(f"no checkpoint in {str(d)!r} ({STATE_FILE} is missing)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise _damaged(d, f"{STATE_FILE} is unreadable ({e})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{str(d / STATE_FILE)!r} is not an rnnstab checkpoint")
    if state.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"checkpoint {str(d)!r} has format version {state.get('format_version')!r}; "
            f"this rnnstab ({__version__}) reads version {FORMAT_VERSION}"
        )
    return state


def load_config(directory: str | os.PathLike[str]) -> TrainConfig:
    """The resolved config a checkpoint was trained with (no tensors read)."""
    d = Path(directory)
    state = read_state(d)
    try:
        return TrainConfig.from_dict(state["config"], source=f"{d / STATE_FILE}")
    except (KeyError, TypeError) as e:
        raise _damaged(d, f"{STATE_FILE} has no usable config ({e})") from None
    except RnnstabError as e:
        raise CheckpointError(f"checkpoint {str(d)!r} has an incompatible config: {e}") from None


def load_checkpoint(directory: str | os.PathLike[str]) -> Checkpoint:
    """Read and verify a checkpoint; CheckpointError (one line) if anything is off."""
    d = Path(directory)
    state = read_state(d)
    config = load_config(d)
    try:
        files = state["files"]
        run_state = RunState.from_json(state["run_state"])
        params = _read_tensors(d, files["params"], "parameter")
        opt = _read_tensors(d, files["optimizer"], "optimizer")
        opt_state = None if files["optimizer"].get("empty") else opt
    except (KeyError, TypeError, ValueError) as e:
        raise _damaged(d, f"{STATE_FILE} is incomplete ({e})") from None
    _check_tensors(d, config, params, "parameter")
    if opt_state is not None:
        _check_tensors(d, config, opt_state, "optimizer")
    return Checkpoint(config, params, opt_state, run_state, str(state.get("library_version")))


def _check_tensors(
    d: Path, config: TrainConfig, arrays: Mapping[str, np.ndarray], what: str
) -> None:
    task = config.make_task()
    h = config.hidden
    expected = {
        "W_rec": (h, h),
        "W_in": (h, task.n_in),
        "b": (h,),
        "W_out": (task.n_out, h),
        "b_out": (task.n_out,),
    }
    for name, shape in expected.items():
        a = arrays.get(name)
        if a is None:
            raise CheckpointError(f"checkpoint {str(d)!r}: {what} tensor {name} is missing")
        if a.shape != shape or a.dtype != np.dtype(config.dtype):
            raise CheckpointError(
                f"checkpoint {str(d)!r}: {what} tensor {name} is {a.dtype}{list(a.shape)}, "
                f"expected {config.dtype}{list(shape)} for its config"
            )


def read_metrics(directory: str | os.PathLike[str], records: int) -> list[dict[str, Any]]:
    """The first ``records`` lines of the metrics log: later lines (written just before a crash
    that kept ``state.json`` from being updated) belong to no checkpoint and are dropped."""
    d = Path(directory)
    if records == 0:
        return []
    try:
        lines = (d / METRICS_FILE).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise _damaged(d, f"cannot read {METRICS_FILE} ({e})") from None
    if len(lines) < records:
        raise _damaged(d, f"{METRICS_FILE} has {len(lines)} records, {records} expected")
    try:
        return [json.loads(line) for line in lines[:records]]
    except json.JSONDecodeError as e:
        raise _damaged(d, f"{METRICS_FILE} is not JSON lines ({e})") from None
