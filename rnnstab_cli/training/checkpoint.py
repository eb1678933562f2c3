"""Checkpoints: everything needed to continue a run bit for bit, written so that a crash at any
moment leaves the previous checkpoint intact.

A checkpoint directory holds::

    params-<updates>-<tag>.safetensors     the model (eq. 2 parameters)
    optimizer-<updates>-<tag>.safetensors  optimiser state (velocities, squares; may be empty)
    clip-<updates>-<tag>.safetensors       the adaptive clipping rule's state (its norms and
                                           moving statistics); only with such a rule
    metrics.jsonl                          one JSON object per evaluation (or, once a
                                           campaign archived it, metrics.jsonl.gz)
    state.json                             counters, resolved config, dtype, library version,
                                           and the sha256 of both tensor files

Every file is written under a temporary name and moved into place with ``os.replace``; the
tensor files get fresh names each time and ``state.json`` is replaced last, so ``state.json``
always names a complete, earlier-written pair. The recorded sha256 catches a file damaged
afterwards (a torn copy, a truncated transfer). Old tensor files are removed once the new
``state.json`` is in place. A natural-task checkpoint (:mod:`.natural.checkpoint`) is written
the same way by :func:`write_checkpoint`, with tensor files of its own beside these two; a
finished run may drop what only continuing it needs (format version 2, see
:data:`BEST_ONLY_FORMAT_VERSION`): a natural run its last parameters, any run the adaptive
clipping rule's state (:func:`drop_clip_state`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import gzip
import hashlib
import json
import math
import os
import re
import secrets
import time
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final, TypeVar

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load as st_load
from safetensors.numpy import save as st_save

from rnnstab_cli import __version__
from rnnstab_cli.errors import CheckpointError, RnnstabError
from rnnstab_cli.training.config import TrainConfig

FORMAT: Final[str] = "rnnstab-checkpoint"
#: The version of a checkpoint that holds everything its run needs to continue.
FORMAT_VERSION: Final[int] = 1
#: The version of a finished run's checkpoint that dropped what only continuing it needs: a
#: natural run's last parameters
#: (:func:`rnnstab_cli.training.natural.checkpoint.drop_last_params`), the adaptive clipping
#: rule's state (:func:`drop_clip_state`). A reader of version 1 alone would call the first
#: damaged and, worse, continue the second with a fresh rule state; as version 2 such a reader
#: refuses both as newer than it reads instead. Every other checkpoint stays version 1, which
#: every rnnstab reads.
BEST_ONLY_FORMAT_VERSION: Final[int] = 2
#: The versions this rnnstab reads.
READ_FORMAT_VERSIONS: Final[tuple[int, ...]] = (FORMAT_VERSION, BEST_ONLY_FORMAT_VERSION)
STATE_FILE: Final[str] = "state.json"
#: The one tensor of the clipping-state file.
CLIP_STATE: Final[str] = "clip_state"
#: The stem of the clipping-state file (``clip-<updates>-<tag>.safetensors``).
CLIP_STEM: Final[str] = "clip"
#: The ``state.json`` key, true once :func:`drop_clip_state` removed the clipping rule's state.
CLIP_STATE_DROPPED: Final[str] = "clip_state_dropped"
METRICS_FILE: Final[str] = "metrics.jsonl"
#: The same log gzip-compressed (:func:`archive_metrics`): a finished run's evaluations cost
#: a sixth of the bytes, which keeps a committed campaign small.
METRICS_ARCHIVE: Final[str] = METRICS_FILE + ".gz"

ConfigT = TypeVar("ConfigT")
StateT = TypeVar("StateT")
FieldsT = TypeVar("FieldsT")

#: The largest counter a checkpoint or store may hold (updates, evaluations, records): beyond
#: any run (2⁵³, where float64 stops counting exactly), so a larger one is damage.
MAX_COUNT: Final[int] = 2**53
#: A temporary file of an interrupted write (`_write_atomic`), older than this, is stale.
STALE_TMP_SECONDS: Final[float] = 60.0
_TMP_NAME: Final = re.compile(r"^\..+\.[0-9a-f]{8}\.tmp$")


class FieldError(ValueError):
    """A value read from a checkpoint or store that has the wrong type or range; the caller
    says where it came from."""


def check_count(name: str, value: object) -> int:
    """A counter: an integer (not a bool) in 0..MAX_COUNT."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise FieldError(f"{name} must be an integer, got {value!r}")
    if not 0 <= value <= MAX_COUNT:
        raise FieldError(f"{name} must be in 0..2^53, got {value}")
    return value


