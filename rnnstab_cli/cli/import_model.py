"""``rnnstab import``: a ``torch.nn.RNN`` + ``torch.nn.Linear`` state dict (a safetensors file,
from ``rnnstab export`` or from torch) as a checkpoint that ``rnnstab eval`` scores
(:mod:`rnnstab_cli.training.transfer`, :mod:`rnnstab_cli.torch_state`).

Exit codes: 0 written; 2 bad usage (options, a model that does not fit the task); 3 the file is
missing, not safetensors, or not one RNN layer and a read-out; 4 the directory cannot be
written.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer

from rnnstab_cli.cli.common import emit_json, note

IMPORT_HELP = "\n\n".join(
    [
        "Make a checkpoint directory from a safetensors state dict of torch.nn.RNN (one layer, "
        "one direction, tanh or relu) and torch.nn.Linear: rnn.weight_ih_l0, rnn.weight_hh_l0, "
        "rnn.bias_ih_l0, rnn.bias_hh_l0, readout.weight, readout.bias (other prefixes: "
        "--rnn-prefix, --readout-prefix; biases may be absent). torch's two recurrent biases "
        "become rnnstab's one, b = b_ih + b_hh: the same model.",
        "A file written by `rnnstab export` needs no option. Any other needs --task (a preset "
        "or task name; --len for a task without a preset length, --dataset for music) and "
        "--activation relu for a relu RNN (a state dict does not record the nonlinearity). A "
        "ptb-char model's symbols are the data set's (--data or $RNNSTAB_DATA).",
        "Example: rnnstab import model.safetensors -o runs/imported && rnnstab eval runs/imported",
        "Exit codes: 0 written · 2 bad usage · 3 file missing or not such a state dict · "
        "4 checkpoint directory cannot be written.",
    ]
)


def import_command(
    model: Annotated[Path, typer.Argument(help="The .safetensors state dict.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Checkpoint directory to create.")],
    task: Annotated[
        str | None, typer.Option("--task", help="Task or preset the model is for.")
    ] = None,
    length: Annotated[
        str | None, typer.Option("--len", help="Synthetic tasks: training length N or MIN:MAX.")
    ] = None,
    dataset: Annotated[
        str | None,
        typer.Option("--dataset", help="Music: jsb | nottingham | piano-midi | musedata."),
    ] = None,
    activation: Annotated[
        str | None,
        typer.Option("--activation", help="tanh (default) | relu: the RNN's nonlinearity."),
    ] = None,
    dtype: Annotated[
        str | None, typer.Option("--dtype", help="float32 | float64 (default: the file's).")
    ] = None,
    data: Annotated[
        Path | None, typer.Option("--data", help="ptb-char: the data set whose symbols it reads.")
    ] = None,
    rnn_prefix: Annotated[
        str, typer.Option("--rnn-prefix", help="Key prefix of the torch.nn.RNN's tensors.")
    ] = "rnn.",
    readout_prefix: Annotated[
        str, typer.Option("--readout-prefix", help="Key prefix of the Linear read-out's tensors.")
    ] = "readout.",
    json_out: Annotated[
        bool, typer.Option("--json", help="Print what was written as one JSON line.")
    ] = False,
) -> None:
    """Make a checkpoint from a torch state dict (``--help``: IMPORT_HELP)."""
    from rnnstab_cli.training.transfer import import_model

    got = import_model(
        model,
        out,
        task=task,
        length=length,
        dataset=dataset,
        activation=activation,
        dtype=dtype,
        data=None if data is None else str(data),
        rnn_prefix=rnn_prefix,
        readout_prefix=readout_prefix,
    )
    if json_out:
        emit_json({"event": "import", **asdict(got), "directory": str(got.directory)})
        return
    note(
        f"wrote checkpoint {got.directory}: {got.label}, {got.n_in} → {got.hidden} "
        f"{got.activation} units → {got.n_out}, {got.dtype}; score it with `rnnstab eval "
        f"{got.directory}`"
    )
