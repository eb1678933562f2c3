"""What a natural-task run is: :class:`NaturalConfig`, and how presets, config files and flags
resolve to one (:func:`resolve_natural_config`).

The layers are the synthetic tasks' (see :mod:`rnnstab_cli.training.config`), with one more
step for settings the paper gives per method (e.g. PTB's learning rate: 0.01 with clipping only,
0.05 with Ω, 0.001 without clipping)::

    preset  <  preset's [per_method.<method>]  <  --config FILE  <  its [per_method.<method>]
            <  flags

``--task music --dataset NAME`` selects the preset ``music-NAME``; ``--task ptb-char`` the preset
``ptb-char``; any natural preset may also be named directly (``--task ptb-char-5ahead``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Final

from rnnstab_cli.datasets import DATASETS
from rnnstab_cli.errors import UsageError
from rnnstab_cli.preset_files import preset_path
from rnnstab_cli.training.config import (
    NATURAL_TASKS,
    LengthRange,
    TrainConfig,
    apply_method,
    explicit_layers,
    is_natural_preset,
    load_preset,
    missing_preset,
    normalise_layer,
    read_config_file,
)
from rnnstab_cli.training.model_settings import METHODS, ModelSettings
from rnnstab_cli.training.natural.schedule import LR_HALVING_RULES, alpha_at
from rnnstab_cli.training.settings import config_keys, keys_with_role, setting
from rnnstab_cli.training.value_checks import choice

MUSIC_DATASETS: Final[tuple[str, ...]] = tuple(n for n, s in DATASETS.items() if s.kind == "music")
ALPHA_SCHEDULES: Final[tuple[str, ...]] = ("constant", "1/t")


class NaturalConfig(ModelSettings, kind="natural"):
    """A fully resolved natural-task run; ``__post_init__`` validates every value.

    The defaults are neutral; the paper's numbers live in the presets (``presets/*.toml``).
    """

    dataset: str = setting(help="natural tasks: " + " | ".join(MUSIC_DATASETS) + " | ptb-char")
    data: str | None = setting(
        default=None,
        role="resumable",
        help="natural tasks: the data file or folder (default: $RNNSTAB_DATA)",
    )
    alpha_schedule: str = setting(
        default="constant",
        choices=ALPHA_SCHEDULES,
        help="natural tasks: constant | 1/t (α_t = α₀/t, t the epoch, from 1)",
    )
    lr_halving: bool = setting(
        default=True,
        help="natural tasks: halve the learning rate by the lr_halving_on rule",
    )
    lr_halving_on: str = setting(
        default="train-rise",
        choices=LR_HALVING_RULES,
        help="natural tasks: train-rise (the paper: after an epoch whose training error rose) | "
        "valid-stall (Mikolov et al. 2012: after every epoch once one improved validation by "
        "less than a factor 1.003; the next such epoch ends the run)",
    )
    seq_len: int = setting(
        default=200,
        at_least=1,
        help="natural tasks: time steps per training sequence or segment (paper: 200)",
    )
    ahead: int = setting(
        default=1,
        at_least=1,
        help="ptb-char: predict the symbol this many steps ahead (1; 5 for §4.2's variant)",
    )
    train_biases: bool = setting(
        default=True,
        engine=True,
        help="natural tasks: false keeps the biases at zero (the paper's PTB model)",
    )
    predict_first: bool = setting(
        default=False,
        help="music: also predict each piece's first frame, from a silent frame",
    )
    epochs: int = setting(
        default=100, at_least=1, role="resumable", help="natural tasks: epoch budget"
    )
    max_updates: int = setting(
        default=0,
        at_least=0,
        role="resumable",
        help="update budget (natural tasks: 0, the default, for epochs only)",
    )
    patience: int = setting(
        default=0,
        at_least=0,
        role="resumable",
        help="natural tasks: stop after this many epochs without a better validation score "
        "(0: never)",
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        choice("task", self.task, NATURAL_TASKS)
        datasets = MUSIC_DATASETS if self.task == "music" else ("ptb-char",)
        if self.dataset not in datasets:
            raise UsageError(
                f"data set {self.dataset!r} does not fit task {self.task!r}; expected one of: "
                f"{', '.join(datasets)}"
            )
        if self.task == "music" and self.ahead != 1:
            raise UsageError("ahead applies to ptb-char only; music predicts the next frame")
        if self.task == "ptb-char" and self.predict_first:
            raise UsageError("predict_first applies to music only")

    @property
    def label(self) -> str:
        """Preset (or task and data set) name, for people."""
        return self.preset or f"{self.task}:{self.dataset}"

    @property
    def loss(self) -> str:
        """Sigmoid outputs with per-note Bernoulli NLL for piano rolls; softmax for symbols."""
        return "bce" if self.task == "music" else "softmax_ce"

    @property
    def metric(self) -> str:
        """Table 1: NLL per time step (nats); Table 2: bits per character."""
        return "nll" if self.task == "music" else "bpc"

    @property
    def lr_rule(self) -> str | None:
        """The learning-rate schedule's rule (:func:`next_lr`), None when it is off."""
        return self.lr_halving_on if self.lr_halving else None

    def alpha_at(self, epoch: int) -> float:
        """α during epoch ``epoch`` (1-based): α₀, or α₀/t with the ``1/t`` schedule."""
        return alpha_at(self.alpha, self.alpha_schedule, epoch)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "config") -> NaturalConfig:
        layer = normalise_layer(data, source=source, allow_preset=True)
        layer.pop("description", None)
        layer.pop("per_method", None)
        if "task" not in layer or "dataset" not in layer:
            raise UsageError(f"{source}: needs both 'task' and 'dataset'")
        return cls(**layer)