def check_number(name: str, value: object, *, signed: bool = False) -> float:
    """A finite number, ≥ 0 unless ``signed``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise FieldError(f"{name} must be a number, got {value!r}")
    if not math.isfinite(value) or (not signed and value < 0):
        raise FieldError(f"{name} must be finite{'' if signed else ' and ≥ 0'}, got {value!r}")
    return float(value)


def fields_from_json(
    cls: type[FieldsT],
    data: object,
    where: str,
    nested: Mapping[str, Callable[[object, str], Any]] | None = None,
    signed: frozenset[str] = frozenset(),
) -> FieldsT:
    """A flat frozen dataclass read back from JSON with every field checked against its
    annotation: ints are counters (:func:`check_count`), floats finite and ≥ 0 (unless in
    ``signed``), bools bools; ``X | None`` also admits null. ``nested`` reads the fields that
    are dataclasses themselves. Missing fields take their defaults; unknown ones are refused.
    FieldError names the field as ``where.name``."""
    if not isinstance(data, Mapping):
        raise FieldError(f"{where} must be an object, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    # ``cls`` is a dataclass type by contract (a TypeVar mypy cannot bound to dataclasses).
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(str(k) for k in data if k not in names)
    if unknown:
        raise FieldError(f"{where} has an unknown field {unknown[0]!r}")
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        if required and f.name not in data:
            raise FieldError(f"{where}.{f.name} is missing")
    values: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{where}.{key}"
        if nested and key in nested:
            values[key] = nested[key](value, name)
            continue
        hint = hints[key]
        args = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
        if value is None:
            if type(None) not in args:
                raise FieldError(f"{name} must not be null")
            values[key] = None
        elif bool in args:
            if not isinstance(value, bool):
                raise FieldError(f"{name} must be true or false, got {value!r}")
            values[key] = value
        elif int in args:
            values[key] = check_count(name, value)
        elif float in args:
            values[key] = check_number(name, value, signed=key in signed)
        else:
            raise AssertionError(f"{cls.__name__}.{key}: unhandled annotation {hint}")
    return cls(**values)


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
    # The clipping rule's threshold in force, over the updates that had one (a rule in its
    # warm-up, or none at all, has none).
    clip_threshold_sum: float = 0.0
    clip_threshold_n: int = 0

    def add(
        self,
        loss: np.ndarray,
        grad_norm: np.ndarray,
        omega: np.ndarray,
        clipped: np.ndarray,
        skipped: np.ndarray,
        omega_pairs: np.ndarray | None = None,
        clip_threshold: np.ndarray | None = None,
    ) -> PeriodTotals:
        ok = ~skipped & np.isfinite(loss) & np.isfinite(grad_norm)  # (K,)
        has_t = np.isfinite(clip_threshold) if clip_threshold is not None else None
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
            clip_threshold_sum=self.clip_threshold_sum
            + (float(clip_threshold[has_t].sum()) if clip_threshold is not None else 0.0),
            clip_threshold_n=self.clip_threshold_n + (int(has_t.sum()) if has_t is not None else 0),
        )

    def mean_clip_threshold(self) -> float:
        """The mean threshold in force over the period's updates that had one; NaN if none."""
        n = self.clip_threshold_n
        return self.clip_threshold_sum / n if n else math.nan

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

    def finished(self, config: TrainConfig) -> bool:
        """Whether the run has nothing left to do under ``config``: solved, or its update
        budget spent (a larger budget given on resume may still continue it)."""
        return self.solved or self.updates >= config.max_updates

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: object) -> RunState:
        """Read back :meth:`to_json`'s output; FieldError names a field of the wrong type or
        range (a test error outside [0, 1], a negative counter, NaN)."""
        state = fields_from_json(
            cls,
            data,
            "run_state",
            nested={"period": lambda v, w: fields_from_json(PeriodTotals, v, w)},
        )
        err = state.last_test_error
        if err is not None and err > 1:
            raise FieldError(f"run_state.last_test_error must be in [0, 1], got {err}")
        if state.period.finite > state.period.updates:
            raise FieldError("run_state.period counts more finite updates than updates")
        if state.last_eval_updates is not None and state.last_eval_updates > state.updates:
            raise FieldError("run_state.last_eval_updates is beyond run_state.updates")
        return state


