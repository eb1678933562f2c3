"""Fig. 7 of Pascanu, Mikolov & Bengio (2013): rate of success on the temporal order problem
versus the log of the sequence length, one line per method (SGD, SGD-C, SGD-CR), from the runs
in a result store.

Each point is the fraction of a cell's runs (usually its seeds) that solved the task, i.e.
reached ≤ 1% error on 10,000 fresh sequences within the budget. Failed runs are left out (see
:mod:`.report`). The grouping is general: any key can make the lines (``by``) and any numeric
key the x axis (``x``, log scale as in the paper when the values are positive).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from matplotlib.axes import Axes
from matplotlib.ticker import FixedLocator, NullLocator, PercentFormatter

from rnnstab_cli.errors import UsageError
from rnnstab_cli.figures.plotting import (
    CLIPPED_COLOUR,
    GUIDE_COLOUR,
    PLAIN_COLOUR,
    check_path,
    new_figure,
    save_figure,
)
from rnnstab_cli.sweep.report import Grid, group
from rnnstab_cli.sweep.store import RunRow

__all__ = [
    "METHOD_STYLE",
    "SuccessCurve",
    "curve_style",
    "default_subtitle",
    "default_title",
    "draw_success",
    "plot_success",
    "set_x_axis",
    "success_curves",
]

#: The paper's names and a style per method: colour (Okabe–Ito, as in the other figures),
#: marker and line, chosen so that lines lying on top of each other (all at 0%) stay visible.
METHOD_STYLE: Final[dict[str, dict[str, Any]]] = {
    "sgd": {"label": "SGD", "color": PLAIN_COLOUR, "marker": "o", "ls": "-", "ms": 10,
            "mfc": "white", "z": 2},
    "sgd-c": {"label": "SGD-C", "color": CLIPPED_COLOUR, "marker": "s", "ls": "--", "ms": 6,
              "mfc": None, "z": 3},
    "sgd-cr": {"label": "SGD-CR", "color": "#009E73", "marker": "^", "ls": "-", "ms": 7,
               "mfc": None, "z": 4},
}  # fmt: skip
_OTHER_COLOURS: Final[tuple[str, ...]] = (
    "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000", "#D55E00", "#0072B2", "#009E73",
)  # fmt: skip
_OTHER_MARKERS: Final[tuple[str, ...]] = ("o", "s", "^", "D", "v", "P", "X", "*")


@dataclass(frozen=True)
class SuccessCurve:
    """One line: its group value, and per x value the solved and counted runs."""

    key: str
    value: Any
    xs: list[float]
    solved: list[int]
    totals: list[int]

    @property
    def rates(self) -> list[float]:
        return [s / t for s, t in zip(self.solved, self.totals, strict=True)]


def _numeric_x(key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        hint = (
            " (a length range MIN:MAX has no single x; filter with --where)" if key == "len" else ""
        )
        raise UsageError(f"--x {key}: value {value!r} is not a number{hint}")
    return float(value)


def success_curves(
    runs: Sequence[RunRow], by: str = "method", x: str = "len"
) -> list[SuccessCurve]:
    """Per value of ``by``, the success rate at each value of ``x`` (cells with no counted run
    are skipped)."""
    grid: Grid = group(runs, [by], [x])
    curves = []
    for (value,) in grid.row_values:
        xs, solved, totals = [], [], []
        for (xv,) in grid.col_values:
            cell = grid.cell((value,), (xv,))
            if cell is None or cell.total == 0:
                continue
            xs.append(_numeric_x(x, xv))
            solved.append(cell.solved)
            totals.append(cell.total)
        if xs:
            curves.append(SuccessCurve(by, value, xs, solved, totals))
    return curves


def _runs_note(curves: Sequence[SuccessCurve]) -> str:
    counts = sorted({t for c in curves for t in c.totals})
    if not counts:
        return ""
    n = str(counts[0]) if len(counts) == 1 else f"{counts[0]}–{counts[-1]}"
    return f"{n} run{'s' if counts[-1] != 1 else ''} per point"


def plot_success(
    curves: Sequence[SuccessCurve],
    path: str | Path,
    *,
    title: str | None = None,
    subtitle: str | None = None,
    xlabel: str | None = None,
) -> Path:
    """Draw the curves (success rate in % against x, on a log axis when every x is positive)
    to PNG or SVG."""
    p, _ = check_path(path)
    if not curves:
        raise UsageError("nothing to plot: no finished runs in the selection")
    fig = new_figure(6.4, 4.2)
    ax = fig.add_subplot()
    draw_success(ax, curves, xlabel=xlabel)
    if title:
        fig.suptitle(title, fontsize=12, fontweight="bold", x=0.02, ha="left")
    note = " · ".join(s for s in (subtitle, _runs_note(curves)) if s)
    if note:
        ax.set_title(note, fontsize=9, color="0.35", loc="left")
    return save_figure(fig, p)


def curve_style(
    curve: SuccessCurve, index: int, styles: Mapping[Any, dict[str, Any]] | None = None
) -> dict[str, Any]:
    """The line's style: from ``styles`` (by the curve's value) when it has one, else the
    paper's for a method, else a colour and marker by position."""
    if styles is not None and curve.value in styles:
        return styles[curve.value]
    style = METHOD_STYLE.get(curve.value) if curve.key == "method" else None
    if style is not None:
        return style
    return {
        "label": f"{curve.key} = {curve.value}",
        "color": _OTHER_COLOURS[index % len(_OTHER_COLOURS)],
        "marker": _OTHER_MARKERS[index % len(_OTHER_MARKERS)],
        "ls": "-",
        "ms": 7,
        "mfc": None,
        "z": 3,
    }


