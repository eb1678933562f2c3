"""Checkpoints ↔ torch state-dict files: ``rnnstab export`` and ``rnnstab import``.

:func:`export_checkpoint` writes the model of any checkpoint (``train --out``, a sweep's or a
campaign's run; for a natural run the parameters ``rnnstab eval`` scores) through the mapping of
:mod:`rnnstab_cli.torch_state`, with a header that lets :func:`import_model` rebuild the run's
config. :func:`import_model` writes a checkpoint with no training history (0 updates, no
optimiser state) from such a file or from a foreign ``torch.nn.RNN`` + ``Linear`` state dict.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rnnstab_cli import __version__
from rnnstab_cli.datasets import PtbChar, load_dataset
from rnnstab_cli.datasets.music import N_NOTES
from rnnstab_cli.errors import DataError, UsageError
from rnnstab_cli.torch_state import (
    DIRECT,
    FORMAT,
    FORMAT_VERSION,
    FORMATS,
    OUTPUT_OF_LOSS,
    READOUT_PREFIX,
    RNN_PREFIX,
    SIGMOID_AS_TANH,
    TORCH_NONLINEARITIES,
    from_torch,
    read_model_file,
    to_torch,
    write_model_file,
)
from rnnstab_cli.training.checkpoint import (
    Checkpoint,
    RunState,
    has_checkpoint,
    load_checkpoint,
    model_shapes,
    save_checkpoint,
)
from rnnstab_cli.training.config import TrainConfig, is_natural_preset, resolve_config
from rnnstab_cli.training.natural import (
    NaturalCheckpoint,
    NaturalConfig,
    is_natural_checkpoint,
    load_natural_checkpoint,
    resolve_natural_config,
)
from rnnstab_cli.training.natural.checkpoint import save_natural_checkpoint, scored_params
from rnnstab_cli.training.natural.state import NaturalState


@dataclass(frozen=True)
class Model:
    """A checkpoint's model with what the file header says about it."""

    kind: str  # "synthetic" or "natural"
    config: TrainConfig | NaturalConfig
    params: dict[str, np.ndarray]
    loss: str
    vocab: list[str] | None
    updates: int
    which: str  # "last" or "best" (natural runs keep the best validation's parameters)


def load_model(directory: str | os.PathLike[str], *, last: bool = False) -> Model:
    """The model of any checkpoint (``train --out``, a sweep's or a campaign's run): for a
    natural run the parameters ``rnnstab eval`` scores, the best validation's unless ``last``
    (CheckpointError for ``last`` on a finished run that kept only its best ones)."""
    if is_natural_checkpoint(Path(directory)):
        n = load_natural_checkpoint(Path(directory))
        params, which = scored_params(n, Path(directory), last=last)
        return Model("natural", n.config, params, n.config.loss, n.vocab, n.state.updates, which)
    if last:
        raise UsageError("--last applies to natural-task checkpoints (music, ptb-char)")
    c = load_checkpoint(directory)
    return Model(
        "synthetic", c.config, c.params, c.config.make_task().loss, None, c.state.updates, "last"
    )


def export_checkpoint(
    directory: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    fmt: str = "torch",
    last: bool = False,
    sigmoid_as_tanh: bool = False,
) -> dict[str, str]:
    """Write the model of checkpoint ``directory`` to ``out`` as a torch state dict (see the
    module docstring); returns the header written."""
    if fmt not in FORMATS:
        raise UsageError(f"unknown --format {fmt!r}; expected one of: {', '.join(FORMATS)}")
    model = load_model(directory, last=last)
    cfg = model.config
    state, nonlinearity, mapping = to_torch(
        model.params, cfg.activation, sigmoid_as_tanh=sigmoid_as_tanh
    )
    h, i = model.params["W_in"].shape
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "rnnstab_version": __version__,
        "kind": model.kind,
        "task": cfg.task,
        "label": cfg.label,
        "input_size": str(i),
        "hidden_size": str(h),
        "output_size": str(model.params["W_out"].shape[0]),
        "module": "torch.nn.RNN",
        "nonlinearity": nonlinearity,
        "batch_first": "false",
        "activation": cfg.activation,
        "mapping": mapping,
        "loss": model.loss,
        "output": OUTPUT_OF_LOSS[model.loss],
        "rnn_prefix": RNN_PREFIX,
        "readout_prefix": READOUT_PREFIX,
        "dtype": cfg.dtype,
        "updates": str(model.updates),
        "params": model.which,
        "config": json.dumps(cfg.to_dict(), sort_keys=True),
    }
    if model.vocab is not None:
        meta["vocab"] = json.dumps(model.vocab)
    write_model_file(out, state, meta)
    return meta