@dataclass(frozen=True)
class Checkpoint:
    config: TrainConfig
    params: dict[str, np.ndarray]
    optimizer_state: dict[str, np.ndarray] | None
    state: RunState
    library_version: str = __version__
    #: The clipping rule's state (Trainer.clip_state); None for the rules that keep none (a
    #: checkpoint without it, e.g. one written before the adaptive rules, loads as None).
    clip_state: np.ndarray | None = None
    #: True when :func:`drop_clip_state` removed the adaptive rule's state: the run's record
    #: (scored, exported) but no longer a run that can be continued.
    clip_state_dropped: bool = False

    def check_continuable(self, directory: str | os.PathLike[str]) -> None:
        """CheckpointError when the run cannot be continued: its clipping state was dropped."""
        if self.clip_state_dropped:
            raise CheckpointError(
                f"checkpoint {str(directory)!r} is a finished run kept without its clipping "
                "rule's state: it cannot be continued; train a new run"
            )


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
    }
    write_checkpoint(
        directory,
        updates=ckpt.state.updates,
        tensors={
            "params": ckpt.params,
            "optimizer": ckpt.optimizer_state,
            CLIP_STEM: None if ckpt.clip_state is None else {CLIP_STATE: ckpt.clip_state},
        },
        meta={"format": FORMAT, "dtype": ckpt.config.dtype},
        state=state,
        metrics=metrics,
    )


def write_checkpoint(
    directory: str | os.PathLike[str],
    *,
    updates: int,
    tensors: Mapping[str, Mapping[str, np.ndarray] | None],
    meta: Mapping[str, str],
    state: Mapping[str, Any],
    metrics: Sequence[Mapping[str, Any]],
) -> None:
    """The atomic write behind every kind of checkpoint (see the module docstring).

    ``tensors`` maps a file stem to its arrays, or to None when there are none this time (an
    older file of that stem is still removed); ``"params"`` and ``"optimizer"`` are always
    there, the optimizer written as an empty file marked ``"empty"`` when None. ``meta`` goes
    into every tensor file's header; ``state.json`` is ``state`` followed by the files' names
    and sha256 and the number of metrics records. CheckpointError when the directory cannot be
    written.
    """
    d = Path(directory)
    try:
        d.mkdir(parents=True, exist_ok=True)
        tag = f"{updates:010d}-{secrets.token_hex(4)}"
        files: dict[str, dict[str, Any]] = {}
        for stem, arrays in tensors.items():
            if arrays is None and stem != "optimizer":
                continue
            data = st_save(_contiguous(arrays or {}), metadata=dict(meta))
            name = f"{stem}-{tag}.safetensors"
            _write_atomic(d / name, data)
            files[stem] = {"name": name, "sha256": _sha256(data)}
        files["optimizer"]["empty"] = tensors["optimizer"] is None
        lines = "".join(_json_line(m) + "\n" for m in metrics)
        _write_atomic(d / METRICS_FILE, lines.encode())
        full_state = {**state, "files": files, "metrics_records": len(metrics)}
        _write_atomic(d / STATE_FILE, _state_bytes(full_state))
        _fsync_dir(d)
        # The plain log now holds every record: an archive of an earlier one is out of date.
        with contextlib.suppress(FileNotFoundError):
            (d / METRICS_ARCHIVE).unlink()
        keep = {f["name"] for f in files.values()}
        prefixes = tuple(f"{stem}-" for stem in tensors)
        now = time.time()
        for old in d.iterdir():
            if old.name.startswith(prefixes) and old.name not in keep:
                with contextlib.suppress(FileNotFoundError):
                    old.unlink()
            elif _TMP_NAME.match(old.name):
                _remove_stale(old, now)
    except OSError as e:
        raise CheckpointError(f"cannot write checkpoint to {str(d)!r}: {e.strerror or e}") from e


