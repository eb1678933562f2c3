"""Sweep specs: a TOML file → a validated grid of fully resolved runs with stable ids.

A spec names a base (a preset plus optional overrides) and the axes to sweep; the grid is the
full Cartesian product of the axes::

    name = "fig7-small"                 # optional; defaults to the file's stem
    description = "free text"           # optional
    preset = "temporal-order"           # the base preset (see `rnnstab tasks`)

    [base]                              # optional: any `rnnstab train` config key
    max_updates = 20_000

    [axes]                              # each axis: a non-empty list, or "A..B" (integers,
    method = ["sgd", "sgd-c", "sgd-cr"] #   both ends included: "1..10" is ten seeds)
    len = [10, 20, 50]
    seed = "0..2"

The command line may add or replace axes (``--axis lr=0.01,0.001``) and base settings
(``--set max_updates=2000``). Every run's settings go through :func:`resolve_config`, exactly
as ``rnnstab train`` resolves its flags, and the whole grid is resolved before anything runs,
so a bad spec fails with a one-line :class:`UsageError` naming the key and never half-way
through a sweep.

A run's id is a hash of its resolved config (:func:`run_id`): the same settings always get the
same id, whatever the spec file, the axis order or the backend, which is what lets an
interrupted sweep resume by skipping the ids already stored.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from rnnstab_cli.errors import UsageError
from rnnstab_cli.preset_files import find_sweep_spec
from rnnstab_cli.toml_files import read_toml
from rnnstab_cli.training.config import TrainConfig, normalise_layer, resolve_config
from rnnstab_cli.training.settings import identity

__all__ = [
    "ID_EXCLUDED_KEYS",
    "ID_KEYS",
    "SPEC_KEYS",
    "PlannedRun",
    "SweepSpec",
    "apply_overrides",
    "canonical_json",
    "expand",
    "id_settings",
    "load_spec",
    "parse_axis_option",
    "parse_set_option",
    "run_id",
]

#: Top-level keys of a spec file.
SPEC_KEYS: Final[tuple[str, ...]] = ("name", "description", "preset", "base", "axes")

#: Config keys that always enter a run's id, as they did when sweeps began: everything that
#: shaped the trajectory then, plus what decides the verdict and when it comes (the budget, the
#: evaluation schedule and sample sizes, the device). Written out rather than derived from the
#: declarations: a setting declared later enters an id only where it is not at its default
#: (:func:`~rnnstab_cli.training.settings.identity`), so stored runs keep their ids.
ID_KEYS: Final[frozenset[str]] = frozenset({
    "task", "task_options", "len", "method", "hidden", "activation", "init", "init_scale", "lr",
    "optimizer", "momentum", "clip_mode", "clip", "alpha", "omega_form", "time_reduction",
    "nonfinite", "batch", "seed", "chunk", "dtype",
    "max_updates", "eval_every", "eval_sequences", "screen_sequences", "device",
})  # fmt: skip
#: Never in the id: labels and execution details that cannot change a result.
ID_EXCLUDED_KEYS: Final[frozenset[str]] = frozenset({"threads", "preset", "description"})

#: Sweep runs are single-threaded unless the spec says otherwise: the sweep's parallelism is
#: one run per core, and engine threads on top would only oversubscribe the cores.
DEFAULT_RUN_THREADS: Final[int] = 1

#: The most runs one sweep may plan: far beyond the paper's grids (Fig. 7 has hundreds), and
#: small enough that the grid is validated in seconds. A larger grid is refused before any of
#: it is built; split it into several sweeps on the same store.
MAX_GRID_RUNS: Final[int] = 20_000

_RANGE: Final = re.compile(r"^\s*(-?\d+)\s*\.\.\s*(-?\d+)\s*$")
_ID_LENGTH: Final[int] = 16  # hex digits: 64 bits, no collision in any realistic store


def canonical_json(data: Any) -> str:
    """Sorted keys, no spaces: the same data always gives the same text (and hash)."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), allow_nan=False)