@dataclass(frozen=True)
class Imported:
    """What :func:`import_model` wrote."""

    directory: Path
    kind: str
    label: str
    hidden: int
    n_in: int
    n_out: int
    activation: str
    mapping: str
    dtype: str


def import_model(
    path: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    task: str | None = None,
    length: str | None = None,
    dataset: str | None = None,
    activation: str | None = None,
    dtype: str | None = None,
    data: str | None = None,
    rnn_prefix: str = RNN_PREFIX,
    readout_prefix: str = READOUT_PREFIX,
) -> Imported:
    """A checkpoint in ``out`` holding the model of torch state dict file ``path``.

    A file written by :func:`export_checkpoint` carries its task, config and activation; a
    foreign one needs ``task`` (a preset or task name, ``length`` for a synthetic task without
    a preset length, ``dataset`` for music), and ``activation`` when it is not tanh (a state
    dict does not record torch's nonlinearity). A ptb-char model without the symbols in its
    header takes them from the data set (``data`` or ``$RNNSTAB_DATA``)."""
    if has_checkpoint(out):
        raise UsageError(f"{str(out)!r} already holds a checkpoint; import into a new directory")
    where = str(path)
    arrays, meta = read_model_file(path)
    ours = meta.get("format") == FORMAT
    if ours and meta.get("format_version") != FORMAT_VERSION:
        raise DataError(
            f"{where}: format version {meta.get('format_version')!r}; this rnnstab "
            f"({__version__}) reads version {FORMAT_VERSION}"
        )
    if ours:
        rnn_prefix = meta.get("rnn_prefix", rnn_prefix)
        readout_prefix = meta.get("readout_prefix", readout_prefix)
    act, mapping = _activation(meta if ours else {}, activation, where)
    params64 = from_torch(
        arrays, mapping, where, rnn_prefix=rnn_prefix, readout_prefix=readout_prefix
    )
    if dtype is None:
        dtype = "float64" if any(a.dtype == np.float64 for a in arrays.values()) else "float32"
    cfg = _config(meta if ours else {}, params64, act, dtype, task, length, dataset, where)
    with np.errstate(over="ignore"):  # an overflow to ±inf is refused just below
        params = {k: np.ascontiguousarray(v, dtype=cfg.dtype) for k, v in params64.items()}
    if not all(np.isfinite(v).all() for v in params.values()):
        raise DataError(f"{where}: its weights overflow {cfg.dtype}")
    h, i = params["W_in"].shape
    o = params["W_out"].shape[0]
    if isinstance(cfg, NaturalConfig):
        _save_natural(out, cfg, params, meta if ours else {}, data, where)
    else:
        save_checkpoint(out, Checkpoint(cfg, params, None, RunState()), [])
        load_checkpoint(out)  # it reads back as `rnnstab eval` will read it
    kind = "natural" if isinstance(cfg, NaturalConfig) else "synthetic"
    return Imported(Path(out), kind, cfg.label, h, i, o, act, mapping, cfg.dtype)


def _activation(meta: Mapping[str, str], asked: str | None, where: str) -> tuple[str, str]:
    """rnnstab's activation and the mapping to undo, from the header or the option."""
    if meta:
        act = meta.get("activation", "")
        mapping = meta.get("mapping", DIRECT)
        if asked is not None and asked != act:
            raise UsageError(
                f"--activation {asked}: {where} holds a model of {act} units (its header says so)"
            )
        if mapping == DIRECT and act not in TORCH_NONLINEARITIES:
            raise DataError(f"{where}: its header names activation {act!r} with a direct mapping")
        if mapping == SIGMOID_AS_TANH and act != "sigmoid":
            raise DataError(f"{where}: its header maps {act!r} units as sigmoid ones")
        if mapping not in (DIRECT, SIGMOID_AS_TANH):
            raise DataError(f"{where}: unknown mapping {mapping!r} in its header")
        return act, mapping
    act = asked or "tanh"
    if act not in TORCH_NONLINEARITIES:
        raise UsageError(
            f"--activation {act}: a torch.nn.RNN's nonlinearity is tanh or relu; only a file "
            "exported by rnnstab with --sigmoid-as-tanh imports as sigmoid units"
        )
    return act, DIRECT


