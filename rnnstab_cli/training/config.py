"""What a training run is: :class:`TrainConfig`, the presets (``rnnstab_cli/presets/*.toml``,
found by :mod:`rnnstab_cli.preset_files`), TOML config files, and the paper's method names.

A run's settings come from three layers, later ones winning::

    preset (presets/<name>.toml)  <  --config FILE  <  command-line flags

Every layer uses the same keys (:func:`all_config_keys`: each setting's declaration, see
:mod:`.settings`; ``-`` and ``_`` are interchangeable in TOML keys). :func:`resolve_config`
merges the layers, applies the method mapping and returns a validated, fully resolved
:class:`TrainConfig`; a sweep can call it in-process with a plain dict of overrides.

Methods (the paper's names, §4.1):

- ``sgd``: plain SGD, no clipping, α = 0;
- ``sgd-c``: SGD with norm clipping (Algorithm 1), α = 0;
- ``sgd-cr``: norm clipping plus the Ω regulariser (eq. 9) weighted by the preset's α.

``clip_mode`` set explicitly (file or flag) overrides the method's clipping, e.g. ``sgd-c`` with
``clip_mode = "value"`` is Mikolov's element-wise clipping. An explicit non-zero ``alpha`` with a
method that has Ω off is a contradiction and is refused.

The paper's natural tasks (§4.2: polyphonic music, character-level Penn Treebank) share these
layers and keys, plus the epoch-based settings of their own config; their presets
(``presets/music-*.toml``, ``presets/ptb-char*.toml``) resolve to a
:class:`~rnnstab_cli.training.natural.config.NaturalConfig` through
:func:`~rnnstab_cli.training.natural.config.resolve_natural_config`. :func:`resolve_config` and
:func:`preset_names` stay about the synthetic tasks.
"""

from __future__ import annotations

import difflib
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np

from rnnstab_cli.errors import UsageError
from rnnstab_cli.preset_files import preset_dir, preset_path
from rnnstab_cli.resources import batches_bytes, bptt_bytes, forward_bytes, model_bytes, require
from rnnstab_cli.taskgen import SOLVED_ERROR_RATE, TASK_NAMES, TEST_SEQUENCES, Task, make_task
from rnnstab_cli.toml_files import read_toml
from rnnstab_cli.training.model_settings import METHODS, ModelSettings
from rnnstab_cli.training.settings import (
    ValueType,
    coerce,
    config_keys,
    keys_with_role,
    setting,
    value_types,
)
from rnnstab_cli.training.value_checks import choice

DEVICES: Final[tuple[str, ...]] = ("cpu", "gpu")
#: The paper's natural tasks (§4.2), trained epoch by epoch (:mod:`.natural`).
NATURAL_TASKS: Final[tuple[str, ...]] = ("music", "ptb-char")

#: Updates per engine call when the config does not say: large enough that Python is out of
#: the per-step path, small enough that Ctrl-C and progress stay responsive.
DEFAULT_CHUNK: Final[int] = 100
#: Bound on one chunk's input array, so a prefetched chunk of a wide task (random permutation:
#: 100 inputs at length 200) stays small; the default chunk shrinks to fit.
CHUNK_BYTES: Final[int] = 32 * 2**20
#: The most test sequences an evaluation may draw: 1,000 times the paper's 10,000; more would
#: take days per evaluation.
MAX_TEST_SEQUENCES: Final[int] = 10_000_000
#: Sequences of the cheap first look at the test error; the full TEST_SEQUENCES follow only
#: when this screen is already at or below the success threshold.
DEFAULT_SCREEN: Final[int] = 1000


@dataclass(frozen=True)
class LengthRange:
    """Training sequence length: fixed (``lo == hi``) or drawn uniformly per batch."""

    lo: int
    hi: int

    @property
    def fixed(self) -> bool:
        return self.lo == self.hi

    def __str__(self) -> str:
        return str(self.lo) if self.fixed else f"{self.lo}:{self.hi}"

    def to_toml(self) -> int | str:
        return self.lo if self.fixed else str(self)