def draw_success(
    ax: Axes,
    curves: Sequence[SuccessCurve],
    *,
    xlabel: str | None = None,
    legend: bool = True,
    xticks: Sequence[float] | None = None,
    styles: Mapping[Any, dict[str, Any]] | None = None,
) -> None:
    """The curves on ``ax``: success rate in % against x, on a log axis when every x is
    positive, a tick at each x (or at ``xticks``), each line in its :func:`curve_style`. A
    figure of several panels draws each with this."""
    for i, c in enumerate(curves):
        style = curve_style(c, i, styles)
        ax.plot(
            c.xs,
            [100 * r for r in c.rates],
            label=style["label"],
            color=style["color"],
            marker=style["marker"],
            linestyle=style["ls"],
            markersize=style["ms"],
            markerfacecolor=style["mfc"] or style["color"],
            markeredgewidth=1.6,
            linewidth=2.0,
            zorder=style["z"],
            clip_on=False,  # points at 0% and 100% sit on the frame, not half-hidden by it
        )
    set_x_axis(ax, sorted({x for c in curves for x in c.xs}), xticks)
    ax.set_ylim(0, 100)
    ax.yaxis.set_major_formatter(PercentFormatter(decimals=0))
    ax.set_yticks([0, 25, 50, 75, 100])
    ax.grid(True, color=GUIDE_COLOUR, alpha=0.25, linewidth=0.8)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    log = ax.get_xscale() == "log"
    ax.set_xlabel(f"{xlabel or 'x'}{' (log scale)' if log else ''}")
    ax.set_ylabel("rate of success")
    if legend:
        ax.legend(frameon=False, loc="best")


def set_x_axis(ax: Axes, xs: Sequence[float], ticks: Sequence[float] | None = None) -> None:
    """A log x axis when every value is positive, as the paper's, spanning ``xs`` and the
    ticks, with a tick at each x (or at ``ticks`` alone: many uneven values would crowd)."""
    shown = sorted(xs if ticks is None else ticks)
    span = sorted({*xs, *shown})
    if span and all(x > 0 for x in span):
        ax.set_xscale("log")  # the paper: "The x-axis is on log scale"
        if len(span) > 1:
            pad = (span[-1] / span[0]) ** 0.04
            ax.set_xlim(span[0] / pad, span[-1] * pad)
    ax.xaxis.set_major_locator(FixedLocator(shown))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xticklabels([f"{x:g}" for x in shown])


def default_title(runs: Sequence[RunRow]) -> str:
    tasks = sorted({str(r.config.get("preset") or r.config.get("task")) for r in runs})
    if tasks == ["temporal-order"]:
        return "Temporal order problem: rate of success vs. sequence length"
    return f"{', '.join(tasks)}: rate of success"


def default_subtitle(runs: Sequence[RunRow]) -> str:
    budgets = sorted({int(r.config.get("max_updates", 0)) for r in runs})
    if not budgets:
        return ""
    b = f"{budgets[0]:,}" if len(budgets) == 1 else f"{budgets[0]:,}–{budgets[-1]:,}"
    return f"budget {b} updates"