def id_settings(config: TrainConfig) -> dict[str, Any]:
    """The settings a run id is a hash of: every :data:`ID_KEYS` key, and any other setting
    only where it differs from its default."""
    return identity(config, always=ID_KEYS, excluded=ID_EXCLUDED_KEYS)


def run_id(config: TrainConfig) -> str:
    """Stable id of a resolved config: a sha256 prefix of :func:`id_settings`."""
    return hashlib.sha256(canonical_json(id_settings(config)).encode()).hexdigest()[:_ID_LENGTH]


@dataclass(frozen=True)
class SweepSpec:
    """A parsed spec before expansion. ``base`` and ``axes`` hold canonical config keys with
    checked types; ``axes`` keeps its order (the first axis varies slowest)."""

    name: str
    source: str  # the file it came from, for messages
    preset: str | None
    base: Mapping[str, Any] = field(default_factory=dict)
    axes: Mapping[str, Sequence[Any]] = field(default_factory=dict)
    description: str = ""

    def to_json(self) -> dict[str, Any]:
        """What the store keeps about the sweep (TOML-like values, JSON-able)."""
        return {
            "name": self.name,
            "source": self.source,
            "description": self.description,
            "preset": self.preset,
            "base": {k: _jsonable(v) for k, v in self.base.items()},
            "axes": {k: [_jsonable(v) for v in vs] for k, vs in self.axes.items()},
        }

    @property
    def size(self) -> int:
        n = 1
        for values in self.axes.values():
            n *= len(values)
        return n


@dataclass(frozen=True)
class PlannedRun:
    """One point of the grid: its id, resolved config and the axis values that made it."""

    run_id: str
    config: TrainConfig
    point: Mapping[str, Any]  # axis → value, as written in the spec
    index: int  # position in grid order

    def describe(self) -> str:
        return " ".join(f"{k}={_show(v)}" for k, v in self.point.items()) or "(base)"


def _show(value: Any) -> str:
    return str(value) if not isinstance(value, Mapping) else canonical_json(dict(value))


def _jsonable(value: Any) -> Any:
    """LengthRange and friends → their TOML form."""
    to_toml = getattr(value, "to_toml", None)
    if callable(to_toml):
        return to_toml()
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value


# --------------------------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------------------------


def _axis_values(key: str, raw: Any, source: str) -> list[Any]:
    """An axis as written (a list, or an inclusive integer range ``"A..B"``) → its values,
    type-checked and canonical. UsageError names ``axes.<key>``."""
    where = f"{source}: axes.{key}"
    if isinstance(raw, str):
        m = _RANGE.match(raw)
        if m is None:
            raise UsageError(
                f"{where} must be a list or an integer range 'A..B' (both ends included), "
                f"got {raw!r}"
            )
        lo, hi = int(m.group(1)), int(m.group(2))
        if hi < lo:
            raise UsageError(f"{where}: empty range {raw!r} (need A ≤ B in 'A..B')")
        if hi - lo + 1 > MAX_GRID_RUNS:
            raise UsageError(
                f"{where}: range {raw!r} has {hi - lo + 1:,} values; a sweep has at most "
                f"{MAX_GRID_RUNS:,} runs"
            )
        values: list[Any] = list(range(lo, hi + 1))
    elif isinstance(raw, list):
        values = list(raw)
    else:
        raise UsageError(
            f"{where} must be a list or an integer range 'A..B', got {type(raw).__name__} "
            f"{raw!r} (a single value belongs in [base])"
        )
    if not values:
        raise UsageError(f"{where} is empty: an axis needs at least one value")
    if len(values) > MAX_GRID_RUNS:
        raise UsageError(
            f"{where} has {len(values):,} values; a sweep has at most {MAX_GRID_RUNS:,} runs"
        )
    checked = []
    for i, v in enumerate(values):
        layer = normalise_layer({key: v}, source=f"{where}[{i}]")
        checked.append(next(iter(layer.values())))
    seen: set[str] = set()
    for v in checked:
        text = canonical_json(_jsonable(v))
        if text in seen:
            raise UsageError(f"{where} lists {_show(_jsonable(v))} twice")
        seen.add(text)
    return checked


