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

from rnnstab_cli.cli.common import emit_json, note
from rnnstab_cli.errors import UsageError
from rnnstab_cli.sweep.report import parse_keys, pooled_settings, select_runs
from rnnstab_cli.sweep.store import ResultStore

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


def _one_key(text: str | None, option: str, default: str) -> str:
    keys = parse_keys(text, option, [default])
    if len(keys) != 1:
        raise UsageError(f"{option} takes one key, got {text!r}")
    return keys[0]


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
    # matplotlib is imported here, not at start-up, so that `rnnstab --help` stays quick.
    from rnnstab_cli.figures.plotting import check_path
    from rnnstab_cli.sweep.plot import (
        default_subtitle,
        default_title,
        plot_success,
        success_curves,
    )

    check_path(out)  # a bad suffix fails before the store is read
    if store.is_dir():
        from rnnstab_cli.figures.training_run import load_history, plot_history

        history = load_history(store)
        path = plot_history(history, out)
        if json_out:
            emit_json({"event": "plot", "path": str(path), "run": history.to_json_dict()})
        else:
            note(f"Wrote {path}")
        return
    by_key = _one_key(by, "--by", "method")
    x_key = _one_key(x, "--x", "len")
    if by_key == x_key:
        raise UsageError("--by and --x must be different keys")
    with ResultStore.open_readonly(store) as st:
        sel = select_runs(st, sweep=sweep, where=where or [])
    curves = success_curves(sel.runs, by=by_key, x=x_key)
    mixed = pooled_settings(sel.runs, [by_key, x_key])
    if mixed:
        note(f"note: points pool runs that differ in {', '.join(mixed)}; filter with --where")
    path = plot_success(
        curves,
        out,
        title=title if title is not None else default_title(sel.runs),
        subtitle=default_subtitle(sel.runs),
        xlabel="sequence length T" if x_key == "len" else x_key,
    )
    if json_out:
        emit_json(
            {
                "event": "plot",
                "path": str(path),
                "by": by_key,
                "x": x_key,
                "curves": [
                    {"value": c.value, "x": c.xs, "solved": c.solved, "total": c.totals}
                    for c in curves
                ],
            }
        )
    else:
        note(f"Wrote {path}")
