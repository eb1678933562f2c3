"""``rnnstab plot``: the paper's Fig. 7 from a result store — rate of success versus the
sequence length (log scale), one line per method — or, given a run directory written by
``rnnstab train --out``, that run's loss, test error, gradient norm with clipping events, ρ(W_rec)
against 1/γ and the error-signal profile over training.

Exit codes: 0 written; 2 bad usage (e.g. an unsupported suffix); 4 the store is missing or not
a result store.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

# What the command does lives in cli/plot_run.py, imported when it runs, so that defining the
# options (and `rnnstab --help`) needs neither numpy, matplotlib nor the engine.

PLOT_HELP = "\n\n".join(
    [
        "Draw the paper's Fig. 7 from a result store: rate of success versus sequence length "
        "(log scale), one line per method. Given a run directory (rnnstab train --out DIR), "
        "draw that run instead: loss, test error, gradient norm with clipping events, "
        "ρ(W_rec) against 1/γ and the error signal ‖∂E/∂x_k‖ against the lag over training.",
        "The format follows the suffix of --out (.png or .svg). Lines and x axis can be any "
        "keys (--by lr --x hidden); --where KEY=VALUE filters runs.",
        "Example: rnnstab plot fig7.db -o fig7.png",
        "Exit codes: 0 written · 2 bad usage · 4 store missing or not a result store.",
    ]
)


def plot_command(
    store: Annotated[
        Path,
        typer.Argument(
            help="Result store written by `rnnstab sweep`, or a run directory of `rnnstab train`."
        ),
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output file, .png or .svg.")],
    by: Annotated[
        str | None, typer.Option("--by", help="One line per value of this key (default: method).")
    ] = None,
    x: Annotated[
        str | None, typer.Option("--x", help="Numeric key on the x axis (default: len).")
    ] = None,
    sweep: Annotated[
        str | None, typer.Option("--sweep", help="Only this sweep's runs (name or id).")
    ] = None,
    where: Annotated[
        list[str] | None,
        typer.Option("--where", help="KEY=VALUE: only runs with this setting (repeatable)."),
    ] = None,
    title: Annotated[str | None, typer.Option("--title", help="Figure title.")] = None,
    json_out: Annotated[
        bool, typer.Option("--json", help="Print the plotted points as one JSON line.")
    ] = False,
) -> None:
    """Draw Fig. 7 (success rate vs. log sequence length) from a store (``--help``: PLOT_HELP)."""
    from rnnstab_cli.cli.plot_run import run_plot

    run_plot(
        store=store,
        out=out,
        by=by,
        x=x,
        sweep=sweep,
        where=where,
        title=title,
        json_out=json_out,
    )