def load_spec(path: str | Path) -> SweepSpec:
    """Read and check a spec file, or a shipped spec given by name (``fig7-small``; see
    :func:`~rnnstab_cli.preset_files.find_sweep_spec`): keys and value types, the grid being
    checked by :func:`expand`."""
    p = find_sweep_spec(path)
    raw = read_toml(p, "sweep spec")
    source = str(p)
    unknown = [k for k in raw if k not in SPEC_KEYS]
    if unknown:
        key = unknown[0]
        hint = " (train options go in [base], swept ones in [axes])" if key != "axis" else ""
        raise UsageError(f"{source}: unknown key {key!r}; a spec has {', '.join(SPEC_KEYS)}{hint}")
    for key in ("name", "description", "preset"):
        if key in raw and not isinstance(raw[key], str):
            raise UsageError(f"{source}: {key} must be a string, got {raw[key]!r}")
    for key in ("base", "axes"):
        if key in raw and not isinstance(raw[key], dict):
            raise UsageError(f"{source}: {key} must be a table ([{key}]), got {raw[key]!r}")
    base = normalise_layer(raw.get("base", {}), source=f"{source}: base")
    base.pop("description", None)
    axes: dict[str, list[Any]] = {}
    for raw_key, values in raw.get("axes", {}).items():
        key = str(raw_key).replace("-", "_")
        if key in axes:
            raise UsageError(f"{source}: axes.{key} is given twice")
        if key == "description":
            raise UsageError(f"{source}: axes.description: description cannot be an axis")
        axes[key] = _axis_values(key, values, source)
    both = [k for k in axes if k in base]
    if both:
        raise UsageError(
            f"{source}: {both[0]} is both in [base] and in [axes]; keep it in one of them"
        )
    preset = raw.get("preset")
    if preset is not None and "task" in base:
        raise UsageError(f"{source}: give the task once, as preset or as base.task, not both")
    return SweepSpec(
        name=raw.get("name") or p.stem,
        source=source,
        preset=preset if preset is not None else base.pop("task", None),
        base=base,
        axes=axes,
        description=raw.get("description", ""),
    )


# --------------------------------------------------------------------------------------------
# Command-line overrides
# --------------------------------------------------------------------------------------------


def _toml_value(raw: str) -> Any:
    """A VALUE as TOML, else the plain string (so ``method=sgd`` needs no quotes)."""
    try:
        return tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        return raw.strip()


def _split_item(item: str, option: str) -> tuple[str, str]:
    key, sep, raw = item.partition("=")
    key = key.strip().replace("-", "_")
    if not sep or not key or not raw.strip():
        raise UsageError(f"{option} expects KEY=VALUE, got {item!r}")
    return key, raw


def parse_axis_option(item: str) -> tuple[str, Any]:
    """``--axis lr=0.01,0.001`` / ``seed=0..9`` / ``len=[10, 20]`` → (key, raw axis)."""
    key, raw = _split_item(item, "--axis")
    text = raw.strip()
    if _RANGE.match(text):
        return key, text
    whole = _toml_value(text)
    if isinstance(whole, list):
        return key, whole
    if "," in text and not text.startswith(("{", '"', "'")):
        return key, [_toml_value(part) for part in text.split(",") if part.strip()] or []
    return key, [whole]


def parse_set_option(item: str, option: str = "--set") -> tuple[str, Any]:
    """``--set max_updates=2000`` → (key, value)."""
    key, raw = _split_item(item, option)
    return key, _toml_value(raw)


