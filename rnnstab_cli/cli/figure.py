"""``rnnstab figure …``: the paper's analysis figures, drawn or dumped as numbers.

- ``figure error-surface``: Fig. 6, the one-unit model's error surface with its wall, and
  gradient descent with and without norm clipping from the same start (§2.3).
- ``figure bifurcation``: Fig. 3, fixed points of x = w·σ(x) + b against b for w = 5 (§2.2).
- ``figure spectrum CKPT``: the eigenvalues of a trained W_rec and of the same run's initial
  W_rec on the complex plane, with the unit circle and the 1/γ circle (§2.1).

Each writes a PNG or SVG with ``-o`` (by suffix), or prints its numbers with ``--json`` (one
object) or ``--csv`` (a table).
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import Annotated, Any, Protocol

import typer

from rnnstab_cli.cli.common import note
from rnnstab_cli.errors import UsageError

# The figures (rnnstab_cli.figures: matplotlib, scipy) are imported by the commands that draw
# them, so that every other command, and `rnnstab --help`, starts without them.

figure_app = typer.Typer(
    name="figure",
    help="The paper's analysis figures (Fig. 6 error surface, Fig. 3 bifurcation, W_rec spectrum).",
    no_args_is_help=True,
)


class Dumpable(Protocol):
    def to_json_dict(self) -> dict[str, Any]: ...
    def to_csv_rows(self) -> list[list[Any]]: ...


Out = Annotated[
    Path | None, typer.Option("-o", "--out", help="Write the figure here (.png or .svg).")
]
Json = Annotated[bool, typer.Option("--json", help="Print the figure's numbers as JSON.")]
Csv = Annotated[bool, typer.Option("--csv", help="Print the figure's numbers as CSV.")]


def _emit(
    data: Dumpable, plot: Any, out: Path | None, json_out: bool, csv_out: bool, default: str
) -> None:
    if json_out and csv_out:
        raise UsageError("choose one of --json and --csv")
    if json_out:
        json.dump(data.to_json_dict(), sys.stdout)
        sys.stdout.write("\n")
    elif csv_out:
        csv.writer(sys.stdout, lineterminator="\n").writerows(data.to_csv_rows())
    if out is not None or not (json_out or csv_out):
        path = plot(data, out if out is not None else Path(default))
        note(f"wrote {path}")


@figure_app.command("error-surface")
def error_surface(
    out: Out = None,
    json_out: Json = False,
    csv_out: Csv = False,
    grid: Annotated[int, typer.Option(min=10, max=1000, help="Grid points per axis.")] = 200,
    lr: Annotated[float, typer.Option(min=0.0, help="Learning rate of both descents.")] = 0.5,
    threshold: Annotated[float, typer.Option(min=0.0, help="Norm-clipping threshold.")] = 0.5,
    # Each step is a pass over 50 time steps; 10,000 already takes minutes.
    steps: Annotated[int, typer.Option(min=1, max=10_000, help="Descent steps.")] = 40,
) -> None:
    """Fig. 6: E_50 = (σ(x_50) − 0.7)² of x_t = w·σ(x_{t−1}) + b, x_0 = 0.5, with plain and
    clipped gradient descent."""
    from rnnstab_cli.figures import compute_error_surface, plot_error_surface

    data = compute_error_surface(n_w=grid, n_b=grid, lr=lr, threshold=threshold, n_steps=steps)
    _emit(data, plot_error_surface, out, json_out, csv_out, "fig6-error-surface.png")


@figure_app.command("bifurcation")
def bifurcation(
    out: Out = None,
    json_out: Json = False,
    csv_out: Csv = False,
    w: Annotated[float, typer.Option(help="The fixed recurrent weight.")] = 5.0,
) -> None:
    """Fig. 3: the fixed points of x = w·σ(x) + b against b, stable and unstable, with the
    saddle-node bifurcations marked."""
    from rnnstab_cli.figures import compute_bifurcation, plot_bifurcation

    data = compute_bifurcation(w=w)
    _emit(data, plot_bifurcation, out, json_out, csv_out, "fig3-bifurcation.png")


@figure_app.command("spectrum")
def spectrum(
    ckpt: Annotated[
        Path, typer.Argument(help="A checkpoint directory written by rnnstab train --out.")
    ],
    out: Out = None,
    json_out: Json = False,
    csv_out: Csv = False,
) -> None:
    """Eigenvalues of W_rec before training (re-created from the run's seed) and after."""
    from rnnstab_cli.figures import compute_spectrum, plot_spectrum
    from rnnstab_cli.training.checkpoint import load_checkpoint
    from rnnstab_cli.training.run_session import initial_params

    c = load_checkpoint(ckpt)
    cfg = c.config
    task = cfg.make_task()
    before = initial_params(cfg, task.n_in, task.n_out)
    data = compute_spectrum(
        before,
        c.params,
        activation=cfg.activation,
        label_before="initial W_rec",
        label_after=f"after {c.state.updates:,} updates",
        title=f"Spectrum of W_rec: {cfg.task}, T={cfg.length}, {cfg.method}",
    )
    _emit(data, plot_spectrum, out, json_out, csv_out, "spectrum.png")
