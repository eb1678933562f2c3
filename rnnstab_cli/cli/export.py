"""``rnnstab export``: a trained model as a file another framework loads; for now the state dict
of ``torch.nn.RNN`` + ``torch.nn.Linear`` (:mod:`rnnstab_cli.training.transfer`), written without
torch.

Exit codes: 0 written; 2 bad usage (a model torch.nn.RNN cannot express, an unwritable path);
4 the checkpoint is missing or damaged.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rnnstab_cli.cli.common import emit_json, note

EXPORT_HELP = "\n\n".join(
    [
        "Write the model of a checkpoint (rnnstab train --out, or a run directory of a sweep or "
        "campaign) as a safetensors state dict that torch.nn.RNN(I, H, nonlinearity) and "
        "torch.nn.Linear(H, O) load as they are, under the keys rnn.* and readout.* (a "
        "ModuleDict of the two; strict load_state_dict). Torch is not needed to write it.",
        "The file's metadata gives the sizes, the nonlinearity, the task, the loss and the "
        "output nonlinearity (softmax, identity or sigmoid) the read-out feeds, and the run's "
        "config, so `rnnstab import` reads it back without options. A natural-task checkpoint "
        "gives the best validation's parameters (--last: the last ones).",
        "tanh and relu units map as they are. Sigmoid units (the paper's music and PTB models) "
        "have no torch.nn.RNN nonlinearity and are refused, unless --sigmoid-as-tanh writes the "
        "exact reparametrisation σ(x) = (1 + tanh(x/2))/2: the same outputs, with torch's hidden "
        "state 2σ(x_t) − 1.",
        "Example: rnnstab export runs/to200 --format torch -o to200.safetensors",
        "Exit codes: 0 written · 2 bad usage (a model torch cannot express) · 4 checkpoint "
        "missing or damaged.",
    ]
)


def export_command(
    checkpoint: Annotated[
        Path, typer.Argument(help="Checkpoint directory (train --out, a sweep's run).")
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="The file to write (.safetensors).")],
    fmt: Annotated[str, typer.Option("--format", help="torch (the only one so far).")] = "torch",
    last: Annotated[
        bool,
        typer.Option(
            "--last", help="Natural tasks: the last parameters, not the best validation's."
        ),
    ] = False,
    sigmoid_as_tanh: Annotated[
        bool,
        typer.Option(
            "--sigmoid-as-tanh",
            help="Write sigmoid units as the equivalent tanh RNN (outputs equal; see --help).",
        ),
    ] = False,
    json_out: Annotated[
        bool, typer.Option("--json", help="Print the file's metadata as one JSON line.")
    ] = False,
) -> None:
    """Write a checkpoint's model as a torch state dict (``--help``: EXPORT_HELP)."""
    from rnnstab_cli.training.transfer import export_checkpoint

    meta = export_checkpoint(checkpoint, out, fmt=fmt, last=last, sigmoid_as_tanh=sigmoid_as_tanh)
    if json_out:
        emit_json({"event": "export", "path": str(out), **meta})
        return
    note(
        f"wrote {out}: torch.nn.RNN({meta['input_size']}, {meta['hidden_size']}, "
        f"nonlinearity={meta['nonlinearity']!r}) + Linear({meta['hidden_size']}, "
        f"{meta['output_size']}), {meta['output']} outputs ({meta['label']}, "
        f"{meta['activation']} units, {meta['mapping']} mapping)"
    )