#: Keys of the synthetic tasks that mean nothing for an epoch-based run (``len`` is taken as
#: ``seq_len``, and ``device`` is refused with its own message).
SYNTHETIC_ONLY: Final[frozenset[str]] = frozenset(
    set(config_keys(TrainConfig)) - set(config_keys(NaturalConfig)) - {"len", "device"}
)
#: Keys a resumed natural run may change: budgets, early stopping, threads, where the data is.
NATURAL_RESUMABLE_KEYS: Final[tuple[str, ...]] = keys_with_role(NaturalConfig, "resumable")


def is_natural_selection(
    flags: Mapping[str, Any] | None, config_file: str | os.PathLike[str] | None
) -> bool:
    """Whether the task chosen by ``flags`` (else the config file) is a natural one."""
    selector = (flags or {}).get("task")
    if selector is None and config_file is not None:
        selector = read_config_file(config_file).get("task")
    return selector is not None and is_natural_preset(str(selector))


def _preset_for(selector: str, dataset: str | None) -> str:
    """The preset behind a selector: ``music`` + data set → ``music-<dataset>``."""
    if selector != "music":
        return selector
    if dataset is None:
        raise UsageError(f"--task music needs --dataset, one of: {', '.join(MUSIC_DATASETS)}")
    if dataset not in MUSIC_DATASETS:  # said here: the preset it would name is no file either
        raise UsageError(
            f"data set {dataset!r} does not fit task 'music'; expected one of: "
            f"{', '.join(MUSIC_DATASETS)}"
        )
    return f"music-{dataset}"


def _with_method(layer: dict[str, Any], method: str) -> dict[str, Any]:
    """A layer with its ``per_method`` table for ``method`` applied on top."""
    per = layer.pop("per_method", {})
    return {**layer, **per.get(method, {})}


def resolve_natural_config(
    flags: Mapping[str, Any] | None = None,
    config_file: str | os.PathLike[str] | None = None,
) -> NaturalConfig:
    """Merge the layers (see the module docstring) into a validated :class:`NaturalConfig`.

    ``flags`` holds only the options the user gave (``None`` values are ignored), under
    :func:`~rnnstab_cli.training.config.all_config_keys` names; ``len`` is taken as ``seq_len``.
    """
    file_layer, flag_layer = explicit_layers(flags, config_file)
    selector = flag_layer.pop("task", None) or file_layer.get("task")
    file_layer.pop("task", None)
    if selector is None or not is_natural_preset(selector):
        raise UsageError(f"{selector!r} is not a natural task ({', '.join(NATURAL_TASKS)})")
    dataset = flag_layer.get("dataset", file_layer.get("dataset"))
    preset_name = _preset_for(selector, dataset)
    if preset_path(preset_name) is None:  # music-<dataset>: a name no one typed, said as such
        raise missing_preset(preset_name)
    preset = load_preset(preset_name)
    preset.pop("description", None)
    if dataset is None:
        dataset = preset.get("dataset", "ptb-char" if preset["task"] == "ptb-char" else None)
    explicit_plain = {**file_layer, **flag_layer}
    explicit_plain.pop("per_method", None)
    method = explicit_plain.get("method", preset.get("method", "sgd-cr"))
    choice("method", method, METHODS)
    explicit = {**_with_method(dict(file_layer), method), **flag_layer}
    merged = {**_with_method(dict(preset), method), **explicit}
    merged.pop("description", None)
    merged["dataset"] = dataset
    merged["method"] = method

    synthetic = sorted(SYNTHETIC_ONLY & set(merged))
    if synthetic:
        raise UsageError(f"{synthetic[0]} applies to the synthetic tasks only, not to {selector!r}")
    device = merged.pop("device", "cpu")
    if device != "cpu":
        raise UsageError(f"the natural tasks run on the CPU engine; --device {device} is not built")
    if "len" in merged:
        length = merged.pop("len")
        if not isinstance(length, LengthRange) or not length.fixed:
            raise UsageError(f"the natural tasks train on a fixed --len (seq_len), got {length}")
        if explicit.get("seq_len", length.lo) != length.lo:
            raise UsageError(f"--len {length} and seq_len {explicit['seq_len']} disagree")
        merged["seq_len"] = length.lo
    apply_method(merged, explicit, method)
    merged["preset"] = preset_name
    unknown = set(merged) - set(config_keys(NaturalConfig))
    if unknown:  # a config key NaturalConfig does not declare: a bug, not a user error
        raise AssertionError(f"unhandled keys {sorted(unknown)}")
    return NaturalConfig(**merged)


def natural_preset_config(name: str, **flags: Any) -> NaturalConfig:
    """Natural preset ``name`` (or ``music`` with ``dataset=...``) with optional overrides."""
    return resolve_natural_config({"task": name, **flags})