def apply_overrides(
    spec: SweepSpec, *, axes: Sequence[str] = (), settings: Sequence[str] = ()
) -> SweepSpec:
    """The spec with ``--axis`` items added or replacing axes and ``--set`` items added to or
    replacing base settings. A ``--set`` on a swept key is refused (it would silently shrink
    the grid); ``--axis KEY=VALUE`` says that explicitly."""
    base = dict(spec.base)
    preset = spec.preset
    new_axes = dict(spec.axes)
    for item in settings:
        key, value = parse_set_option(item)
        if key in new_axes:
            raise UsageError(
                f"--set {key}: {key} is a sweep axis; override it with --axis {key}=VALUES"
            )
        layer = normalise_layer({key: value}, source="--set")
        if key == "task":
            preset = layer.pop("task")
        base.update(layer)
    for item in axes:
        key, raw = parse_axis_option(item)
        values = _axis_values(key, raw, "--axis")
        new_axes[key] = values
        base.pop(key, None)
        if key == "task":
            preset = None
    base.pop("description", None)
    return SweepSpec(
        name=spec.name,
        source=spec.source,
        preset=preset,
        base=base,
        axes=new_axes,
        description=spec.description,
    )


# --------------------------------------------------------------------------------------------
# Expansion
# --------------------------------------------------------------------------------------------


def expand(spec: SweepSpec) -> list[PlannedRun]:
    """Every point of the grid, resolved and validated, in grid order (first axis slowest).

    Raises UsageError, naming the spec and the grid point, if any point is not a valid run;
    nothing has been started at that point. Two points that resolve to the same settings (e.g.
    ``alpha`` swept with a method that ignores it) are refused too: they would be one run.
    """
    if spec.preset is None and "task" not in spec.axes:
        raise UsageError(
            f'{spec.source}: no task: set preset = "NAME" (see `rnnstab tasks`) or sweep axes.task'
        )
    if spec.size > MAX_GRID_RUNS:
        shape = " × ".join(f"{len(v)} {k}" for k, v in spec.axes.items())
        raise UsageError(
            f"{spec.source}: the grid has {spec.size:,} runs ({shape}); a sweep has at most "
            f"{MAX_GRID_RUNS:,}: split it into several sweeps on the same store"
        )
    keys = list(spec.axes)
    runs: list[PlannedRun] = []
    seen: dict[str, PlannedRun] = {}
    for index, combo in enumerate(itertools.product(*(spec.axes[k] for k in keys))):
        point = dict(zip(keys, combo, strict=True))
        flags: dict[str, Any] = {"task": spec.preset, **spec.base, **point}
        flags = {k: (v.to_toml() if hasattr(v, "to_toml") else v) for k, v in flags.items()}
        flags.setdefault("threads", DEFAULT_RUN_THREADS)
        shown = {k: _jsonable(v) for k, v in point.items()}
        config = _resolve(spec, flags, shown)
        planned = PlannedRun(run_id=run_id(config), config=config, point=shown, index=index)
        rid = planned.run_id
        if rid in seen:
            raise UsageError(
                f"{spec.source}: grid points {seen[rid].describe()} and {planned.describe()} "
                "resolve to the same run; drop the axis value that has no effect"
            )
        seen[rid] = planned
        runs.append(planned)
    _check_memory(spec, runs)
    return runs


def _check_memory(spec: SweepSpec, runs: Sequence[PlannedRun]) -> None:
    """The largest run must fit in memory (each run is checked again when it starts, on the
    machine that runs it); refused here, the sweep fails before anything starts."""
    if not runs:
        return
    big = max(runs, key=lambda r: r.config.memory_needed())
    try:
        big.config.check_memory(f"run {big.describe()}")
    except UsageError as e:
        raise UsageError(f"{spec.source}: {e}") from None


def _resolve(spec: SweepSpec, flags: Mapping[str, Any], point: Mapping[str, Any]) -> TrainConfig:
    try:
        return resolve_config(flags)
    except UsageError as e:
        where = " ".join(f"{k}={_show(v)}" for k, v in point.items())
        at = f" (run {where})" if where else ""
        raise UsageError(f"{spec.source}{at}: {e}") from None