def parse_length(value: object) -> LengthRange:
    """``200`` or ``"200"`` → fixed; ``"50:200"`` → uniform per batch over 50..200."""
    if isinstance(value, LengthRange):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        lo = hi = value
    elif isinstance(value, str):
        parts = value.strip().split(":")
        try:
            nums = [int(p) for p in parts]
        except ValueError:
            nums = []
        if len(nums) == 1:
            lo = hi = nums[0]
        elif len(nums) == 2:
            lo, hi = nums
        else:
            raise UsageError(f"bad length {value!r}: expected N or MIN:MAX, e.g. 200 or 50:200")
    else:
        raise UsageError(f"bad length {value!r}: expected N or MIN:MAX, e.g. 200 or 50:200")
    if lo < 1 or hi < lo:
        raise UsageError(f"bad length {value!r}: need 1 ≤ MIN ≤ MAX")
    return LengthRange(lo, hi)


class TrainConfig(ModelSettings):
    """A fully resolved training run. Build it with :func:`resolve_config` (presets, files,
    method mapping) or directly; either way ``__post_init__`` validates every value and raises
    UsageError naming the bad one. The settings shared with the natural tasks are
    :class:`~.model_settings.ModelSettings`'."""

    length: LengthRange = setting(
        key="len", help="sequence length N, or a range 'MIN:MAX' drawn uniformly per batch"
    )
    task_options: Mapping[str, Any] = setting(
        default_factory=dict,
        help="table of task generator options, e.g. pattern_length for memorization",
    )
    max_updates: int = setting(default=100_000, at_least=1, role="resumable", help="update budget")
    eval_every: int = setting(
        default=1000, at_least=1, role="resumable", help="updates between evaluations"
    )
    # The chunk decides which batch each update sees, so it is fixed at construction (0: see
    # default_chunk) rather than re-derived from eval_every, which a resumed run may change.
    chunk: int = setting(
        default=0,
        at_least=0,
        help="updates per engine call (default: up to 100, fewer for wide inputs)",
    )
    eval_sequences: int = setting(
        default=TEST_SEQUENCES,
        at_least=1,
        at_most=MAX_TEST_SEQUENCES,
        role="resumable",
        help="test sequences behind a 'solved' verdict (paper: 10000)",
    )
    screen_sequences: int = setting(
        default=DEFAULT_SCREEN,
        at_least=0,
        at_most=MAX_TEST_SEQUENCES,
        role="resumable",
        help="sequences of the cheap first look at the test error (0: always full)",
    )
    solve_error: float = setting(
        default=SOLVED_ERROR_RATE,
        at_least=0.0,
        below=1.0,
        role="verdict",
        help="test error rate at or below which a run is solved (paper: 0.01; the "
        "authors' code: 0, no error of 10,000)",
    )
    device: str = setting(
        default="cpu", choices=DEVICES, role="resumable", engine=True, help="cpu | gpu"
    )
    # Measured cost: ~0.1% of training time (see synthetic/diagnostics.py).
    diagnostics: bool = setting(
        default=True,
        role="resumable",
        help="true | false: gradient-flow diagnostics at every evaluation (default true)",
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "task_options", dict(self.task_options))
        object.__setattr__(self, "length", parse_length(self.length))
        super().__post_init__()
        task = self.make_task()  # validates the name and options
        if self.length.lo < task.min_length:
            raise UsageError(
                f"length {self.length} is too short for task {self.task!r} "
                f"(minimum {task.min_length})"
            )
        if self.chunk == 0:
            object.__setattr__(self, "chunk", self.default_chunk())

    def default_chunk(self) -> int:
        """min(eval_every, 100) updates, fewer if that many batches would exceed CHUNK_BYTES."""
        n_in = self.make_task().n_in
        # Slack for the tasks whose sequences outgrow T: 1.1·T (addition), T + 2P (memorization).
        longest = (11 * self.length.hi) // 10 + 20
        per_batch = longest * self.batch * n_in * np.dtype(self.dtype).itemsize
        return max(1, min(self.eval_every, DEFAULT_CHUNK, CHUNK_BYTES // per_batch))

    def make_task(self) -> Task:
        return make_task(self.task, **self.task_options)

    def memory_needed(self) -> int:
        """Bytes of the large buffers a run of this config holds at once: the model, the
        BPTT buffers of one batch, a chunk of sampled batches and an evaluation batch."""
        # Imported here: the evaluation loads the engine, which resolving a preset does not need.
        from rnnstab_cli.training.synthetic.evaluate import EVAL_BATCH

        task = self.make_task()
        item = np.dtype(self.dtype).itemsize
        steps = (11 * self.length.hi) // 10 + 20  # the slack of default_chunk
        i, o, h = task.n_in, task.n_out, self.hidden
        eval_batch = min(EVAL_BATCH, max(self.eval_sequences, self.screen_sequences))
        return (
            model_bytes(h, i, o, item)
            + bptt_bytes(steps, self.batch, h, i, o, item)
            + batches_bytes(steps, self.batch, i, o, item, self.chunk or 1)
            + forward_bytes(steps, eval_batch, h, i, o, item)
        )

    def check_memory(self, what: str = "this run") -> None:
        """UsageError at once when the run cannot fit in memory (:mod:`rnnstab_cli.resources`)."""
        require(
            self.memory_needed(),
            f"{what} (len {self.length}, batch {self.batch}, hidden {self.hidden}, {self.dtype})",
            "lower --len, --batch or --hidden",
        )

    @property
    def eval_length(self) -> int:
        """The longest test length; for a range, test lengths are drawn from all of it
        (see :func:`~.synthetic.evaluate.measure_error`)."""
        return self.length.hi

    @property
    def label(self) -> str:
        """Preset (or task) name, for people."""
        return self.preset or self.task

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "config") -> TrainConfig:
        """A config from :meth:`to_dict`'s output (e.g. a checkpoint's state file)."""
        layer = normalise_layer(data, source=source, allow_preset=True)
        layer.pop("description", None)
        if "task" not in layer or "len" not in layer:
            raise UsageError(f"{source}: needs both 'task' and 'len'")
        layer["length"] = layer.pop("len")
        return cls(**layer)


#: The keys of the synthetic tasks whose change when resuming would change what is learnt (a
#: resumed run must agree on them; each enters the run's id).
TRAJECTORY_KEYS: Final[tuple[str, ...]] = keys_with_role(TrainConfig, "trajectory")
#: Keys that decide when a run counts as solved; a resumed run must agree on them too (a run
#: solved under one criterion is not solved under a stricter one). Kept apart from
#: TRAJECTORY_KEYS so that runs stored before the key existed keep their ids.
VERDICT_KEYS: Final[tuple[str, ...]] = keys_with_role(TrainConfig, "verdict")
#: Keys a resumed run may change: they steer when to stop and how to run, not what is learnt.
RESUMABLE_KEYS: Final[tuple[str, ...]] = keys_with_role(TrainConfig, "resumable")
# --------------------------------------------------------------------------------------------
# Layers: presets, config files, flags
# --------------------------------------------------------------------------------------------

#: Keys a file may hold that are no setting of a run.
FILE_KEYS: Final[dict[str, str]] = {
    "description": "free text, shown by `rnnstab tasks`; ignored for training",
    "per_method": "natural presets: settings per method, e.g. [per_method.sgd-c] lr = 0.01",
}
#: Keys a ``per_method`` table may not set: they choose what the table applies to.
_PER_METHOD_FORBIDDEN: Final = frozenset({"task", "method", "per_method", "preset", "dataset"})


def _settings_classes() -> tuple[type, ...]:
    # Imported here: the natural tasks' config builds on this module.
    from rnnstab_cli.training.natural.config import NaturalConfig

    return (TrainConfig, NaturalConfig)


def all_config_keys() -> dict[str, str]:
    """Every key a preset, a config file or the flags may set, for either kind of run, with
    what it holds (the settings' declarations, then :data:`FILE_KEYS`)."""
    keys = config_keys(*_settings_classes())
    keys.pop("preset")  # written by rnnstab into saved configs, not set by people
    return keys | FILE_KEYS


def _key_types() -> dict[str, ValueType]:
    return value_types(*_settings_classes())


def normalise_layer(
    data: Mapping[str, Any], *, source: str, allow_preset: bool = False
) -> dict[str, Any]:
    """Canonical keys (``-`` → ``_``) and checked TOML types; UsageError names a bad key."""
    known = all_config_keys()
    types = _key_types()
    out: dict[str, Any] = {}
    for raw_key, value in data.items():
        key = str(raw_key).replace("-", "_")
        if key not in known and not (allow_preset and key == "preset"):
            near = difflib.get_close_matches(key, known, n=1)
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            raise UsageError(f"{source}: unknown key {raw_key!r}{hint}")
        out[key] = _coerce(key, value, types.get(key), source)
    return out


def _coerce(key: str, value: Any, vt: ValueType | None, source: str) -> Any:
    if key == "threads" and value == 0 and not isinstance(value, bool):
        return None  # 0 means "one per core", the engine's own default
    if key == "len":
        try:
            return parse_length(value)
        except UsageError as e:
            raise UsageError(f"{source}: len: {e}") from None
    if key == "per_method":
        return _coerce_per_method(value, source)
    if vt is None:  # a file-only key holding text
        if not isinstance(value, str):
            raise UsageError(f"{source}: {key} must be a string, got {value!r}")
        return value
    return coerce(key, value, vt, source)


def _coerce_per_method(value: Any, source: str) -> dict[str, dict[str, Any]]:
    """``{method: {key: value}}`` with each inner table checked like a layer of its own."""
    if not isinstance(value, Mapping):
        raise UsageError(f"{source}: per_method must be a table of tables, got {value!r}")
    out: dict[str, dict[str, Any]] = {}
    for method, table in value.items():
        where = f"{source}: per_method.{method}"
        if method not in METHODS:
            raise UsageError(f"{where}: unknown method; expected one of: {', '.join(METHODS)}")
        if not isinstance(table, Mapping):
            raise UsageError(f"{where} must be a table, got {table!r}")
        layer = normalise_layer(table, source=where)
        bad = sorted(_PER_METHOD_FORBIDDEN & set(layer))
        if bad:
            raise UsageError(f"{where}: {bad[0]} cannot depend on the method")
        out[method] = layer
    return out


def read_config_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The layer of a ``--config`` TOML file, keys checked and canonical."""
    p = Path(path)
    return normalise_layer(read_toml(p, "config file"), source=str(p))


def _preset_is_natural(path: Path) -> bool:
    """Whether a preset file sets up a natural task. A file that cannot be read counts as
    synthetic, so the error surfaces, with its message, when that preset is loaded."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return False
    return data.get("task", path.stem) in NATURAL_TASKS


def _all_presets() -> list[Path]:
    return sorted(preset_dir().glob("*.toml"))


def preset_names() -> list[str]:
    """Names of the synthetic-task presets found in :func:`preset_dir`, sorted (the natural
    tasks' presets are in :func:`natural_preset_names`: they resolve to another config)."""
    return [p.stem for p in _all_presets() if not _preset_is_natural(p)]


def natural_preset_names() -> list[str]:
    """Names of the natural-task presets (music, ptb-char) found in :func:`preset_dir`."""
    return [p.stem for p in _all_presets() if _preset_is_natural(p)]


def is_natural_preset(name: str) -> bool:
    """Whether ``name`` is a natural task or a preset file that sets one up."""
    if name in NATURAL_TASKS:
        return True
    path = preset_path(name)
    return path is not None and _preset_is_natural(path)


def load_preset(name: str) -> dict[str, Any]:
    """The layer of preset ``name``. There is no fall-back to built-in defaults: the presets
    hold the paper's settings, and a run with guessed ones would look like the paper's run."""
    path = preset_path(name)
    if path is not None:
        layer = normalise_layer(read_toml(path, "preset"), source=str(path))
        layer.setdefault("task", name)
        return layer
    if name in TASK_NAMES or name in NATURAL_TASKS:
        raise missing_preset(name)
    known = ", ".join(preset_names()) or f"none (no presets in {str(preset_dir())!r})"
    raise UsageError(f"unknown task {name!r}; choose one of: {known}")


def missing_preset(name: str) -> UsageError:
    """The error for a task whose preset file is not in the preset directory."""
    return UsageError(f"no preset for task {name!r} in {str(preset_dir())!r} (no {name}.toml)")


def explicit_layers(
    flags: Mapping[str, Any] | None, config_file: str | os.PathLike[str] | None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The layers the user gave, canonical and checked: the config file's (empty without one)
    and the flags' (``None`` values are options not given, and dropped)."""
    file_layer = read_config_file(config_file) if config_file is not None else {}
    flag_layer = normalise_layer(
        {k: v for k, v in (flags or {}).items() if v is not None}, source="command line"
    )
    return file_layer, flag_layer


def apply_method(merged: dict[str, Any], explicit: Mapping[str, Any], method: str) -> None:
    """Set the clipping and α that ``method`` implies (the paper's names, §4.1) in ``merged``,
    unless ``explicit`` (the file and flags) sets the clipping; refuse an explicit α the method
    has no use for."""
    if "clip_mode" not in explicit:
        merged["clip_mode"] = "none" if method == "sgd" else "norm"
    if method != "sgd-cr":
        if explicit.get("alpha", 0.0) != 0.0:
            raise UsageError(
                f"--alpha {explicit['alpha']:g} needs --method sgd-cr (Ω is off with {method})"
            )
        merged["alpha"] = 0.0


def resolve_config(
    flags: Mapping[str, Any] | None = None,
    config_file: str | os.PathLike[str] | None = None,
) -> TrainConfig:
    """Merge preset < config file < ``flags`` into a validated :class:`TrainConfig`.

    ``flags`` holds only the options the user actually gave (``None`` values are ignored), under
    :func:`all_config_keys` names. The task (a preset name) comes from the flags, else the file.
    """
    file_layer, flag_layer = explicit_layers(flags, config_file)
    selector = flag_layer.pop("task", None) or file_layer.pop("task", None)
    file_layer.pop("task", None)
    if selector is None:
        raise UsageError("no task given: use --task NAME (see `rnnstab tasks`)")
    if is_natural_preset(selector):
        raise UsageError(
            f"{selector!r} is a natural task (§4.2), trained epoch by epoch: run it with "
            "`rnnstab train`, or resolve it with training.natural.resolve_natural_config"
        )
    preset = load_preset(selector)
    explicit = {**file_layer, **flag_layer}
    merged = {**preset, **explicit}
    merged.pop("description", None)
    natural_only = sorted(set(merged) - set(config_keys(TrainConfig)))
    if natural_only:
        raise UsageError(
            f"{natural_only[0]} applies to the natural tasks ({', '.join(NATURAL_TASKS)}) "
            f"only, not to {selector!r}"
        )

    method = merged.get("method", "sgd-cr")
    choice("method", method, METHODS)
    apply_method(merged, explicit, method)
    if "len" not in merged:
        raise UsageError(f"no length given for task {selector!r}: use --len N or --len MIN:MAX")
    merged["length"] = merged.pop("len")
    merged["preset"] = selector
    return TrainConfig(**merged)


def preset_config(name: str) -> TrainConfig:
    """Preset ``name`` resolved with no overrides."""
    return resolve_config({"task": name})