def _state_bytes(state: Mapping[str, Any]) -> bytes:
    return (json.dumps(state, indent=2) + "\n").encode()


def replace_state(directory: str | os.PathLike[str], state: Mapping[str, Any]) -> None:
    """Replace ``state.json`` alone, atomically and durably, for a change that writes no tensor
    file (``state`` is the whole new content, ``files`` and ``metrics_records`` included). A
    file it no longer names may be removed only after this returns: until then the old
    ``state.json``, which may still name it, is the one a crash leaves. CheckpointError when
    the directory cannot be written."""
    d = Path(directory)
    try:
        _write_atomic(d / STATE_FILE, _state_bytes(state))
        _fsync_dir(d)
    except OSError as e:
        raise CheckpointError(f"cannot write checkpoint to {str(d)!r}: {e.strerror or e}") from e


def _remove_stale(tmp: Path, now: float) -> None:
    """Remove a temporary file left by a write that was killed (kill -9, power loss) before it
    could clean up. Only old ones: a younger one may be another writer's, mid-write."""
    with contextlib.suppress(OSError):
        if now - tmp.stat().st_mtime > STALE_TMP_SECONDS:
            tmp.unlink()


def _contiguous(arrays: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {k: np.ascontiguousarray(v) for k, v in arrays.items()}


def damaged(d: Path, why: str) -> CheckpointError:
    return CheckpointError(f"checkpoint {str(d)!r} is damaged: {why}")


def read_tensors(d: Path, entry: Mapping[str, Any], what: str) -> dict[str, np.ndarray]:
    """The arrays of one tensor file named in ``state.json``, checked against its sha256."""
    if not isinstance(entry, Mapping):
        raise damaged(d, f"bad {what} file entry in {STATE_FILE}")
    name = entry.get("name")
    if not isinstance(name, str) or "/" in name or name.startswith("."):
        raise damaged(d, f"bad {what} file entry in {STATE_FILE}")
    try:
        data = (d / name).read_bytes()
    except FileNotFoundError:
        raise damaged(d, f"{what} file {name} is missing") from None
    except OSError as e:
        raise damaged(d, f"cannot read {name}: {e.strerror or e}") from None
    if _sha256(data) != entry.get("sha256"):
        raise damaged(d, f"{name} does not match the sha256 recorded in {STATE_FILE}")
    try:
        return dict(st_load(data))
    except SafetensorError as e:
        raise damaged(d, f"{name} is not a valid safetensors file ({e})") from None


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
        raise damaged(d, f"{STATE_FILE} is unreadable ({e})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{str(d / STATE_FILE)!r} is not an rnnstab checkpoint")
    version = state.get("format_version")
    # `in` alone would take True for 1 (True == 1) and 2.0 for 2.
    if type(version) is not int or version not in READ_FORMAT_VERSIONS:
        raise CheckpointError(
            f"checkpoint {str(d)!r} has format version {version!r}; this rnnstab "
            f"({__version__}) reads versions {', '.join(map(str, READ_FORMAT_VERSIONS))}"
        )
    return state


def load_config(directory: str | os.PathLike[str]) -> TrainConfig:
    """The resolved config a checkpoint was trained with (no tensors read)."""
    d = Path(directory)
    return config_in_state(d, read_state(d), TrainConfig.from_dict)


def config_in_state(
    d: Path, state: Mapping[str, Any], from_dict: Callable[..., ConfigT]
) -> ConfigT:
    """The config that ``state.json`` (``state``, read from ``d``) records, read back by the
    config class's ``from_dict``; CheckpointError when it is missing or no longer valid."""
    if not isinstance(state.get("config"), Mapping):
        raise damaged(d, f"{STATE_FILE} has no usable config (not an object)")
    try:
        return from_dict(state["config"], source=f"{d / STATE_FILE}")
    except (KeyError, TypeError, AttributeError) as e:
        raise damaged(d, f"{STATE_FILE} has no usable config ({e})") from None
    except RnnstabError as e:
        raise CheckpointError(f"checkpoint {str(d)!r} has an incompatible config: {e}") from None


def load_checkpoint(directory: str | os.PathLike[str]) -> Checkpoint:
    """Read and verify a checkpoint; CheckpointError (one line) if anything is off."""
    d = Path(directory)
    state = read_state(d)
    config = load_config(d)
    run_state, params, opt_state = read_training_state(d, state, RunState.from_json)
    task = config.make_task()
    expected = model_shapes(config.hidden, task.n_in, task.n_out)
    check_tensors(d, params, expected, config.dtype, "parameter")
    if opt_state is not None:
        check_tensors(d, opt_state, expected, config.dtype, "optimizer")
    clip_state = read_clip_state(d, state)
    return Checkpoint(
        config,
        params,
        opt_state,
        run_state,
        str(state.get("library_version")),
        clip_state,
        dropped_flag(d, state, CLIP_STATE_DROPPED),
    )


def drop_clip_state(directory: str | os.PathLike[str]) -> bool:
    """Make a finished run's checkpoint in ``directory`` forget its adaptive clipping rule's
    state. That state serves only to continue the run, and one rule's grows with it (the
    percentile rule keeps every earlier norm: 8 bytes per update, 1.6 MB after 200,000), so a
    campaign that keeps hundreds of finished runs drops it from each one it stores. Returns
    whether the checkpoint holds no clipping state now (a rule that keeps none included).

    Only a finished run (:meth:`RunState.finished` under its checkpointed config) is changed;
    an unfinished one is left alone (False). ``state.json`` is replaced first, without the
    file, as format version 2 with :data:`CLIP_STATE_DROPPED`; the file is removed after, so a
    crash in between leaves a checkpoint that loads as dropped and an unreferenced file that
    the next call removes. CheckpointError for a checkpoint that is damaged or cannot be
    written."""
    d = Path(directory)
    files = read_state(d).get("files")
    # Most runs' rules keep no state: state.json alone says so, without reading the tensors
    # (a campaign asks this of every stored run each time it starts).
    if isinstance(files, Mapping) and CLIP_STEM in files:
        ckpt = load_checkpoint(d)  # verified before anything is removed
        if not ckpt.state.finished(ckpt.config):
            return False
        drop_tensor_files(d, read_state(d), {CLIP_STEM: CLIP_STATE_DROPPED})
    remove_tensor_files(d, CLIP_STEM)
    return True


def drop_tensor_files(d: Path, state: Mapping[str, Any], drops: Mapping[str, str]) -> None:
    """Replace ``state.json`` (its current content ``state``) by one that no longer lists the
    tensor files of ``drops``' stems, says so by each one's flag and is format version 2
    (:data:`BEST_ONLY_FORMAT_VERSION`), in one atomic write. The files themselves stay until
    :func:`remove_tensor_files`, which may run only after this returns."""
    files = {k: v for k, v in state["files"].items() if k not in drops}
    new = {k: v for k, v in state.items() if k != "files"}
    new.update({"format_version": BEST_ONLY_FORMAT_VERSION, "files": files})
    new.update({flag: True for flag in drops.values()})
    replace_state(d, new)


def remove_tensor_files(d: Path, stem: str) -> None:
    """Remove every tensor file of ``stem`` in ``d``: call it only once ``state.json`` lists
    none (:func:`drop_tensor_files`). CheckpointError when one cannot be removed."""
    for old in d.glob(f"{stem}-*.safetensors"):
        try:
            old.unlink(missing_ok=True)
        except OSError as e:
            raise CheckpointError(f"cannot remove {str(old)!r}: {e.strerror or e}") from e


def dropped_flag(d: Path, state: Mapping[str, Any], flag: str) -> bool:
    """Whether ``state.json`` says (by ``flag``) that a file was dropped; false when absent."""
    dropped = state.get(flag, False)
    if not isinstance(dropped, bool):
        raise damaged(d, f"{STATE_FILE}: {flag} must be true or false")
    return dropped


def read_clip_state(d: Path, state: Mapping[str, Any]) -> np.ndarray | None:
    """The clipping rule's state, None when the checkpoint has none; the engine checks that it
    fits the rule when it is given back."""
    files = state.get("files")
    entry = files.get(CLIP_STEM) if isinstance(files, Mapping) else None
    if entry is None:
        return None
    if dropped_flag(d, state, CLIP_STATE_DROPPED):
        raise damaged(d, f"{STATE_FILE} lists the clipping state it says was dropped")
    arrays = read_tensors(d, entry, "clipping state")
    arr = arrays.get(CLIP_STATE)
    if arr is None or arr.dtype != np.float64 or arr.ndim != 1 or set(arrays) != {CLIP_STATE}:
        raise damaged(d, f"the clipping state file is not one float64 vector {CLIP_STATE!r}")
    return arr


def read_training_state(
    d: Path, state: Mapping[str, Any], run_state_from_json: Callable[[Any], StateT]
) -> tuple[StateT, dict[str, np.ndarray], dict[str, np.ndarray] | None]:
    """What every checkpoint that can continue holds besides its config: the run's counters
    (read back by ``run_state_from_json``), the parameters and the optimiser state (None when
    saved empty), the tensors checked against their sha256 but not yet against the config."""
    run_state = read_run_state(d, state, run_state_from_json)
    params = read_named_tensors(d, state, "params", "parameter")
    return run_state, params, read_optimizer_state(d, state)


def read_run_state(
    d: Path, state: Mapping[str, Any], run_state_from_json: Callable[[Any], StateT]
) -> StateT:
    """The run's counters, checked against the ones ``state.json`` keeps beside them."""
    try:
        run_state = run_state_from_json(state.get("run_state"))
        _check_counters(state, run_state)
    except FieldError as e:
        raise damaged(d, f"{STATE_FILE}: {e}") from None
    return run_state


def read_named_tensors(
    d: Path, state: Mapping[str, Any], stem: str, what: str
) -> dict[str, np.ndarray]:
    """The arrays of the tensor file ``state.json`` lists under ``files.<stem>``; a checkpoint
    that lists none is incomplete."""
    try:
        return read_tensors(d, state["files"][stem], what)
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise incomplete(d, e) from None


def read_optimizer_state(d: Path, state: Mapping[str, Any]) -> dict[str, np.ndarray] | None:
    """The optimiser state, None when it was saved empty."""
    try:
        entry = state["files"]["optimizer"]
        opt = read_tensors(d, entry, "optimizer")
        empty = entry.get("empty", False)
        if not isinstance(empty, bool):
            raise FieldError(f"files.optimizer.empty must be true or false, got {empty!r}")
    except FieldError as e:
        raise damaged(d, f"{STATE_FILE}: {e}") from None
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise incomplete(d, e) from None
    return None if empty else opt


def _check_counters(state: Mapping[str, Any], run_state: object) -> None:
    """The counters ``state.json`` keeps beside the run state agree with it."""
    records = check_count("metrics_records", state.get("metrics_records", 0))
    eval_index = getattr(run_state, "eval_index", records)
    if eval_index > records:
        raise FieldError(
            f"run_state.eval_index ({eval_index}) is beyond metrics_records ({records})"
        )
    counters = state.get("counters")
    if counters is None:
        return
    if not isinstance(counters, Mapping):
        raise FieldError(f"counters must be an object, got {counters!r}")
    for key in ("updates", "eval_index"):
        if key in counters:
            value = check_count(f"counters.{key}", counters[key])
            if value != getattr(run_state, key):
                raise FieldError(f"counters.{key} ({value}) differs from run_state.{key}")


def incomplete(d: Path, error: Exception) -> CheckpointError:
    return damaged(d, f"{STATE_FILE} is incomplete ({error})")


def model_shapes(hidden: int, n_in: int, n_out: int) -> dict[str, tuple[int, ...]]:
    """The shape of each parameter of eq. (2) (and of each optimiser slot, which mirrors it)."""
    h = hidden
    return {"W_rec": (h, h), "W_in": (h, n_in), "b": (h,), "W_out": (n_out, h), "b_out": (n_out,)}


def check_tensors(
    d: Path,
    arrays: Mapping[str, np.ndarray],
    expected: Mapping[str, tuple[int, ...]],
    dtype: str,
    what: str,
    *,
    shapes_known: bool = True,
) -> None:
    """Every tensor of ``expected`` present with its shape and ``dtype``. ``shapes_known``
    False: the sizes could not be worked out from the checkpoint, so no tensor fits."""
    for name, shape in expected.items():
        a = arrays.get(name)
        if a is None:
            raise CheckpointError(f"checkpoint {str(d)!r}: {what} tensor {name} is missing")
        if not shapes_known or a.shape != shape or a.dtype != np.dtype(dtype):
            raise CheckpointError(
                f"checkpoint {str(d)!r}: {what} tensor {name} is {a.dtype}{list(a.shape)}, "
                f"expected {dtype}{list(shape)} for its config"
            )
        if not np.isfinite(a).all():
            raise damaged(d, f"{what} tensor {name} holds NaN or infinite values")


def metrics_text(directory: str | os.PathLike[str]) -> str:
    """The metrics log of a checkpoint directory, plain or archived; the plain one wins when
    both exist (a checkpoint written after the archive). OSError (FileNotFoundError when there
    is neither), EOFError for a truncated archive, UnicodeDecodeError for garbage."""
    d = Path(directory)
    try:
        return (d / METRICS_FILE).read_text(encoding="utf-8")
    except FileNotFoundError:
        if not (d / METRICS_ARCHIVE).exists():
            raise
    with gzip.open(d / METRICS_ARCHIVE, "rt", encoding="utf-8") as f:
        return f.read()


def archive_metrics(directory: str | os.PathLike[str], lines: Sequence[str]) -> None:
    """Replace the metrics log of ``directory`` by ``lines`` (the same records, perhaps with
    fields dropped) gzip-compressed as :data:`METRICS_ARCHIVE`: written atomically before the
    plain log is removed, so a crash leaves one of them whole. ``mtime=0`` makes the archive a
    function of its records alone."""
    d = Path(directory)
    data = "".join(line + "\n" for line in lines).encode()
    _write_atomic(d / METRICS_ARCHIVE, gzip.compress(data, compresslevel=9, mtime=0))
    _fsync_dir(d)
    with contextlib.suppress(FileNotFoundError):
        (d / METRICS_FILE).unlink()


def read_metrics(directory: str | os.PathLike[str], records: int) -> list[dict[str, Any]]:
    """The first ``records`` lines of the metrics log: later lines (written just before a crash
    that kept ``state.json`` from being updated) belong to no checkpoint and are dropped."""
    d = Path(directory)
    if records == 0:
        return []
    try:
        lines = metrics_text(d).splitlines()
    except (OSError, EOFError, UnicodeDecodeError) as e:
        raise damaged(d, f"cannot read {METRICS_FILE} ({e})") from None
    if len(lines) < records:
        raise damaged(d, f"{METRICS_FILE} has {len(lines)} records, {records} expected")
    try:
        return [json.loads(line) for line in lines[:records]]
    except json.JSONDecodeError as e:
        raise damaged(d, f"{METRICS_FILE} is not JSON lines ({e})") from None