def _config(
    meta: Mapping[str, str],
    params: Mapping[str, np.ndarray],
    activation: str,
    dtype: str,
    task: str | None,
    length: str | None,
    dataset: str | None,
    where: str,
) -> TrainConfig | NaturalConfig:
    """The run config of the imported checkpoint: the header's when the task is not given,
    else the preset's with the model's sizes; checked against the parameters' shapes."""
    h, i = params["W_in"].shape
    o = params["W_out"].shape[0]
    natural_flags = dataset is not None
    if task is None:
        if "config" not in meta:
            raise UsageError(
                f"{where} does not say which task its model is for (it was not exported by "
                "rnnstab): pass --task"
            )
        if length is not None or natural_flags:
            raise UsageError("--len and --dataset go with --task")
        try:
            stored = json.loads(meta["config"])
            source = f"{where} (header config)"
            cfg: TrainConfig | NaturalConfig = (
                NaturalConfig.from_dict(stored, source=source)
                if meta.get("kind") == "natural"
                else TrainConfig.from_dict(stored, source=source)
            )
        except (json.JSONDecodeError, TypeError, KeyError, AttributeError) as e:
            raise DataError(f"{where}: its header config is unreadable ({e})") from None
        except UsageError as e:
            raise DataError(str(e)) from None
        cfg = dataclasses.replace(cfg, dtype=dtype)
    elif is_natural_preset(task):
        if length is not None:
            raise UsageError(
                "--len applies to synthetic tasks; a natural task's model is scored on whole splits"
            )
        flags = {"task": task, "dataset": dataset, "hidden": h, "activation": activation}
        cfg = resolve_natural_config({**flags, "dtype": dtype})
    else:
        if natural_flags:
            raise UsageError("--dataset applies to the natural task music")
        flags = {"task": task, "len": length, "hidden": h, "activation": activation}
        cfg = resolve_config({**flags, "dtype": dtype})
    if cfg.hidden != h or cfg.activation != activation:
        raise DataError(
            f"{where}: its header config ({cfg.hidden} {cfg.activation} units) disagrees with "
            f"its tensors ({h} {activation} units)"
        )
    loss = cfg.loss if isinstance(cfg, NaturalConfig) else cfg.make_task().loss
    if "loss" in meta and meta["loss"] != loss:
        raise UsageError(
            f"{where} holds a model trained with the {meta['loss']} loss; task {cfg.label!r} "
            f"uses {loss}"
        )
    if isinstance(cfg, TrainConfig):
        t = cfg.make_task()
        expected = model_shapes(h, t.n_in, t.n_out)
        if (expected["W_in"], expected["W_out"]) != ((h, i), (o, h)):
            raise UsageError(
                f"{where} holds a model with {i} inputs and {o} outputs; task {cfg.label!r} has "
                f"{t.n_in} inputs and {t.n_out} outputs"
            )
    elif cfg.task == "music":
        if (i, o) != (N_NOTES, N_NOTES):
            raise UsageError(
                f"{where} holds a model with {i} inputs and {o} outputs; music has {N_NOTES} "
                "notes in and out"
            )
    elif i != o:
        raise UsageError(
            f"{where} holds a model with {i} inputs and {o} outputs; ptb-char reads and "
            "predicts the same symbols"
        )
    return cfg


def _save_natural(
    out: str | os.PathLike[str],
    cfg: NaturalConfig,
    params: dict[str, np.ndarray],
    meta: Mapping[str, str],
    data: str | None,
    where: str,
) -> None:
    vocab: list[str] | None = None
    if cfg.task == "ptb-char":
        if "vocab" in meta:
            try:
                vocab = json.loads(meta["vocab"])
            except json.JSONDecodeError as e:
                raise DataError(f"{where}: its header vocab is unreadable ({e})") from None
            if not isinstance(vocab, list) or not all(isinstance(v, str) for v in vocab):
                raise DataError(f"{where}: its header vocab is not a list of symbols")
        else:
            # The symbol ids of a foreign model are the data set's, as rnnstab numbers them.
            loaded = load_dataset("ptb-char", data if data is not None else cfg.data)
            assert isinstance(loaded, PtbChar)
            vocab = list(loaded.vocab)
        n = params["W_in"].shape[1]
        if len(vocab) != n:
            raise UsageError(
                f"{where} holds a model of {n} symbols; the ptb-char data has {len(vocab)}"
            )
    if data is not None:
        cfg = dataclasses.replace(cfg, data=str(data))
    ckpt = NaturalCheckpoint(cfg, params, None, NaturalState(lr=cfg.lr), vocab)
    save_natural_checkpoint(Path(out), ckpt, [])
    load_natural_checkpoint(Path(out))  # it reads back as `rnnstab eval` will read it
